"""The order of the RFC 9111 rules: the only module that knows it.

Theory of operation
-------------------
An adapter asks ``lookup`` what to do with a request, given the variants stored under
its primary key and the time ``now``. The answer is a Decision:

- ``Serve``: answer from ``entry`` (fresh, or stale where allowed; ``refresh`` asks for
  a background revalidation, RFC 5861 stale-while-revalidate);
- ``Forward``: send the request on, with ``upstream_headers``; when ``entry`` is set
  the request validates it (§4.3.1) and it is the stale-if-error fallback;
- ``Bypass``: not for the cache at all (unsafe methods); forward untouched;
- ``GatewayTimeout``: only-if-cached and nothing usable (§5.2.1.7).

After a ``Forward`` or ``Bypass`` the adapter reports the response head to
``on_response`` and gets an Outcome: ``Store`` (tee the body, then ``build_entry``),
``Pass`` (stream it through, then invalidate ``invalidate``), ``Refreshed`` (a 304 or
matching HEAD freshened the entry: store and serve it) or ``Serve`` (stale-if-error).
When the upstream fails without a response, ``on_failure`` says whether a stale entry
may answer instead; a face that answers such a failure itself (the proxy's 502/504)
passes ``error=UpstreamError...`` to ``on_response``, which asks ``on_failure``.

Safe defaults beyond the RFC (issue 12) sit where their rule belongs: a GET with a body
(``lookup``/``on_response`` here), Set-Cookie and credentialed heuristics
(``storability``), stale-on-error (``on_failure``).

Invariants: nothing unfresh is served unless a directive allows it and none forbids it
(§4.2.4); a private, no-store or unauthorised answer is never stored (§3); every answer
from the cache carries Age (§5.1) and Cache-Status (RFC 9211). No clock is read here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from edgecache.core.cache_control import INVALID, CacheControl
from edgecache.core.cache_status import Fwd, cache_status, hit_status
from edgecache.core.conditional import (
    has_precondition_cache_cannot_answer,
    head_matches,
    is_not_modified,
    merge_not_modified,
    revalidation_headers,
)
from edgecache.core.freshness import current_age, effective_cache_control
from edgecache.core.headers import (
    AGE,
    CACHE_CONTROL,
    CACHE_STATUS,
    CONTENT_ENCODING,
    CONTENT_LENGTH,
    CONTENT_LOCATION,
    CONTENT_RANGE,
    DATE,
    ETAG,
    EXPIRES,
    LAST_MODIFIED,
    RANGE,
    VARY,
    Headers,
)
from edgecache.core.invalidation import invalidation_targets
from edgecache.core.model import Entry, PolicyOptions, RequestHead, has_body
from edgecache.core.ranges import (
    UNSATISFIABLE,
    content_range,
    part_answers,
    select_range,
    stored_part,
)
from edgecache.core.storability import NotStored, may_store
from edgecache.core.upstream import UpstreamError
from edgecache.core.vary import matches

ERROR_STATUSES = frozenset({500, 502, 503, 504})  # RFC 5861 §4: "an error"
# RFC 9110 §15.4.5: what a 304 carries of the 200 it stands for.
NOT_MODIFIED_FIELDS = frozenset(
    {CACHE_CONTROL, CONTENT_LOCATION, DATE, ETAG, EXPIRES, VARY, LAST_MODIFIED, CACHE_STATUS}
)


class Serve(NamedTuple):
    entry: Entry
    cache_status: bytes
    refresh: bool = False
    age: float | None = None
    """The entry's current age when decided, so the answer need not recompute it."""
    stale: bool = False
    """Served past its freshness (max-stale, stale-while-revalidate, stale-if-error,
    stale-on-error): the outcome metrics and the access log count is STALE."""


class Forward(NamedTuple):
    fwd: Fwd
    upstream_headers: Headers
    entry: Entry | None = None


class Bypass(NamedTuple):
    fwd: Fwd


class GatewayTimeout(NamedTuple):
    cache_status: bytes


Decision = Serve | Forward | Bypass | GatewayTimeout


class Store(NamedTuple):
    cc: CacheControl
    cache_status: bytes


class Pass(NamedTuple):
    cache_status: bytes
    invalidate: tuple[str, ...] = ()
    reason: NotStored | None = None


class Refreshed(NamedTuple):
    entry: Entry
    cache_status: bytes


Outcome = Store | Pass | Refreshed | Serve


def select_variant(variants: Sequence[Entry], request_headers: Headers) -> Entry | None:
    """The newest stored variant whose secondary key the request matches (§4.1)."""
    for entry in variants:
        if not entry.vary or matches(entry.vary, request_headers):
            return entry
    return None


