"""Encoded copies of stored bodies: made once per entry and coding, off the request
path, at the stored (highest) qualities; later hits send those bytes as they are."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from edgecache.compression import ENCODINGS, encode
from edgecache.config import Settings
from edgecache.core.encoding import encoded_headers, is_encodable, with_vary_accept_encoding
from edgecache.core.headers import ACCEPT_ENCODING, RANGE, Headers
from edgecache.core.model import Entry, RequestHead
from edgecache.core.negotiation import IDENTITY, negotiator

log = logging.getLogger("edgecache")


class EncodedCopies:
    """Encoded siblings of stored bodies, made once per entry and coding, off the
    request path, at the stored (highest) qualities."""

    MAX_PENDING = 256

    def __init__(self, settings: Settings, save: Callable[[str, Entry], None]) -> None:
        self._save = save
        self._settings = settings
        self._rules = settings.encoding_rules()
        self._choose = negotiator(self._rules.codings)
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, object, float, str], Future[None]] = {}
        self._pool: ThreadPoolExecutor | None = None

    def marked(self, entry: Entry) -> Entry:
        """``entry`` with ``encodable`` set by the shared encoding rules; an encodable
        entry's identity headers say ``Vary: Accept-Encoding``, as the compression layer
        would, so its identity answers can bypass that layer."""
        if not is_encodable("GET", entry.status, Headers(), entry.headers, self._rules):
            return entry
        headers = with_vary_accept_encoding(entry.headers)
        return dataclasses.replace(entry, encodable=True, headers=headers)

    def carried_over(self, old: Entry | None, new: Entry) -> Entry:
        """After a 304 the body is the same: keep its encodings, with the new headers."""
        new = self.marked(new)
        if old is not None and new.encodable:
            for coding, (_, body) in list(old.encoded.items()):
                pairs = encoded_headers(new.headers, coding, len(body)).pairs
                new.encoded[coding] = (pairs, body)
        return new

    def coding_for(self, request: RequestHead, entry: Entry) -> str:
        """The coding to answer with; schedules the copy when it is not made yet."""
        if RANGE in request.headers:
            return IDENTITY
        coding: str = self._choose(request.headers.get_joined(ACCEPT_ENCODING))
        if coding != IDENTITY and coding not in entry.encoded:
            self._schedule(request.primary_key, entry, coding)
        return coding

    def _schedule(self, key: str, entry: Entry, coding: str) -> None:
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
            pairs = encoded_headers(entry.headers, coding, len(body)).pairs
            entry.encoded[coding] = (pairs, body)
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
