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

    def purge(self, prefix: str | None = None, tag: str | None = None) -> int:
        """Drop every key starting with ``prefix``, or holding an entry tagged ``tag``;
        the number dropped."""

    def clear(self) -> None: ...

    def close(self) -> None: ...

    def __len__(self) -> int: ...


def purge_matches(key: str, variants: Variants, prefix: str | None, tag: str | None) -> bool:
    """The one rule every store's purge applies."""
    if prefix is not None and key.startswith(prefix):
        return True
    return tag is not None and any(tag in entry.tags for entry in variants)