def with_variant(variants: Sequence[Entry], entry: Entry, limit: int) -> tuple[Entry, ...]:
    """Variants after storing ``entry``: it replaces the one with its secondary key and
    goes first (newest); the oldest beyond ``limit`` are dropped."""
    others = [v for v in variants if v.vary != entry.vary]
    return (entry, *others)[: max(1, limit)]


def lookup(
    request: RequestHead,
    request_cc: CacheControl,
    variants: Sequence[Entry],
    now: float,
    options: PolicyOptions,
) -> Decision:
    """What to do with a request, given the variants stored for its URI."""
    if request.method not in ("GET", "HEAD"):
        return Bypass(Fwd.METHOD)
    decision = _lookup(request, request_cc, variants, now, options)
    if has_body(request.headers):
        # A GET or HEAD with a body (RFC 9110 §9.3.1: no defined semantics) may get an
        # answer that depends on the body, so the cache must not take it for the URL's
        # answer (fat-GET poisoning). It goes on exactly as sent (no validators of ours,
        # no stale-if-error fallback), and a stored entry may still answer it, though
        # never by starting a background refresh carrying its headers.
        if isinstance(decision, Forward):
            return Forward(decision.fwd, request.headers)
        if isinstance(decision, Serve) and decision.refresh:
            return decision._replace(refresh=False)
    return decision


def _lookup(
    request: RequestHead,
    request_cc: CacheControl,
    variants: Sequence[Entry],
    now: float,
    options: PolicyOptions,
) -> Decision:
    name = options.cache_name
    entry = select_variant(variants, request.headers)
    miss = Fwd.VARY_MISS if variants else Fwd.URI_MISS
    if entry is not None and entry.status == 206 and not _part_fits(request, entry):
        entry, miss = None, Fwd.PARTIAL  # RFC 9111 §3.4: a stored part answers only within
    if entry is None:
        if request_cc.only_if_cached:
            return GatewayTimeout(cache_status(name, fwd=Fwd.MISS, detail="only-if-cached"))
        return Forward(miss, request.headers)
    if has_precondition_cache_cannot_answer(request.headers):
        return Forward(Fwd.REQUEST, request.headers)

    age = current_age(entry, now)
    ttl = entry.freshness_lifetime - age
    validate = _validation_reason(entry, request_cc, age, ttl)
    if validate is None:
        return Serve(entry, hit_status(name, ttl), False, age)
    if validate is Fwd.STALE and not entry.must_revalidate and not entry.no_cache:
        staleness = -ttl
        # §5.2.1.2: the client accepts a response stale by at most max-stale seconds.
        if request_cc.max_stale not in (None, INVALID) and staleness <= request_cc.max_stale:
            status = cache_status(name, hit=True, ttl=ttl, detail="max-stale")
            return Serve(entry, status, stale=True)
        # RFC 5861 §3: serve stale at once while a background request revalidates.
        if staleness <= entry.stale_while_revalidate:
            status = cache_status(name, hit=True, ttl=ttl, detail="stale-while-revalidate")
            return Serve(entry, status, refresh=True, stale=True)
    if request_cc.only_if_cached:
        return GatewayTimeout(cache_status(name, fwd=validate, detail="only-if-cached"))
    return Forward(validate, revalidation_headers(request.headers, entry), entry)


def _part_fits(request: RequestHead, entry: Entry) -> bool:
    """Does a GET ask for a range the stored 206 contains (§3.4)?"""
    return request.method == "GET" and (
        part_answers(request.headers, entry.headers, entry.etag, entry.last_modified)
        is not None
    )


def background_revalidation(request: RequestHead, entry: Entry) -> Forward:
    """The request that refreshes an entry served stale-while-revalidate."""
    return Forward(Fwd.STALE, revalidation_headers(request.headers, entry), entry)


def _validation_reason(
    entry: Entry, request_cc: CacheControl, age: float, ttl: float
) -> Fwd | None:
    """Why the stored entry cannot be served as is, or None when it can."""
    if request_cc.no_cache:  # §5.2.1.4
        return Fwd.REQUEST
    max_age = request_cc.max_age
    # §5.2.1.1; an unparseable value is read as the most restrictive, no-cache.
    if max_age is not None and (max_age == INVALID or age > max_age):
        return Fwd.REQUEST
    min_fresh = request_cc.min_fresh
    if min_fresh is not None and min_fresh != INVALID and ttl < min_fresh:  # §5.2.1.3
        return Fwd.REQUEST
    if entry.no_cache or ttl <= 0:  # §5.2.2.4, §4.2
        return Fwd.STALE
    return None


