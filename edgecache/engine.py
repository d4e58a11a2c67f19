"""The cache's runtime shared by every face: the store, the clock, store failures
treated as misses, and the effects of exchanges carried out. No rule lives here: the
exchange driver (``core.exchange``) decides, this module does what it says."""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, NamedTuple, assert_never

from edgecache.compression import ENCODINGS, encode
from edgecache.config import REDIS_SCHEMES, Settings
from edgecache.core import policy
from edgecache.core.encoding import EncodingRules, encoded_headers, worth_keeping
from edgecache.core.entries import retention
from edgecache.core.exchange import Exchange, Invalidate, Respond, Save, Truncated
from edgecache.core.explain import NotStoredMemory
from edgecache.core.model import Entry, RequestHead
from edgecache.core.negotiation import IDENTITY
from edgecache.core.replay import Replay, replay_key, replay_of
from edgecache.encoded_copies import EncodedCopies
from edgecache.errors import StorageError
from edgecache.metrics import BYTES_SAVED, STORE_ERRORS, STORE_WRITES
from edgecache.storage import DiskStore, MemoryStore, Store, Variants

log = logging.getLogger("edgecache")

_WRITES = threading.RLock()
"""Serialises the read-modify-writes of stored variants: the encoder thread adding a
copy (get, then put) against the loop's saves, invalidations and purges, so a copy made
of an entry purged meanwhile cannot bring it back. Hits never take it."""

REPLAYS = 10_000
"""Fresh hits kept for replay (``core.replay``), per engine."""


class Replayed(NamedTuple):
    replay: Replay
    age: bytes
    cache_status: bytes


