"""What both middlewares share between the policy and their I/O: the store, the clock,
store failures treated as misses. No policy lives here; it asks ``core.policy``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, NamedTuple

from edgecache.config import REDIS_SCHEMES, Settings
from edgecache.core import policy
from edgecache.core.cache_control import CacheControl, request_cache_control
from edgecache.core.entries import build_entry, retention
from edgecache.core.headers import CONTENT_LENGTH, Headers
from edgecache.core.model import Entry, RequestHead
from edgecache.core.negotiation import IDENTITY
from edgecache.core.storability import REQUEST_REASONS
from edgecache.core.upstream import UpstreamError
from edgecache.encoded_copies import EncodedCopies
from edgecache.errors import StorageError
from edgecache.metrics import BYTES_SAVED, STORE_ERRORS, STORE_WRITES
from edgecache.storage import DiskStore, MemoryStore, Store, Variants

log = logging.getLogger("edgecache")


def make_store(settings: Settings, clock: Callable[[], float]) -> Store:
    if settings.store == "disk":
        return DiskStore(settings.store_path, settings.max_bytes)
    if settings.store.startswith(REDIS_SCHEMES):
        from edgecache.storage.redis import RedisStore
        from edgecache.storage.tiered import TieredStore

        remote = RedisStore(settings.store, settings.redis_prefix)
        return TieredStore(
            MemoryStore(settings.max_bytes, clock),
            remote,
            settings.local_ttl,
            on_error=lambda op: STORE_ERRORS.labels(op).inc(),
        )
    return MemoryStore(settings.max_bytes, clock)


class Lookup(NamedTuple):
    request: RequestHead
    request_cc: CacheControl
    decision: policy.Decision
    variants: Variants


class _RecentPasses:
    """URLs whose last answer could not be stored, for ``seconds``; bounded."""

    LIMIT = 10_000

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._until: dict[str, float] = {}

    def mark(self, key: str, now: float) -> None:
        if self._seconds <= 0:
            return
        if len(self._until) >= self.LIMIT:
            self._until.pop(next(iter(self._until)), None)
        self._until[key] = now + self._seconds

    def recent(self, key: str, now: float) -> bool:
        until = self._until.get(key)
        return until is not None and until > now


def engine_for(
    settings: Settings | None,
    store: Store | str | None,
    clock: Callable[[], float],
    encoded_copies: bool,
    options: dict[str, Any],
) -> Engine:
    """The engine a cache middleware runs on. ``store`` is a Store object, or the store
    *setting* ("memory", "disk") given by keyword like any other setting."""
    if isinstance(store, str):
        options = {**options, "store": store}
        store = None
    return Engine(settings or Settings.from_env(**options), store, clock, encoded_copies)


class Engine:
    """Runs the policy against a store; adapters do the HTTP I/O around it.

    With ``encoded_copies`` the engine also keeps content-encoded copies of stored
    bodies: the first request for a coding is answered in identity (the compression
    layer above encodes it on the fly) and schedules one encoding at the stored
    quality on a worker thread; later hits send those bytes as they are.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store | None,
        clock: Callable[[], float],
        encoded_copies: bool = False,
    ):
        self.settings = settings
        self.options = settings.policy_options()
        self.clock = clock
        self.store: Store = store if store is not None else make_store(settings, clock)
        self._passes = _RecentPasses(settings.pass_memory)
        # Hit-path metrics cost a lock per request: kept only when they can be read.
        self._counting = bool(settings.admin_token)
        self.copies: EncodedCopies | None = None
        if encoded_copies and settings.compress:
            self.copies = EncodedCopies(settings, self._save_copy)

    def lookup(self, request: RequestHead) -> Lookup:
        request_cc = request_cache_control(request.headers)
        variants = self._get(request.primary_key) if request.method in ("GET", "HEAD") else ()
        decision = policy.lookup(request, request_cc, variants, self.clock(), self.options)
        return Lookup(request, request_cc, decision, variants)

    def answer(
        self, request: RequestHead, entry: Entry, member: bytes, age: float | None = None
    ) -> policy.Answer:
        coding = IDENTITY
        if self.copies is not None and entry.encodable and request.method != "HEAD":
            coding = self.copies.coding_for(request, entry)
        answer = policy.answer(request, entry, member, self.clock(), age, coding)
        if self._counting and coding != IDENTITY and answer.body is not entry.body:
            BYTES_SAVED.inc(len(entry.body) - len(answer.body))  # a stored encoded copy
        return answer

    def may_coalesce(self, request: RequestHead) -> bool:
        """Coalesce a miss unless this URL answered uncacheably a moment ago: then
        waiting for another request's answer would only queue requests behind it
        (Varnish calls the remedy hit-for-pass)."""
        return request.method == "GET" and not self._passes.recent(
            request.primary_key, self.clock()
        )

    def on_response(
        self,
        found: Lookup,
        decision: policy.Forward | policy.Bypass,
        status: int,
        headers: Headers,
        request_time: float,
        error: UpstreamError | None = None,
    ) -> policy.Outcome:
        outcome = policy.on_response(
            found.request,
            found.request_cc,
            decision,
            status,
            headers,
            request_time,
            self.clock(),
            self.options,
            error=error,
        )
        if isinstance(outcome, policy.Pass):
            for key in outcome.invalidate:
                self._delete(key)
            if outcome.reason is not None and outcome.reason not in REQUEST_REASONS:
                self._passes.mark(found.request.primary_key, self.clock())
        elif isinstance(outcome, policy.Refreshed):
            entry = outcome.entry
            if self.copies is not None and isinstance(decision, policy.Forward):
                entry = self.copies.carried_over(decision.entry, entry)
                outcome = outcome._replace(entry=entry)
            self.save(found.request.primary_key, entry)
        return outcome

    def wants_copy(self, outcome: policy.Outcome, headers: Headers) -> bool:
        """Should the adapter keep a copy of the body it streams? Only for an answer the
        policy will store, and not when its declared length is over max_entry_bytes
        (those stream through, never buffered). A body that turns out longer than the
        limit is dropped by the adapter as it grows."""
        if not isinstance(outcome, policy.Store):
            return False
        declared = headers.get(CONTENT_LENGTH)
        return not (
            declared and declared.isdigit() and int(declared) > self.settings.max_entry_bytes
        )

    def on_failure(
        self, found: Lookup, decision: policy.Forward, error: UpstreamError | None = None
    ) -> policy.Serve | None:
        return policy.on_failure(
            found.request_cc, decision.entry, self.clock(), self.options, error=error
        )

    def store_response(
        self,
        found: Lookup,
        outcome: policy.Store,
        status: int,
        headers: Headers,
        body: bytes,
        request_time: float,
        response_time: float,
    ) -> bool:
        """Store a complete body; False (and nothing stored) when it is truncated."""
        declared = headers.get(CONTENT_LENGTH)
        if declared is not None and declared.strip() != str(len(body)).encode():
            log.warning(
                "not storing %s: body of %d bytes, Content-Length %r",
                found.request.primary_key,
                len(body),
                declared,
            )
            return False
        entry = build_entry(
            found.request,
            status,
            headers,
            outcome.cc,
            body,
            request_time,
            response_time,
            self.options,
        )
        if self.copies is not None:
            entry = self.copies.marked(entry)
        self.save(found.request.primary_key, entry)
        STORE_WRITES.inc()
        return True

    def save(self, key: str, entry: Entry) -> None:
        self._put_variant(key, entry, self._get(key))

    def _save_copy(self, key: str, entry: Entry) -> None:
        """Store an entry that gained an encoded copy, unless it was replaced or dropped
        meanwhile."""
        current = self._get(key)
        if any(v.vary == entry.vary and v.response_time == entry.response_time for v in current):
            self._put_variant(key, entry, current)

    def _put_variant(self, key: str, entry: Entry, current: Variants) -> None:
        variants = policy.with_variant(current, entry, self.options.max_variants)
        ttl = max(retention(v, self.clock(), self.options) for v in variants)
        try:
            self.store.put(key, variants, ttl)
        except StorageError as exc:
            log.warning("store put failed, answer not cached: %s", exc)

    def _get(self, key: str) -> Variants:
        try:
            return self.store.get(key) or ()
        except StorageError as exc:
            log.warning("store get failed, treated as a miss: %s", exc)
            return ()

    def purge(
        self, url: str | None = None, prefix: str | None = None, tag: str | None = None
    ) -> int:
        """Drop stored answers by exact URL (as the cache keys it,
        ``scheme://host/path?query``), URL prefix or surrogate key; how many went."""
        try:
            count = 0
            if url is not None:
                count += self.store.get(url) is not None
                self.store.delete(url)
            if prefix is not None or tag is not None:
                count += self.store.purge(prefix=prefix, tag=tag)
            return count
        except StorageError as exc:
            log.warning("purge failed: %s", exc)
            raise

    def close(self) -> None:
        if self.copies is not None:
            self.copies.close()

    def _delete(self, key: str) -> None:
        try:
            self.store.delete(key)
        except StorageError as exc:
            log.warning("store delete failed: %s", exc)
