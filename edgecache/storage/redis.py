"""The shared store on Redis: variants under ``PREFIX:e:<url>`` with the entry's own
lifetime as expiry, surrogate-key sets under ``PREFIX:t:<tag>``, and an invalidation
channel ``PREFIX:invalidate`` that every node's local tier listens to.

Calls are bounded by a short socket timeout: a slow Redis is a miss, not a stall.
"""

from __future__ import annotations

from collections.abc import Iterator

import redis
import redis.asyncio

from edgecache.core.model import decode_variants, encode_variants
from edgecache.errors import StorageError
from edgecache.storage.base import Variants

REDIS_ERRORS = (redis.RedisError, OSError)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisStore:
    def __init__(self, url: str, prefix: str = "edgecache", timeout: float = 0.25) -> None:
        options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        try:
            self.client = redis.Redis.from_url(url, **options)
            self.aclient = redis.asyncio.Redis.from_url(url, **options)  # type: ignore[arg-type]
        except ValueError as exc:
            raise StorageError(f"bad Redis URL {url!r}: {exc}") from None
        self.url = url
        self.prefix = prefix
        self.channel = f"{prefix}:invalidate"

    def key(self, key: str) -> str:
        return f"{self.prefix}:e:{key}"

    def tag_key(self, tag: str) -> str:
        return f"{self.prefix}:t:{tag}"

    def get(self, key: str) -> Variants | None:
        found = self.get_with_ttl(key)
        return None if found is None else found[0]

    def get_with_ttl(self, key: str) -> tuple[Variants, float] | None:
        """Variants and the seconds Redis will keep them."""
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.get(self.key(key))
            pipe.pttl(self.key(key))
            data, pttl = pipe.execute()
        except REDIS_ERRORS as exc:
            raise StorageError(f"redis get failed: {exc}") from exc
        return self._decoded(key, data, pttl)

    async def aget_with_ttl(self, key: str) -> tuple[Variants, float] | None:
        try:
            async with self.aclient.pipeline(transaction=False) as pipe:
                pipe.get(self.key(key))
                pipe.pttl(self.key(key))
                data, pttl = await pipe.execute()
        except REDIS_ERRORS as exc:
            raise StorageError(f"redis get failed: {exc}") from exc
        return self._decoded(key, data, pttl)

    def _decoded(self, key: str, data: bytes | None, pttl: int) -> tuple[Variants, float] | None:
        if data is None:
            return None
        try:
            return decode_variants(data), max(pttl, 1000) / 1000.0
        except (ValueError, KeyError, IndexError) as exc:
            raise StorageError(f"damaged redis record for {key!r}: {exc}") from exc

    def put(self, key: str, variants: Variants, ttl: float) -> None:
        millis = max(1000, int(ttl * 1000))
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.set(self.key(key), encode_variants(variants), px=millis)
            for tag in {t for entry in variants for t in entry.tags}:
                pipe.sadd(self.tag_key(tag), key)
                pipe.pexpire(self.tag_key(tag), millis, gt=True)
                pipe.pexpire(self.tag_key(tag), millis, nx=True)
            pipe.execute()
        except REDIS_ERRORS as exc:
            raise StorageError(f"redis put failed: {exc}") from exc

    def delete(self, key: str) -> None:
        try:
            self.client.delete(self.key(key))
        except REDIS_ERRORS as exc:
            raise StorageError(f"redis delete failed: {exc}") from exc

    def purge(self, prefix: str | None = None, tag: str | None = None) -> int:
        try:
            doomed: list[str] = []
            if prefix is not None:
                doomed += self._scan(self.key(_glob_escape(prefix)) + "*")
            if tag is not None:
                members = self.client.smembers(self.tag_key(tag))
                doomed += [self.key(m.decode() if isinstance(m, bytes) else m) for m in members]
                self.client.delete(self.tag_key(tag))
            count = 0
            for start in range(0, len(doomed), 500):
                count += int(self.client.delete(*doomed[start : start + 500]))
            return count
        except REDIS_ERRORS as exc:
            raise StorageError(f"redis purge failed: {exc}") from exc

    def _scan(self, pattern: str) -> list[str]:
        return [k.decode() for k in self.client.scan_iter(match=pattern, count=1000)]

    def publish(self, message: str) -> None:
        try:
            self.client.publish(self.channel, message)
        except REDIS_ERRORS as exc:
            raise StorageError(f"redis publish failed: {exc}") from exc

    def clear(self) -> None:
        try:
            keys = self._scan(f"{_glob_escape(self.prefix)}:*")
            for start in range(0, len(keys), 500):
                self.client.delete(*keys[start : start + 500])
        except REDIS_ERRORS as exc:
            raise StorageError(f"redis clear failed: {exc}") from exc

    def close(self) -> None:
        self.client.close()

    def __len__(self) -> int:
        return len(self._scan(f"{_glob_escape(self.prefix)}:e:*"))

    def __iter__(self) -> Iterator[str]:
        prefix = f"{self.prefix}:e:"
        return (k[len(prefix) :] for k in self._scan(_glob_escape(prefix) + "*"))