def make_store(settings: Settings, clock: Callable[[], float]) -> Store:
    if settings.store == "disk":
        return DiskStore(settings.store_path, settings.max_bytes)
    if settings.store == "shared":
        from edgecache.storage.shared import SharedStore

        return SharedStore(settings.store_path, settings.max_bytes, clock)
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
    """The cache's runtime in one process: the store, the clock, the memory of recent
    passes and the encoded copies. It starts exchanges (``core.exchange``) and carries
    out their effects; the faces do the HTTP I/O around them. No rule lives here.

    With ``encoded_copies`` (a compression layer sits above the cache) entries are
    answered in the coding the client negotiates: a stored copy when one was made, else
    the identity body encoded on the fly here (so the layer above never encodes a hit)
    while one copy at the stored quality is made on a worker thread.
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
        self._replays: dict[Hashable, tuple[Replay, str]] = {}
        # A store that hands out the very tuple it keeps (``keeps_tuples``: the memory
        # store, the shared one while a record is unchanged) lets a replay know nothing
        # changed; disk and Redis decode a new one per read.
        self._replayable = bool(getattr(self.store, "keeps_tuples", False))
        self.not_stored = NotStoredMemory()
        """Why each URL's last answer was not stored, for explain (issue 16)."""
        # Hit-path metrics cost a lock per request: kept only when they can be read.
        self._counting = bool(settings.admin_token)
        self.copies: EncodedCopies | None = None
        self._rules: EncodingRules | None = None
        self._negotiate: Callable[[bytes | None], str] | None = None
        if encoded_copies and settings.compress:
            self.copies = EncodedCopies(settings, self._save_copy)
            self._rules = settings.encoding_rules()
            self._negotiate = settings.negotiator()
        self.prefetch: Callable[[str], Awaitable[None]] | None = getattr(
            self.store, "prefetch", None
        )
        """The shared tier's async read-ahead, for faces on an event loop."""

    def lookup(self, key: str) -> Variants:
        """What the store holds under ``key`` (nothing when the store fails)."""
        return self._get(key)

    def begin(self, request: RequestHead, variants: Variants | None = None) -> Exchange:
        """An exchange for ``request``, looked up in the store (GET and HEAD only)
        unless the caller looked ``variants`` up already."""
        key = request.primary_key
        if variants is None:
            variants = self._get(key) if request.method in ("GET", "HEAD") else ()
        now = self.clock()
        return Exchange(
            request,
            variants,
            now,
            self.options,
            max_entry_bytes=self.settings.max_entry_bytes,
            coalesce=self.settings.coalesce,
            recent_pass=self._passes.recent(key, now),
            rules=self._rules,
            negotiate=self._negotiate,
        )

    def revalidation(self, exchange: Exchange, refresh: policy.Forward) -> Exchange:
        """The exchange of a background refresh after a stale-while-revalidate answer."""
        assert refresh.entry is not None
        return Exchange.revalidation(
            exchange.request,
            refresh.entry,
            self.clock(),
            self.options,
            self.settings.max_entry_bytes,
        )

    def answer(self, respond: Respond) -> policy.Answer:
        """The answer to send for ``respond``: ready as it is, except a coding with no
        stored copy yet, which is encoded here at the on-the-fly quality."""
        answer = respond.answer
        entry = respond.entry
        coding = respond.copy
        if coding is None or entry is None:
            if entry is not None:
                self.served(entry, respond.coding, answer.body)
            return answer
        assert self.copies is not None
        self.copies.schedule(respond.key, entry, coding)
        body = encode(entry.body, coding, self.settings.quality(coding))
        ENCODINGS.add("stream", coding)
        extra = answer.headers[len(entry.headers) :]  # Age, Cache-Status
        if not worth_keeping(len(entry.body), len(body)):
            return answer._replace(final=True)
        if self._counting:
            BYTES_SAVED.inc(len(entry.body) - len(body))
        pairs = encoded_headers(entry.headers, coding, len(body)).pairs
        return policy.Answer(answer.status, pairs + extra, body)

    # -- replays of fresh hits (core.replay) ---------------------------------------

    def shape(self, headers: Sequence[tuple[bytes, bytes]]) -> bytes | None:
        """What besides method and URL selects a replayed answer, or None when the
        request must go through an exchange (``core.replay.replay_key``)."""
        return replay_key(headers)

    def replayed(self, memo: Hashable) -> Replayed | None:
        """The fresh hit remembered for a request of shape ``memo``, with its Age and
        Cache-Status now, while the store holds the same variants."""
        known = self._replays.get(memo)
        if known is None:
            return None
        replay, key = known
        now = self.clock()
        if now >= replay.fresh_until or self._get(key) is not replay.variants:
            self._replays.pop(memo, None)
            return None
        self.served(replay.entry, replay.coding, replay.body)
        age, status = replay.fields(now)
        return Replayed(replay, age, status)

    def remember(
        self,
        memo: Hashable,
        key: str,
        respond: Respond,
        answer: policy.Answer,
        variants: Variants,
    ) -> bool:
        """Keep ``answer`` for replay when ``core.replay`` allows it; True if kept."""
        if not self._replayable:
            return False
        replay = replay_of(respond, answer, variants, self.clock(), self.options.cache_name)
        if replay is None:
            return False
        if len(self._replays) >= REPLAYS:
            self._replays.clear()  # bounded; the hot ones come back at their next hit
        self._replays[memo] = (replay, key)
        return True

    def served(self, entry: Entry, coding: str, body: bytes) -> None:
        """A stored ``coding`` copy of ``entry`` answered: count the bytes it saved."""
        if self._counting and coding != IDENTITY:
            BYTES_SAVED.inc(len(entry.body) - len(body))

    def apply(self, exchange: Exchange) -> None:
        """Carry out the exchange's pending effects on the store."""
        self.not_stored.record(exchange, self.clock())
        effects, exchange.effects = exchange.effects, []
        for effect in effects:
            if isinstance(effect, Save):
                self.save(effect.key, effect.entry)
                if effect.fresh_store:
                    STORE_WRITES.inc()
            elif isinstance(effect, Invalidate):
                for key in effect.keys:
                    self._delete(key)
                if effect.mark_pass:
                    self._passes.mark(exchange.request.primary_key, self.clock())
            else:
                assert_never(effect)
        if exchange.truncated is not None and exchange.truncated is not Truncated.TOO_LARGE:
            log.warning(
                "not storing %s: body %s", exchange.request.primary_key, exchange.truncated.value
            )
            exchange.truncated = None

    def save(self, key: str, entry: Entry) -> None:
        with _WRITES:
            self._put_variant(key, entry, self._get(key))

    def _save_copy(self, key: str, entry: Entry) -> None:
        """Store an entry that gained an encoded copy, unless it was replaced or dropped
        meanwhile."""
        with _WRITES:
            current = self._get(key)
            if any(
                v.vary == entry.vary and v.response_time == entry.response_time for v in current
            ):
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
            with _WRITES:
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
            with _WRITES:
                self.store.delete(key)
        except StorageError as exc:
            log.warning("store delete failed: %s", exc)
