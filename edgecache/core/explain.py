"""Why the cache does what it does for one URL: the explanation as data (issue 16).

Theory of operation
-------------------
``explain`` takes what the cache itself would take for a request (the request head,
the variants stored under its key, the time ``now``, the policy options) plus the
memory of why the URL's last answer was not stored, and answers an ``Explanation``:
the stored variants with their age, lifetime and where the lifetime came from; what
the next such request would get (``policy.lookup``'s own decision, put in words with
the RFC section behind it); and the last answer's ``NotStored`` reason in words.

No rule is decided here a second time: the decision is ``policy.lookup``'s, lifetimes
are ``freshness``'s, variant choice is ``policy.select_variant``'s. This module only
names them. ``NotStoredMemory`` is the bounded per-URL memory the runtime feeds from
each exchange (``Exchange.not_stored``); it reads no clock, ``now`` is passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple, assert_never

from edgecache.core import policy
from edgecache.core.cache_control import request_cache_control
from edgecache.core.cache_status import Fwd
from edgecache.core.dates import format_http_date
from edgecache.core.exchange import Exchange, Save
from edgecache.core.freshness import (
    LifetimeSource,
    current_age,
    directives_source,
    lifetime_with_source,
)
from edgecache.core.model import Entry, PolicyOptions, RequestHead
from edgecache.core.storability import NotStored

# Each reason in words, and the rule behind it. ``{limit}`` names max_entry_bytes' value.
REASON_WORDS: dict[NotStored, tuple[str, str]] = {
    NotStored.METHOD: (
        "the request method is not GET: only answers to GET are stored",
        "RFC 9111 §3, §4.4",
    ),
    NotStored.STATUS: ("the status code is not one this cache stores", "RFC 9111 §3"),
    NotStored.NO_STORE: ("no-store in the request or the answer", "RFC 9111 §5.2.2.5"),
    NotStored.PRIVATE: (
        "the answer is private (for one user's own cache only)",
        "RFC 9111 §5.2.2.7",
    ),
    NotStored.AUTHORIZATION: (
        "the request carried Authorization and the answer says neither public, "
        "s-maxage nor must-revalidate",
        "RFC 9111 §3.5",
    ),
    NotStored.SET_COOKIE: (
        "the answer sets a cookie (cache_set_cookie is off)",
        "edgecache safe default; RFC 9111 §3.1 would store it",
    ),
    NotStored.VARY_STAR: (
        "the answer says Vary: *, so no later request can match it",
        "RFC 9111 §4.1",
    ),
    NotStored.NO_FRESHNESS: (
        "the answer has no explicit freshness (max-age, s-maxage, Expires) and nothing "
        "a heuristic could use (a validator on a heuristically cacheable status)",
        "RFC 9111 §3, §4.2.2",
    ),
    NotStored.INCOMPLETE: (
        "the body was truncated: it broke off, or did not match its Content-Length",
        "RFC 9111 §3.3",
    ),
    NotStored.TOO_LARGE: (
        "the body is larger than max_entry_bytes{limit}",
        "edgecache setting max_entry_bytes",
    ),
    NotStored.REQUEST_BODY: (
        "the request carried a body, so its answer may depend on it",
        "RFC 9110 §9.3.1; edgecache safe default",
    ),
    NotStored.CREDENTIALS_HEURISTIC: (
        "only a heuristic lifetime applies, and the request carried Cookie or Authorization",
        "RFC 9111 §4.2.2; edgecache safe default (web cache deception)",
    ),
    NotStored.MUST_UNDERSTAND: (
        "must-understand on a status code this cache does not implement in full",
        "RFC 9111 §5.2.2.3",
    ),
    NotStored.UPSTREAM_ERROR: (
        "the upstream gave no answer (refused, reset, timed out or invalid)",
        "RFC 9111 §4.2.4",
    ),
}


def reason_words(reason: NotStored, max_entry_bytes: int | None = None) -> str:
    """The reason in words, e.g. "the answer sets a cookie (cache_set_cookie is off)"."""
    limit = f" ({max_entry_bytes} bytes)" if max_entry_bytes else ""
    return REASON_WORDS[reason][0].format(limit=limit)


class NotStoredNote(NamedTuple):
    reason: NotStored
    method: str
    at: float
    max_entry_bytes: int


class NotStoredMemory:
    """Why each URL's last answer was not stored; the oldest notes go beyond ``limit``."""

    def __init__(self, limit: int = 10_000) -> None:
        self._limit = limit
        # A plain dict in insertion order, as _RecentPasses: faces on threads (WSGI)
        # record concurrently, and each step here is one atomic dict operation.
        self._notes: dict[str, NotStoredNote] = {}

    def record(self, exchange: Exchange, now: float) -> None:
        """Note (or forget, once an answer was stored) what ``exchange`` left behind."""
        key = exchange.request.primary_key
        if any(isinstance(effect, Save) for effect in exchange.effects):
            self._notes.pop(key, None)  # a Save: the URL's last answer was stored
            return
        reason = exchange.not_stored
        if reason is None:
            return
        note = NotStoredNote(reason, exchange.request.method, now, exchange.limit)
        self._notes.pop(key, None)  # re-inserted last: the newest
        if len(self._notes) >= self._limit:
            self._notes.pop(next(iter(self._notes), key), None)
        self._notes[key] = note

    def get(self, key: str) -> NotStoredNote | None:
        return self._notes.get(key)


