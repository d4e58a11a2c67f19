"""Freshness (RFC 9111 §4.2): lifetimes, heuristics and age, with every §4.2.3 term."""

from __future__ import annotations

import enum
from typing import NamedTuple

from edgecache.core.cache_control import (
    INVALID,
    CacheControl,
    parse_cache_control,
    parse_delta_seconds,
    parse_targeted,
)
from edgecache.core.dates import parse_http_date
from edgecache.core.headers import (
    AGE,
    AUTHORIZATION,
    CACHE_CONTROL,
    COOKIE,
    DATE,
    EXPIRES,
    LAST_MODIFIED,
    Headers,
    split_list,
)
from edgecache.core.model import Entry, PolicyOptions

# RFC 9110 §15.1: status codes that are heuristically cacheable.
HEURISTIC_STATUSES = frozenset({200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501})
DEFAULT_TTL_STATUSES = frozenset({200, 203, 301, 308})
"""Where an operator's default lifetime applies: the whole, permanent answers (nginx's
``proxy_cache_valid`` without codes takes 200, 301 and 302; a 302 is temporary)."""


def heuristics_allowed(request_headers: Headers) -> bool:
    """May the answer to this request get heuristic freshness (§4.2.2)?

    Not when the request carried Cookie or Authorization. The RFC allows it, but such an
    answer is likely personal, and an origin that says nothing explicit about caching
    has not said it is shareable: web cache deception (``/account.php/x.css``, answered
    with the account page and a Last-Modified) relies on exactly this guess. Explicit
    freshness (max-age, s-maxage, Expires) applies as usual.
    """
    return COOKIE not in request_headers and AUTHORIZATION not in request_headers


def effective_cache_control(headers: Headers, targeted_fields: tuple[bytes, ...]) -> CacheControl:
    """The directives this cache obeys.

    RFC 9213 §2.2: a cache that recognises a targeted field (CDN-Cache-Control, or its
    own) uses the first one present and valid, and then ignores Cache-Control. A field
    that fails to parse as a Dictionary is ignored whole (§2.1, ``parse_targeted``).
    """
    return directives_source(headers, targeted_fields)[1]


def directives_source(
    headers: Headers, targeted_fields: tuple[bytes, ...]
) -> tuple[bytes, CacheControl]:
    """``effective_cache_control`` and the field it was read from (for explain)."""
    for name in targeted_fields:
        raw = headers.get_joined(name)
        if raw is not None:
            cc = parse_targeted(raw)
            if cc is not None:
                return name, cc
    return CACHE_CONTROL, parse_cache_control(headers.get_joined(CACHE_CONTROL))


def parse_age(headers: Headers) -> float:
    """Age (§5.1): the first member; an invalid value is ignored (0)."""
    members = split_list(headers.get_joined(AGE))
    if not members:
        return 0.0
    value = parse_delta_seconds(members[0].decode("latin-1"))
    return 0.0 if value == INVALID else float(value)


def date_value(headers: Headers, response_time: float) -> float:
    """The Date header, or the time the response was received when absent or invalid."""
    parsed = parse_http_date(headers.get(DATE), response_time)
    return response_time if parsed is None else parsed


class LifetimeSource(enum.Enum):
    """Where a freshness lifetime came from (§4.2.1): the words explain shows."""

    S_MAXAGE = "s-maxage"
    MAX_AGE = "max-age"
    EXPIRES = "expires"
    HEURISTIC = "heuristic"
    DEFAULT = "default_ttl"
    NONE = "none"


class Lifetime(NamedTuple):
    seconds: float
    source: LifetimeSource


def freshness_lifetime(
    status: int,
    headers: Headers,
    cc: CacheControl,
    date: float,
    options: PolicyOptions,
) -> float:
    """Seconds a response stays fresh (§4.2.1, first match wins); 0 means stale at once."""
    return lifetime_with_source(status, headers, cc, date, options).seconds


def lifetime_with_source(
    status: int,
    headers: Headers,
    cc: CacheControl,
    date: float,
    options: PolicyOptions,
) -> Lifetime:
    """``freshness_lifetime`` and which rule of §4.2.1 gave it."""
    if cc.s_maxage is not None:  # shared cache: s-maxage first
        return Lifetime(
            0.0 if cc.s_maxage == INVALID else float(cc.s_maxage), LifetimeSource.S_MAXAGE
        )
    if cc.max_age is not None:
        return Lifetime(0.0 if cc.max_age == INVALID else float(cc.max_age), LifetimeSource.MAX_AGE)
    expires_lines = headers.get_all(EXPIRES)
    if expires_lines:
        # §5.3: an invalid Expires, or several (§4.2.1), means already expired.
        expires = parse_http_date(expires_lines[0], date) if len(expires_lines) == 1 else None
        seconds = 0.0 if expires is None else max(0.0, expires - date)
        return Lifetime(seconds, LifetimeSource.EXPIRES)
    if options.default_ttl > 0 and status in DEFAULT_TTL_STATUSES:
        return Lifetime(options.default_ttl, LifetimeSource.DEFAULT)
    seconds = heuristic_lifetime(status, headers, cc, date, options)
    return Lifetime(seconds, LifetimeSource.HEURISTIC if seconds > 0 else LifetimeSource.NONE)


def heuristic_lifetime(
    status: int, headers: Headers, cc: CacheControl, date: float, options: PolicyOptions
) -> float:
    """§4.2.2: a fraction of the time since Last-Modified, for heuristically cacheable
    status codes or responses marked ``public``; 0 without Last-Modified."""
    if status not in HEURISTIC_STATUSES and not cc.public:
        return 0.0
    last_modified = parse_http_date(headers.get(LAST_MODIFIED), date)
    if last_modified is None or last_modified > date:
        return 0.0
    return min((date - last_modified) * options.heuristic_fraction, options.heuristic_max)


def has_explicit_expiration(headers: Headers, cc: CacheControl) -> bool:
    return cc.s_maxage is not None or cc.max_age is not None or EXPIRES in headers


def current_age(entry: Entry, now: float) -> float:
    """RFC 9111 §4.2.3, every term: apparent age, Age received, delay, residence."""
    apparent_age = max(0.0, entry.response_time - entry.date_value)
    response_delay = max(0.0, entry.response_time - entry.request_time)
    corrected_age_value = entry.age_value + response_delay
    corrected_initial_age = max(apparent_age, corrected_age_value)
    resident_time = max(0.0, now - entry.response_time)
    return corrected_initial_age + resident_time
