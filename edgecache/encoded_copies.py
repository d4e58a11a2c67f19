"""Encoded copies of stored bodies: made once per entry and coding, off the request
path, at the stored (highest) qualities; later hits send those bytes as they are."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from edgecache.compression import ENCODINGS, encode
from edgecache.config import Settings
from edgecache.core.encoding import encoded_headers, worth_keeping
from edgecache.core.model import Entry

log = logging.getLogger("edgecache")


class EncodedCopies:
    """Encoded siblings of stored bodies, made once per entry and coding, off the
    request path, at the stored (highest) qualities."""

    MAX_PENDING = 256

    def __init__(self, settings: Settings, save: Callable[[str, Entry], None]) -> None:
        self._save = save
        self._settings = settings
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, object, float, str], Future[None]] = {}
        self._pool: ThreadPoolExecutor | None = None

    def schedule(self, key: str, entry: Entry, coding: str) -> None:
        token = (key, entry.vary, entry.response_time, coding)
        with self._lock:
            if token in self._pending or len(self._pending) >= self.MAX_PENDING:
                return
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="edgecache-encode")
            self._pending[token] = self._pool.submit(self._encode, key, entry, coding, token)

    def _encode(self, key: str, entry: Entry, coding: str, token: object) -> None:
        try:
            body = encode(entry.body, coding, self._settings.quality(coding, stored=True))
            ENCODINGS.add("store", coding)
            if worth_keeping(len(entry.body), len(body)):
                pairs = encoded_headers(entry.headers, coding, len(body)).pairs
                entry.encoded[coding] = (pairs, body)
            else:
                # Not worth it: this coding's answer is the identity one (which already
                # says Vary: Accept-Encoding), so later hits need not try again.
                entry.encoded[coding] = (entry.headers.pairs, entry.body)
            self._save(key, entry)
        except Exception:
            log.exception("encoding %s of %s failed", coding, key)
        finally:
            with self._lock:
                self._pending.pop(token, None)  # type: ignore[call-overload]

    def drain(self) -> None:
        """Wait for every scheduled encoding (tests, shutdown)."""
        while True:
            with self._lock:
                futures = list(self._pending.values())
            if not futures:
                return
            for future in futures:
                future.result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
