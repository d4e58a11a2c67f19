"""Request coalescing: one upstream fetch per cold key inside a process.

The first request for a key leads; the others wait for it, then look the cache up
again: they share the leader's answer if it was stored, or go on alone if it was not.
"""

from __future__ import annotations

import asyncio
import threading


class ThreadCoalescer:
    """For WSGI servers with threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inflight: dict[str, threading.Event] = {}
        self._waiting: dict[str, int] = {}

    def begin(self, key: str) -> threading.Event | None:
        """None when the caller leads (it must call ``end``), else an Event to wait on."""
        with self._lock:
            event = self._inflight.get(key)
            if event is None:
                self._inflight[key] = threading.Event()
                return None
            self._waiting[key] = self._waiting.get(key, 0) + 1
            return event

    def wait(self, key: str, event: threading.Event, timeout: float) -> None:
        try:
            event.wait(timeout)
        finally:
            with self._lock:
                self._waiting[key] -= 1
                if not self._waiting[key]:
                    del self._waiting[key]

    def end(self, key: str) -> None:
        with self._lock:
            event = self._inflight.pop(key, None)
        if event is not None:
            event.set()

    def in_flight(self, key: str) -> bool:
        with self._lock:
            return key in self._inflight

    def waiting(self, key: str) -> int:
        with self._lock:
            return self._waiting.get(key, 0)


class AsyncCoalescer:
    """For ASGI apps: one event loop, so no lock is needed."""

    def __init__(self) -> None:
        self._inflight: dict[str, asyncio.Event] = {}
        self._waiting: dict[str, int] = {}

    def begin(self, key: str) -> asyncio.Event | None:
        event = self._inflight.get(key)
        if event is None:
            self._inflight[key] = asyncio.Event()
            return None
        self._waiting[key] = self._waiting.get(key, 0) + 1
        return event

    async def wait(self, key: str, event: asyncio.Event, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            pass
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]

    def end(self, key: str) -> None:
        event = self._inflight.pop(key, None)
        if event is not None:
            event.set()

    def in_flight(self, key: str) -> bool:
        return key in self._inflight

    def waiting(self, key: str) -> int:
        return self._waiting.get(key, 0)
