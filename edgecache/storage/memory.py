"""In-process store on cachetools, bounded by total bytes rather than entry count."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import LRUCache

from edgecache.metrics import STORE_BYTES, STORE_EVICTIONS
from edgecache.storage.base import Variants, purge_matches


@dataclass(frozen=True, slots=True)
class _Item:
    variants: Variants
    expires: float
    nbytes: int


class _CountingLRU(LRUCache[str, _Item]):
    def popitem(self) -> tuple[str, _Item]:
        STORE_EVICTIONS.inc()
        return super().popitem()


class MemoryStore:
    """LRU over ``max_bytes`` of bodies and headers, each key expiring at its own time.

    Expiry is checked on read, and expired items go first under size pressure as the
    least recently used: cachetools' TLRUCache does the same with a timer call and an
    ordered scan per access, which measured 1.35 us per hit against 0.5 us here.
    cachetools caches are not thread-safe; one lock guards each call.
    """

    keeps_tuples = True
    """``get`` hands out the very tuple ``put`` was given, until the key changes: the
    engine replays hits only over such stores (``Engine.remember``)."""

    def __init__(self, max_bytes: int, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: LRUCache[str, _Item] = _CountingLRU(
            maxsize=max_bytes, getsizeof=lambda item: item.nbytes
        )

    def get(self, key: str) -> Variants | None:
        with self._lock:
            try:
                item = self._cache[key]
            except KeyError:
                return None
            if item.expires <= self._clock():
                del self._cache[key]
                return None
        return item.variants

    def put(self, key: str, variants: Variants, ttl: float) -> None:
        nbytes = sum(entry.nbytes for entry in variants) + len(key)
        item = _Item(variants, self._clock() + ttl, nbytes)
        with self._lock:
            if nbytes > self._cache.maxsize:
                self._cache.pop(key, None)
                return
            self._cache[key] = item
            STORE_BYTES.set(self._cache.currsize)

    def delete(self, key: str) -> None:
        with self._lock:
            self._cache.pop(key, None)

    def purge(self, prefix: str | None = None, tag: str | None = None) -> int:
        with self._lock:
            doomed = [
                k for k, item in self._cache.items() if purge_matches(k, item.variants, prefix, tag)
            ]
            for key in doomed:
                self._cache.pop(key, None)
        return len(doomed)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def close(self) -> None:
        self.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return int(self._cache.currsize)
