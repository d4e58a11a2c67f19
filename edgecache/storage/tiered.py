"""Two tiers: each node's local memory in front of the shared Redis store.

Reads try local memory, then Redis (promoting what they find); writes go to both, the
Redis side from a writer thread so no request waits on it. Every change is announced on
Redis pub/sub and every other node drops its local copy: after a purge call returns,
other nodes stop serving the purged entry within the pub/sub delay (milliseconds); if a
node's subscription was down, it clears its local tier on resubscribing, and no local
copy outlives ``local_ttl`` in any case.

When Redis is down or slow, requests go on with the local tier and the backend; calls
to Redis are skipped for a second after a failure, and everything resumes by itself.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from edgecache.errors import StorageError
from edgecache.storage.base import Variants
from edgecache.storage.memory import MemoryStore
from edgecache.storage.redis import REDIS_ERRORS, RedisStore

log = logging.getLogger("edgecache.store")


class TieredStore:
    RETRY_AFTER = 1.0

    def __init__(
        self,
        local: MemoryStore,
        remote: RedisStore,
        local_ttl: float = 60.0,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.local = local
        self.remote = remote
        self.local_ttl = local_ttl
        self.node = uuid.uuid4().hex[:12]
        self._on_error = on_error
        self._down_until = 0.0
        self._closed = threading.Event()
        self._writes: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=10_000)
        threading.Thread(
            target=self._write_loop, name="edgecache-redis-writer", daemon=True
        ).start()
        threading.Thread(
            target=self._listen_loop, name="edgecache-redis-listener", daemon=True
        ).start()

    # Health -------------------------------------------------------------------------
    def remote_ok(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, what: str, exc: Exception) -> None:
        if self.remote_ok():
            log.warning(
                "redis %s failed, going on without it for %ss: %s", what, self.RETRY_AFTER, exc
            )
        self._down_until = time.monotonic() + self.RETRY_AFTER
        if self._on_error is not None:
            self._on_error(what)

    # Reads --------------------------------------------------------------------------
    def get(self, key: str) -> Variants | None:
        found = self.local.get(key)
        if found is not None or not self.remote_ok():
            return found
        try:
            remote = self.remote.get_with_ttl(key)
        except StorageError as exc:
            self._failed("get", exc)
            return None
        return self._promote(key, remote)

    async def prefetch(self, key: str) -> None:
        """For ASGI: bring ``key`` from Redis into local memory with the asyncio client,
        so the synchronous lookup that follows finds it there."""
        if self.local.get(key) is not None or not self.remote_ok():
            return
        try:
            remote = await self.remote.aget_with_ttl(key)
        except StorageError as exc:
            self._failed("get", exc)
            return
        self._promote(key, remote)

    def _promote(self, key: str, remote: tuple[Variants, float] | None) -> Variants | None:
        if remote is None:
            return None
        variants, ttl = remote
        self.local.put(key, variants, min(ttl, self.local_ttl))
        return variants

    # Writes -------------------------------------------------------------------------
    def put(self, key: str, variants: Variants, ttl: float) -> None:
        self.local.put(key, variants, min(ttl, self.local_ttl))
        self._enqueue("put", (key, variants, ttl))

    def delete(self, key: str) -> None:
        self.local.delete(key)
        self._enqueue("delete", key)

    def purge(self, prefix: str | None = None, tag: str | None = None) -> int:
        """Synchronous on purpose: when it returns, Redis has dropped the entries and
        every node has been told."""
        self.flush()  # this node's own queued writes must not land after the purge
        count = self.local.purge(prefix=prefix, tag=tag)
        try:
            count = max(count, self.remote.purge(prefix=prefix, tag=tag))
            if prefix is not None:
                self.remote.publish(f"{self.node} p {prefix}")
            if tag is not None:
                self.remote.publish(f"{self.node} t {tag}")
        except StorageError as exc:
            self._failed("purge", exc)
            raise
        return count

    def _enqueue(self, op: str, payload: Any) -> None:
        try:
            self._writes.put_nowait((op, payload))
        except queue.Full:
            log.warning("redis write queue full: dropping a %s", op)

    def _write_loop(self) -> None:
        while not self._closed.is_set():
            try:
                op, payload = self._writes.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                if not self.remote_ok():
                    continue  # dropped: other nodes' local copies age out (local_ttl)
                if op == "put":
                    key, variants, ttl = payload
                    self.remote.put(key, variants, ttl)
                else:
                    key = payload
                    self.remote.delete(key)
                self.remote.publish(f"{self.node} k {key}")
            except StorageError as exc:
                self._failed(op, exc)
            finally:
                self._writes.task_done()

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until queued writes reached Redis (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._writes.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    # Invalidation from other nodes ----------------------------------------------------
    def _listen_loop(self) -> None:
        first = True
        while not self._closed.is_set():
            try:
                pubsub = self.remote.client.pubsub(  # type: ignore[no-untyped-call]
                    ignore_subscribe_messages=True
                )
                pubsub.subscribe(self.remote.channel)
                if not first:  # what was said while we were not listening is lost
                    self.local.clear()
                first = False
                while not self._closed.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is not None:
                        self._apply(message["data"])
            except REDIS_ERRORS as exc:
                first = False  # messages may have been missed from here on
                self._failed("subscribe", exc)
                self._closed.wait(self.RETRY_AFTER)

    def _apply(self, data: bytes) -> None:
        node, _, rest = data.decode("utf-8", "replace").partition(" ")
        if node == self.node:
            return
        kind, _, value = rest.partition(" ")
        if kind == "k":
            self.local.delete(value)
        elif kind == "p":
            self.local.purge(prefix=value)
        elif kind == "t":
            self.local.purge(tag=value)

    def clear(self) -> None:
        self.local.clear()
        try:
            self.remote.clear()
        except StorageError as exc:
            self._failed("clear", exc)

    def close(self) -> None:
        self._closed.set()
        self.local.close()

    def __len__(self) -> int:
        return len(self.local)
