"""Request coalescing across the worker processes that share one store: one upstream
fetch per cold key on the whole machine, not one per process.

Inside a process ``AsyncCoalescer`` still decides, so local followers wait on an
event, for free. Its leader then claims the key in the shared store (a compare-and-set
in one LMDB write transaction, which LMDB serialises across processes). The claim
won, it fetches. The claim lost, another process is fetching: it polls the claim every
``POLL`` seconds (a read, about a microsecond) until it goes, or its holder is seen
dead, or ``coalesce_timeout`` passes; then it and its local followers look the cache
up again, as followers do.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from edgecache.coalesce import AsyncCoalescer

POLL = 0.005
"""Seconds between two looks at another process's claim."""


class Claims(Protocol):
    """What a store shared by processes offers for coalescing (``SharedStore``)."""

    def claim(self, key: str, until: float, now: float) -> bool:
        """Take ``key`` until ``until`` unless another live process holds it."""

    def claimed(self, key: str, now: float) -> bool:
        """Whether a live process other than this one holds ``key``."""

    def release(self, key: str) -> None:
        """Drop this process's claim on ``key``, if it holds one."""


class _Elsewhere(asyncio.Event):
    """``begin``'s answer when another process leads: ``wait`` polls its claim. An
    Event only so that callers see ``AsyncCoalescer``'s types; never set."""


class SharedCoalescer(AsyncCoalescer):
    """``AsyncCoalescer`` across the processes sharing ``claims``."""

    def __init__(self, claims: Claims, timeout: float) -> None:
        super().__init__()
        self._claims = claims
        self._timeout = timeout

    def begin(self, key: str) -> asyncio.Event | None:
        event = super().begin(key)
        if event is not None:
            return event  # a request of this process leads: wait for it here
        now = time.time()
        if self._claims.claim(key, now + self._timeout, now):
            return None
        return _Elsewhere()  # this request leads the process's followers, in waiting

    async def wait(self, key: str, event: asyncio.Event, timeout: float) -> None:
        if not isinstance(event, _Elsewhere):
            await super().wait(key, event, timeout)
            return
        deadline = time.monotonic() + timeout
        try:
            while self._claims.claimed(key, time.time()) and time.monotonic() < deadline:
                await asyncio.sleep(POLL)
        finally:
            super().end(key)  # this process's followers look again with it

    def end(self, key: str) -> None:
        self._claims.release(key)
        super().end(key)

    def in_flight(self, key: str) -> bool:
        return super().in_flight(key) or self._claims.claimed(key, time.time())


def coalescer_for(store: object, timeout: float) -> AsyncCoalescer:
    """The shared coalescer for a store that offers claims, else the process's own."""
    if all(hasattr(store, name) for name in ("claim", "claimed", "release")):
        return SharedCoalescer(store, timeout)  # type: ignore[arg-type]
    return AsyncCoalescer()
