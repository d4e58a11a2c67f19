"""One request's life through the cache, as a sans-IO state machine: the exchange driver.

Theory of operation
-------------------
A face (the ASGI or WSGI middleware, the wire layer) builds an ``Exchange`` from the
request head and the variants stored under its key, then feeds it what happens and does
what it answers. No clock is read, no store is touched and nothing is sent here: every
rule about the exchange is, and the faces only do I/O.

- ``Exchange.first`` is the first action: ``Respond`` (an answer from the cache, perhaps
  with a background ``refresh`` to start after it and a stored ``copy`` to make) or
  ``Upstream`` (forward the request with these headers; ``coalesce`` says whether it may
  wait behind another request for the same URL).
- ``on_head(status, headers)`` after an ``Upstream``: ``Relay`` (stream the upstream's
  answer on with these headers; ``keep_copy`` says whether to feed the body back) or
  ``Respond`` (send the cache's answer instead and discard the upstream body: a 304 that
  refreshed the entry, or stale-if-error on a 5xx).
- ``on_body(chunk)`` for each chunk relayed while ``keep_copy``; the driver keeps the
  copy and drops it once it outgrows ``max_entry_bytes``.
- ``on_end(now)`` when the upstream body ended completely: the entry to store, or None
  (not storable, too large, or truncated: a body shorter or longer than its declared
  Content-Length is never stored).
- ``on_failure(now)`` when the upstream failed before an answer: a stale ``Respond``
  where allowed, or None (the face then answers its error).

Side effects on the store are data too: after each call the face's runtime applies
``effects`` (``Save``, ``Invalidate``) and clears them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import NamedTuple, assert_never

from edgecache.core import policy
from edgecache.core.cache_control import CacheControl, request_cache_control
from edgecache.core.encoding import EncodingRules, carry_copies, mark_encodable
from edgecache.core.entries import build_entry
from edgecache.core.headers import ACCEPT_ENCODING, CACHE_STATUS, CONTENT_LENGTH, RANGE, Headers
from edgecache.core.model import Entry, PolicyOptions, RequestHead, has_body
from edgecache.core.negotiation import IDENTITY
from edgecache.core.storability import REQUEST_REASONS, NotStored
from edgecache.core.surrogate import without_surrogates
from edgecache.core.upstream import UpstreamError

Answer = policy.Answer
"""A response from the cache, ready to send (re-exported for the faces)."""


class Outcome(enum.Enum):
    """What the cache did for a request: the label metrics and the access log read."""

    HIT = "hit"
    STALE = "stale"
    MISS = "miss"
    PASS = "pass"
    NONE = "none"


class Truncated(enum.Enum):
    """Why a body that was meant to be stored was not."""

    SHORT = "shorter than its Content-Length"
    LONG = "longer than its Content-Length"
    TOO_LARGE = "over max_entry_bytes"
    BROKEN = "broken off before its end"


class Respond(NamedTuple):
    """Answer from the cache."""

    answer: policy.Answer
    outcome: Outcome
    refresh: policy.Forward | None = None
    """A background revalidation to start once the answer is on its way (RFC 5861)."""
    copy: str | None = None
    """A coding the client wanted that the entry has no stored copy of yet: the answer
    carries the identity body, which the runtime encodes on the fly, and one copy at the
    stored quality is to be made off the request path."""
    entry: Entry | None = None
    coding: str = IDENTITY
    key: str = ""


class Upstream(NamedTuple):
    """Forward the request with ``headers`` (conditionals added when validating)."""

    headers: Headers
    coalesce: bool


class Relay(NamedTuple):
    """Stream the upstream's answer on, with ``headers``."""

    status: int
    headers: list[tuple[bytes, bytes]]
    keep_copy: bool
    outcome: Outcome


class Save(NamedTuple):
    key: str
    entry: Entry
    fresh_store: bool = True
    """A newly stored answer (counted as a store write), not a refreshed one."""


class Invalidate(NamedTuple):
    keys: tuple[str, ...]
    mark_pass: bool = False
    """Remember that this URL answered uncacheably (hit-for-pass)."""


Effect = Save | Invalidate
First = Respond | Upstream
OnHead = Relay | Respond


def _outcome_of_serve(decision: policy.Serve) -> Outcome:
    return Outcome.STALE if decision.stale else Outcome.HIT


