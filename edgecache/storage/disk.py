"""On-disk store on diskcache (SQLite index plus files): survives restarts, shared by
the processes of one machine."""

from __future__ import annotations

import diskcache

from edgecache.core.model import decode_variants, encode_variants
from edgecache.errors import StorageError
from edgecache.storage.base import Variants, purge_matches


class DiskStore:
    """Variants serialised with the core's own format (no pickle of foreign data)."""

    def __init__(self, directory: str, max_bytes: int) -> None:
        try:
            self._cache = diskcache.Cache(
                directory,
                size_limit=max_bytes,
                eviction_policy="least-recently-used",
                disk_min_file_size=64 * 1024,
            )
        except Exception as exc:  # sqlite3 / OS errors on a bad directory
            raise StorageError(f"cannot open disk store at {directory!r}: {exc}") from exc

    def get(self, key: str) -> Variants | None:
        try:
            data = self._cache.get(key)
        except Exception as exc:
            raise StorageError(f"disk store get failed: {exc}") from exc
        if data is None:
            return None
        try:
            return decode_variants(data)
        except (ValueError, KeyError, IndexError) as exc:
            # A damaged record is a miss, and is removed so it is not read again.
            self.delete(key)
            raise StorageError(f"damaged disk record for {key!r}: {exc}") from exc

    def put(self, key: str, variants: Variants, ttl: float) -> None:
        try:
            self._cache.set(key, encode_variants(variants), expire=ttl)
        except Exception as exc:
            raise StorageError(f"disk store put failed: {exc}") from exc

    def delete(self, key: str) -> None:
        try:
            self._cache.delete(key)
        except Exception as exc:
            raise StorageError(f"disk store delete failed: {exc}") from exc

    def purge(self, prefix: str | None = None, tag: str | None = None) -> int:
        count = 0
        for key in list(self._cache.iterkeys()):
            if prefix is not None and str(key).startswith(prefix):
                matched = True
            elif tag is not None:
                try:
                    variants = self.get(str(key))
                except StorageError:
                    continue
                matched = variants is not None and purge_matches(str(key), variants, None, tag)
            else:
                matched = False
            if matched:
                self.delete(str(key))
                count += 1
        return count

    def clear(self) -> None:
        self._cache.clear()

    def close(self) -> None:
        self._cache.close()

    def __len__(self) -> int:
        return len(self._cache)
