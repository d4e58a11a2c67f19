"""Background revalidations (RFC 5861 stale-while-revalidate) for the faces that run on
threads (WSGI, Django): one per URL at a time, led through the face's coalescer, on one
bounded pool rather than a thread each."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from edgecache.coalesce import ThreadCoalescer

log = logging.getLogger("edgecache")


class ThreadRefresher:
    THREADS = 4

    def __init__(self, coalescer: ThreadCoalescer) -> None:
        self._coalescer = coalescer
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None  # made on first use

    def start(self, key: str, run: Callable[[Callable[[], None]], None]) -> None:
        """Run ``run(done)`` on the pool unless ``key`` is being fetched already; ``run``
        calls ``done`` once its answer is stored (or not), and it is called for it when
        ``run`` raises."""
        coalescer = self._coalescer
        if coalescer.in_flight(key) or coalescer.begin(key) is not None:
            return

        def job() -> None:
            try:
                run(lambda: coalescer.end(key))
            except Exception:
                coalescer.end(key)
                log.exception("background revalidation of %s failed", key)

        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    self.THREADS, thread_name_prefix="edgecache-refresh"
                )
        self._pool.submit(job)