@dataclass(frozen=True)
class Variant:
    """One stored variant, as explain shows it; times in seconds."""

    vary: dict[str, str | None]
    selected: bool
    status: int
    size: int
    age: float
    freshness_lifetime: float
    lifetime_source: str
    directives_from: str
    lifetime_why: str
    ttl: float
    fresh: bool
    stale_while_revalidate: float
    stale_if_error: float
    must_revalidate: bool
    no_cache: bool
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True)
class Next:
    """What the next such request would get: ``action`` is one of hit,
    stale-while-revalidate, max-stale, revalidate, forward, bypass, gateway-timeout."""

    action: str
    cache_status: str
    rule: str
    why: str


@dataclass(frozen=True)
class LastNotStored:
    reason: str
    why: str
    rule: str
    method: str
    ago: float


@dataclass(frozen=True)
class Explanation:
    url: str
    method: str
    request_headers: list[tuple[str, str]]
    stored: bool
    variants: tuple[Variant, ...]
    next: Next
    not_stored: LastNotStored | None

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape (documented in the README, "Explain")."""
        data = asdict(self)
        data["request_headers"] = [list(pair) for pair in self.request_headers]
        data["variants"] = list(data["variants"])
        return data

    def as_text(self) -> str:
        return "\n".join(_text_lines(self)) + "\n"

    def selected(self) -> Variant | None:
        return next((v for v in self.variants if v.selected), None)


def explain(
    request: RequestHead,
    variants: Sequence[Entry],
    now: float,
    options: PolicyOptions,
    last: NotStoredNote | None = None,
) -> Explanation:
    """The explanation of ``request`` against the stored ``variants`` at ``now``."""
    chosen = policy.select_variant(variants, request.headers)
    views = tuple(_variant(e, e is chosen, now, options) for e in variants)
    decision = policy.lookup(
        request, request_cache_control(request.headers), variants, now, options
    )
    not_stored = None
    if last is not None:
        why = reason_words(last.reason, last.max_entry_bytes)
        rule = REASON_WORDS[last.reason][1]
        not_stored = LastNotStored(last.reason.value, why, rule, last.method, now - last.at)
    return Explanation(
        url=request.primary_key,
        method=request.method,
        request_headers=[(n.decode("latin-1"), v.decode("latin-1")) for n, v in request.headers],
        stored=bool(variants),
        variants=views,
        next=_next(decision, request, now, options),
        not_stored=not_stored,
    )


def _variant(entry: Entry, selected: bool, now: float, options: PolicyOptions) -> Variant:
    age = current_age(entry, now)
    field, cc = directives_source(entry.headers, options.targeted_fields)
    source = lifetime_with_source(entry.status, entry.headers, cc, entry.date_value, options).source
    ttl = entry.freshness_lifetime - age
    return Variant(
        vary={
            n.decode("latin-1"): None if v is None else v.decode("latin-1") for n, v in entry.vary
        },
        selected=selected,
        status=entry.status,
        size=len(entry.body),
        age=age,
        freshness_lifetime=entry.freshness_lifetime,
        lifetime_source=source.value,
        directives_from=field.decode("latin-1"),
        lifetime_why=_lifetime_words(entry, source, field.decode("latin-1"), options),
        ttl=ttl,
        fresh=ttl > 0 and not entry.no_cache,
        stale_while_revalidate=entry.stale_while_revalidate,
        stale_if_error=entry.stale_if_error,
        must_revalidate=entry.must_revalidate,
        no_cache=entry.no_cache,
        etag=None if entry.etag is None else entry.etag.decode("latin-1"),
        last_modified=None
        if entry.last_modified is None
        else format_http_date(entry.last_modified).decode("ascii"),
    )


def _lifetime_words(
    entry: Entry, source: LifetimeSource, field: str, options: PolicyOptions
) -> str:
    seconds = f"{entry.freshness_lifetime:g} s"
    if source is LifetimeSource.S_MAXAGE:
        return f"s-maxage in {field}: {seconds} (RFC 9111 §5.2.2.10)"
    if source is LifetimeSource.MAX_AGE:
        return f"max-age in {field}: {seconds} (RFC 9111 §5.2.2.1)"
    if source is LifetimeSource.EXPIRES:
        return f"Expires minus Date: {seconds} (RFC 9111 §5.3, §4.2.1)"
    if source is LifetimeSource.HEURISTIC:
        # A heuristic lifetime comes from Last-Modified, so the entry has it parsed.
        since = entry.date_value - (entry.last_modified or entry.date_value)
        return (
            f"heuristic: {options.heuristic_fraction:.0%} of the {since:g} s since "
            f"Last-Modified, at most heuristic_max {options.heuristic_max:g} s: {seconds} "
            "(RFC 9111 §4.2.2)"
        )
    if source is LifetimeSource.DEFAULT:
        return (
            f"default_ttl of this route: {seconds}, the operator's opt-in where the origin "
            "gave no lifetime (in place of RFC 9111 §4.2.2's heuristic)"
        )
    if source is LifetimeSource.NONE:
        return "no explicit lifetime and no heuristic one: stale at once (RFC 9111 §4.2.1)"
    assert_never(source)


def _next(
    decision: policy.Decision, request: RequestHead, now: float, options: PolicyOptions
) -> Next:
    if isinstance(decision, policy.Serve):
        status = decision.cache_status.decode("ascii")
        entry = decision.entry
        if decision.refresh:
            why = "stale, within its stale-while-revalidate window: served stale at once "
            return Next(
                "stale-while-revalidate",
                status,
                "RFC 5861 §3",
                why + "while a background request revalidates it",
            )
        if b"detail=max-stale" in decision.cache_status:
            why = "stale, but the request's max-stale accepts it"
            return Next("max-stale", status, "RFC 9111 §5.2.1.2", why)
        age = current_age(entry, now)
        why = (
            f"a stored answer is fresh (age {age:g} s, lifetime {entry.freshness_lifetime:g} s): "
            "served from the cache without asking the origin"
        )
        return Next("hit", status, "RFC 9111 §4.2", why)
    if isinstance(decision, policy.GatewayTimeout):
        why = "the request says only-if-cached and nothing stored may answer it: 504"
        return Next(
            "gateway-timeout", decision.cache_status.decode("ascii"), "RFC 9111 §5.2.1.7", why
        )
    if isinstance(decision, policy.Bypass):
        why = f"{request.method} is not for the cache: forwarded, and a success invalidates the URL"
        return Next(
            "bypass", f"{options.cache_name}; fwd={decision.fwd.value}", "RFC 9111 §4.4", why
        )
    if isinstance(decision, policy.Forward):
        status = f"{options.cache_name}; fwd={decision.fwd.value}"
        return _forward(decision, request, status)
    assert_never(decision)


def _forward(decision: policy.Forward, request: RequestHead, status: str) -> Next:
    fwd = decision.fwd
    entry = decision.entry
    if fwd is Fwd.URI_MISS:
        return Next("forward", status, "RFC 9111 §4", "nothing is stored for this URL")
    if fwd is Fwd.VARY_MISS:
        why = (
            "answers are stored, but none for this request's values of the fields their Vary names"
        )
        return Next("forward", status, "RFC 9111 §4.1", why)
    if fwd is Fwd.PARTIAL:
        why = "the stored partial answer does not hold the range asked for"
        return Next("forward", status, "RFC 9111 §3.4", why)
    action = "revalidate" if entry is not None else "forward"
    if fwd is Fwd.REQUEST:
        why = (
            "the request's own Cache-Control (no-cache, max-age, min-fresh) or a "
            "precondition the cache cannot answer sends it on"
        )
        return Next(action, status, "RFC 9111 §5.2.1", why)
    assert entry is not None  # Fwd.STALE comes with the stored entry
    if entry.no_cache:
        why = "the answer says no-cache: it is validated with the origin before every use"
        return Next(action, status, "RFC 9111 §5.2.2.4", why)
    if entry.must_revalidate:
        why = (
            "stale, and must-revalidate, proxy-revalidate or s-maxage forbid serving it "
            "stale: validated with the origin"
        )
        return Next(action, status, "RFC 9111 §4.2.4, §5.2.2.2", why)
    why = "stale (its age passed its lifetime): validated with the origin by a conditional request"
    return Next(action, status, "RFC 9111 §4.3.1", why)


def _text_lines(ex: Explanation) -> list[str]:
    lines = [f"{ex.method} {ex.url}"]
    if not ex.variants:
        lines.append("  stored: no")
    else:
        lines.append(f"  stored: yes, {len(ex.variants)} variant(s)")
    for v in ex.variants:
        key = ", ".join(f"{n}={val!r}" for n, val in v.vary.items()) or "no Vary"
        chosen = " (the one for this request)" if v.selected else ""
        state = f"fresh for {v.ttl:g} s more" if v.fresh else f"stale by {max(0.0, -v.ttl):g} s"
        lines.append(
            f"  variant [{key}]{chosen}: status {v.status}, {v.size} bytes, age {v.age:g} s, "
            f"lifetime from {v.lifetime_why}; {state}"
        )
    nxt = ex.next
    lines.append(f"  next request: {nxt.action}: {nxt.why} [{nxt.rule}] ({nxt.cache_status})")
    if ex.not_stored is not None:
        ns = ex.not_stored
        lines.append(
            f"  last answer not stored ({ns.method}, {ns.ago:g} s ago): {ns.why} "
            f"[{ns.reason}; {ns.rule}]"
        )
    return lines
