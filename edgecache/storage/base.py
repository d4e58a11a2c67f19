"""The store protocol. Stores never parse a header; they keep what they are given."""

from __future__ import annotations

from typing import Protocol

from edgecache.core.model import Entry

Variants = tuple[Entry, ...]
"""Every stored response for one primary key, newest first."""


class Store(Protocol):
    def get(self, key: str) -> Variants | None:
        """The variants under ``key``, or None. Raises StorageError on failure."""

    def put(self, key: str, variants: Variants, ttl: float) -> None:
        """Keep ``variants`` for at most ``ttl`` seconds (the store may evict sooner)."""

    def delete(self, key: str) -> None: ...

    def clear(self) -> None: ...

    def close(self) -> None: ...

    def __len__(self) -> int: ...