def on_response(
    request: RequestHead,
    request_cc: CacheControl,
    decision: Forward | Bypass,
    status: int,
    headers: Headers,
    request_time: float,
    response_time: float,
    options: PolicyOptions,
    *,
    error: UpstreamError | None = None,
) -> Outcome:
    """What to do with the upstream's answer to a forwarded request.

    ``error`` says the answer is the edge's own 502/504 because the upstream failed
    (see ``core.upstream``): a stale entry may then answer instead (``on_failure``);
    otherwise it passes, nothing stored or invalidated, the URL marked for hit-for-pass.
    """
    name = options.cache_name
    if error is not None:
        fwd = decision.fwd
        if isinstance(decision, Forward):
            stale = on_failure(request_cc, decision.entry, response_time, options, error=error)
            if stale is not None:
                return stale
        member = cache_status(name, fwd=fwd, detail=error.detail)
        return Pass(member, reason=NotStored.UPSTREAM_ERROR)
    if isinstance(decision, Bypass):
        targets = invalidation_targets(request, status, headers)  # §4.4
        return Pass(cache_status(name, fwd=decision.fwd, fwd_status=status), tuple(targets))
    entry = decision.entry
    fwd = decision.fwd
    if has_body(request.headers):  # see lookup: neither stored nor used to update
        member = cache_status(name, fwd=fwd, fwd_status=status, detail="request-body")
        return Pass(member, reason=NotStored.REQUEST_BODY)
    if entry is not None:
        refreshed = _refresh(request, entry, status, headers, request_time, response_time, options)
        if refreshed is not None:
            ttl = refreshed.freshness_lifetime - current_age(refreshed, response_time)
            member = cache_status(name, fwd=fwd, fwd_status=status, stored=True, ttl=ttl)
            return Refreshed(refreshed, member)
        if status in ERROR_STATUSES:
            stale = on_failure(request_cc, entry, response_time, options, fwd_status=status)
            if stale is not None:
                return stale
        if request.method == "HEAD":
            # §4.3.5: a HEAD answer that disagrees with the stored response invalidates it.
            return Pass(cache_status(name, fwd=fwd, fwd_status=status), (request.primary_key,))
    cc = effective_cache_control(headers, options.targeted_fields)
    reason = may_store(
        request,
        request_cc,
        status,
        headers,
        cc,
        set_cookie=options.set_cookie,
        default_ttl=options.default_ttl,
    )
    if reason is None:
        return Store(cc, cache_status(name, fwd=fwd, fwd_status=status, stored=True))
    detail = None if reason in (NotStored.METHOD, NotStored.STATUS) else reason.value
    return Pass(cache_status(name, fwd=fwd, fwd_status=status, detail=detail), reason=reason)


def _refresh(
    request: RequestHead,
    entry: Entry,
    status: int,
    headers: Headers,
    request_time: float,
    response_time: float,
    options: PolicyOptions,
) -> Entry | None:
    if status == 304:  # §4.3.4
        return merge_not_modified(entry, headers, request_time, response_time, options)
    if request.method == "HEAD" and status == entry.status and head_matches(entry, headers):
        return merge_not_modified(entry, headers, request_time, response_time, options)
    return None


def on_failure(
    request_cc: CacheControl,
    entry: Entry | None,
    now: float,
    options: PolicyOptions,
    fwd_status: int | None = None,
    *,
    error: UpstreamError | None = None,
) -> Serve | None:
    """May ``entry`` answer when the upstream failed?

    RFC 5861 §4 stale-if-error first: the response's own stale-if-error allows it even
    beside must-revalidate (the origin said both); a client's stale-if-error request
    directive does not override a response that forbids stale use (§4.2.4).

    Then, when the upstream gave no answer at all (``error``), stale-on-error: RFC 9111
    §4.2.4 lets a disconnected cache serve stale, up to ``options.stale_on_error``
    seconds past freshness, unless the response forbade stale use: must-revalidate,
    proxy-revalidate and s-maxage (all in ``entry.must_revalidate``, §5.2.2.2, §5.2.2.8,
    §5.2.2.10) or no-cache (§5.2.2.4). Cache-Status says ``fwd=stale`` and the error.
    """
    if entry is None:
        return None
    staleness = current_age(entry, now) - entry.freshness_lifetime
    allowed = entry.stale_if_error
    forbidden = entry.must_revalidate or entry.no_cache
    if not forbidden and request_cc.stale_if_error not in (None, INVALID):
        allowed = max(allowed, float(request_cc.stale_if_error))
    name = options.cache_name
    if staleness <= allowed:
        member = cache_status(
            name, hit=True, fwd_status=fwd_status, ttl=-staleness, detail="stale-if-error"
        )
        return Serve(entry, member, stale=True)
    if error is None or forbidden or staleness > options.stale_on_error:
        return None
    member = cache_status(name, fwd=Fwd.STALE, ttl=-staleness, detail=error.detail)
    return Serve(entry, member, stale=True)