class Exchange:
    """The cache's part of one request (see the module docstring)."""

    __slots__ = (
        "_chunks",
        "_decision",
        "_kept",
        "_negotiate",
        "_options",
        "_outcome",
        "_request_time",
        "_response_time",
        "_rules",
        "_size",
        "_status",
        "_up_headers",
        "coding",
        "effects",
        "first",
        "limit",
        "request",
        "request_cc",
        "truncated",
    )

    def __init__(
        self,
        request: RequestHead,
        variants: Sequence[Entry],
        now: float,
        options: PolicyOptions,
        *,
        max_entry_bytes: int,
        coalesce: bool,
        recent_pass: bool = False,
        rules: EncodingRules | None = None,
        negotiate: Callable[[bytes | None], str] | None = None,
    ) -> None:
        """``recent_pass``: this URL answered uncacheably a moment ago, so a miss goes
        alone instead of queueing behind another (Varnish's hit-for-pass).
        ``rules`` and ``negotiate``: set when a compression layer sits above this cache;
        stored entries are then marked encodable and answered in the negotiated coding
        (a stored copy, or identity to encode on the fly); None answers identity."""
        self.request = request
        self.request_cc: CacheControl = request_cache_control(request.headers)
        self._options = options
        self._rules = rules
        self._negotiate = negotiate
        self.limit = max_entry_bytes
        self.effects: list[Effect] = []
        self.truncated: Truncated | None = None
        self.coding = IDENTITY
        self._chunks: list[bytes] | None = None
        self._size = 0
        self._kept: policy.Store | None = None
        self._outcome: policy.Outcome | None = None
        self._status = 0
        self._up_headers = Headers()
        self._request_time = now
        self._response_time = now
        decision = policy.lookup(request, self.request_cc, variants, now, options)
        self._decision = decision
        self.first: First
        if isinstance(decision, policy.Serve):
            self.first = self._respond(decision, now, refresh=decision.refresh)
        elif isinstance(decision, policy.GatewayTimeout):
            self.first = Respond(policy.gateway_timeout(decision.cache_status), Outcome.NONE)
        elif isinstance(decision, policy.Bypass):
            self.first = Upstream(request.headers, coalesce=False)
        elif isinstance(decision, policy.Forward):
            # Coalesce a GET miss unless this URL just answered uncacheably: waiting for
            # another request's answer would then only queue requests behind it.
            # A GET with a body goes alone too: its answer is never shared (see policy).
            may = (
                coalesce
                and request.method == "GET"
                and not recent_pass
                and not has_body(request.headers)
            )
            self.first = Upstream(decision.upstream_headers, coalesce=may)
        else:  # pragma: no cover - exhaustive
            assert_never(decision)

    @classmethod
    def revalidation(
        cls, request: RequestHead, entry: Entry, now: float, options: PolicyOptions, limit: int
    ) -> Exchange:
        """The exchange of a background refresh of ``entry`` (stale-while-revalidate)."""
        exchange = cls(request, (), now, options, max_entry_bytes=limit, coalesce=False)
        forward = policy.background_revalidation(request, entry)
        exchange._decision = forward
        exchange.first = Upstream(forward.upstream_headers, coalesce=False)
        return exchange

    @property
    def decision(self) -> policy.Decision:
        return self._decision

    def _respond(self, serve: policy.Serve, now: float, refresh: bool = False) -> Respond:
        entry = serve.entry
        coding = IDENTITY
        headers = self.request.headers
        # A range is of the identity representation (RFC 9110 §14): never encoded.
        if (
            self._negotiate is not None
            and entry.encodable
            and self.request.method != "HEAD"
            and RANGE not in headers
        ):
            coding = self._negotiate(headers.get_joined(ACCEPT_ENCODING))
        self.coding = coding
        answer = policy.answer(self.request, entry, serve.cache_status, now, serve.age, coding)
        revalidate = policy.background_revalidation(self.request, entry) if refresh else None
        missing = coding if not answer.final else None
        outcome = _outcome_of_serve(serve)
        key = self.request.primary_key
        return Respond(answer, outcome, revalidate, missing, entry, coding, key)

    # -- the upstream's answer ------------------------------------------------------

    def on_head(
        self, status: int, headers: Headers, now: float, error: UpstreamError | None = None
    ) -> OnHead:
        """``error``: the answer is the edge's own 502/504 because the upstream failed
        (refused, reset, timeout, invalid), so a stale entry may answer instead."""
        decision = self._decision
        assert isinstance(decision, policy.Forward | policy.Bypass), "on_head after a Respond"
        self._status, self._up_headers, self._response_time = status, headers, now
        outcome = policy.on_response(
            self.request,
            self.request_cc,
            decision,
            status,
            headers,
            self._request_time,
            now,
            self._options,
            error=error,
        )
        self._outcome = outcome
        key = self.request.primary_key
        if isinstance(outcome, policy.Refreshed):
            entry = outcome.entry
            if self._rules is not None and isinstance(decision, policy.Forward):
                entry = carry_copies(decision.entry, entry, self._rules)
            self.effects.append(Save(key, entry, fresh_store=False))
            serve = policy.Serve(entry, outcome.cache_status)
            return self._respond(serve, now)._replace(outcome=Outcome.MISS)
        if isinstance(outcome, policy.Serve):  # stale-if-error on an error status
            return self._respond(outcome, now)._replace(outcome=Outcome.STALE)
        out = [*without_surrogates(headers.pairs), (CACHE_STATUS, outcome.cache_status)]
        if isinstance(outcome, policy.Pass):
            if outcome.invalidate or _marks_pass(outcome):
                self.effects.append(Invalidate(outcome.invalidate, _marks_pass(outcome)))
            return Relay(status, out, False, Outcome.PASS)
        if isinstance(outcome, policy.Store):
            declared = headers.get(CONTENT_LENGTH)
            # Declared too large: streamed through, never buffered.
            keep = not (declared and declared.isdigit() and int(declared) > self.limit)
            if keep:
                self._kept, self._chunks = outcome, []
            else:
                self.truncated = Truncated.TOO_LARGE
            return Relay(status, out, keep, Outcome.MISS)
        assert_never(outcome)

    def on_body(self, chunk: bytes) -> None:
        chunks = self._chunks
        if chunks is None:
            return
        self._size += len(chunk)
        if self._size > self.limit:
            self._chunks = None  # too large to store: the face streams on, we keep nothing
            self.truncated = Truncated.TOO_LARGE
        else:
            chunks.append(chunk)

    def on_end(self, now: float) -> Entry | None:
        """The upstream body ended completely; the entry now stored, if any."""
        if self._chunks is None or self._kept is None:
            return None
        body = b"".join(self._chunks)
        self._chunks = None
        declared = self._up_headers.get(CONTENT_LENGTH)
        if declared is not None and declared.strip() != str(len(body)).encode():
            length = int(declared) if declared.strip().isdigit() else -1
            self.truncated = Truncated.SHORT if len(body) < length else Truncated.LONG
            return None
        entry = build_entry(
            self.request,
            self._status,
            self._up_headers,
            self._kept.cc,
            body,
            self._request_time,
            self._response_time,
            self._options,
        )
        if self._rules is not None:
            entry = mark_encodable(entry, self._rules)
        self.effects.append(Save(self.request.primary_key, entry))
        return entry

    def on_abort(self) -> None:
        """The upstream body broke off: keep nothing."""
        if self._chunks is not None:
            self.truncated = Truncated.BROKEN
        self._chunks = None

    def on_failure(self, now: float, error: UpstreamError | None = None) -> Respond | None:
        """The upstream (or the app) failed before its answer: a stale answer where
        allowed; ``error`` says how an upstream failed (stale-on-error)."""
        decision = self._decision
        if self._outcome is not None or not isinstance(decision, policy.Forward):
            return None
        stale = policy.on_failure(
            self.request_cc, decision.entry, now, self._options, error=error
        )
        if stale is None:
            return None
        return self._respond(stale, now)._replace(outcome=Outcome.STALE)

    @property
    def outcome(self) -> policy.Outcome | None:
        return self._outcome

    @property
    def not_stored(self) -> NotStored | None:
        """Why this exchange's answer was not stored, once that is known (for explain)."""
        if isinstance(self._decision, policy.Bypass):
            return NotStored.METHOD
        if isinstance(self._outcome, policy.Pass):
            return self._outcome.reason
        if self.truncated is Truncated.TOO_LARGE:
            return NotStored.TOO_LARGE
        return None if self.truncated is None else NotStored.INCOMPLETE

    @property
    def replaced(self) -> bool:
        """The upstream's answer was replaced by the cache's (its body is discarded)."""
        return isinstance(self._outcome, policy.Refreshed | policy.Serve)


def _marks_pass(outcome: policy.Pass) -> bool:
    return outcome.reason is not None and outcome.reason not in REQUEST_REASONS