class Answer(NamedTuple):
    """A response from the cache, ready to send."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    final: bool = True
    """Nothing on the way out need touch it: False when the client wanted a coding the
    entry has no stored copy of yet, so the compression layer must encode it."""


def answer(
    request: RequestHead,
    entry: Entry,
    member: bytes,
    now: float,
    age: float | None = None,
    coding: str = "identity",
) -> Answer:
    """The response a stored entry gives this request: 200 (or its stored status), a 304
    for a matching conditional (§4.3.2), no body for HEAD; always Age and Cache-Status.
    The stored ``coding`` copy is sent when asked for and made; identity otherwise."""
    if age is None:
        age = current_age(entry, now)
    extra = [(AGE, b"%d" % age), (CACHE_STATUS, member)]
    if entry.status == 200 and is_not_modified(request.headers, entry):
        kept = [(n, v) for n, v in entry.headers if n in NOT_MODIFIED_FIELDS]
        return Answer(304, kept + extra, b"")
    if request.method == "HEAD":
        return Answer(entry.status, entry.headers.pairs + extra, b"")
    if RANGE in request.headers and entry.status == 200:
        ranged = _range_answer(request, entry, extra)
        if ranged is not None:
            return ranged
    if entry.status == 206:  # a stored part: lookup made sure it holds the range
        return _part_answer(request, entry, extra)
    copy = entry.encoded.get(coding)
    if copy is not None:
        return Answer(entry.status, copy[0] + extra, copy[1])
    return Answer(entry.status, entry.headers.pairs + extra, entry.body, coding == "identity")


def _range_answer(
    request: RequestHead, entry: Entry, extra: list[tuple[bytes, bytes]]
) -> Answer | None:
    """RFC 9110 §14: one satisfiable range of a stored 200 as 206 with Content-Range, an
    unsatisfiable one as 416 (§15.5.17); None to send the whole (several ranges, another
    unit, an If-Range naming another representation). Only the stored representation
    as it came is ranged, never an encoded copy of ours, and not one the origin encoded
    (identity only: a range of compressed bytes is rarely what a client can use)."""
    if entry.headers.get(CONTENT_ENCODING) not in (None, b"identity"):
        return None
    size = len(entry.body)
    span = select_range(request.headers, size, entry.etag, entry.last_modified)
    if span is None:
        return None
    if span == UNSATISFIABLE:
        unsatisfied = [(CONTENT_RANGE, b"bytes */%d" % size), (CONTENT_LENGTH, b"0")]
        return Answer(416, unsatisfied + extra, b"")
    start, end = span
    kept = [(n, v) for n, v in entry.headers if n != CONTENT_LENGTH]
    part = [
        (CONTENT_RANGE, content_range(start, end, size)),
        (CONTENT_LENGTH, b"%d" % (end - start + 1)),
    ]
    return Answer(206, kept + part + extra, entry.body[start : end + 1])


def _part_answer(
    request: RequestHead, entry: Entry, extra: list[tuple[bytes, bytes]]
) -> Answer:
    """The range asked of a stored 206 that contains it (RFC 9111 §3.4)."""
    span = part_answers(request.headers, entry.headers, entry.etag, entry.last_modified)
    part = stored_part(entry.headers)
    if span is None or part is None:  # not reached: lookup forwards such requests
        return Answer(entry.status, entry.headers.pairs + extra, entry.body)
    start, end, size = span
    kept = [(n, v) for n, v in entry.headers if n not in (CONTENT_LENGTH, CONTENT_RANGE)]
    sent = [
        (CONTENT_RANGE, content_range(start, end, size)),
        (CONTENT_LENGTH, b"%d" % (end - start + 1)),
    ]
    offset = part[0]
    return Answer(206, kept + sent + extra, entry.body[start - offset : end - offset + 1])


def gateway_timeout(member: bytes) -> Answer:
    body = b"504 Gateway Timeout: only-if-cached and no stored response fits\n"
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (CACHE_STATUS, member),
    ]
    return Answer(504, headers, body)
