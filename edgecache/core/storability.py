"""May a response be stored? (RFC 9111 §3), and which of its headers (§3.1)."""

from __future__ import annotations

import enum

from edgecache.core.cache_control import CacheControl
from edgecache.core.freshness import (
    DEFAULT_TTL_STATUSES,
    HEURISTIC_STATUSES,
    has_explicit_expiration,
    heuristics_allowed,
)
from edgecache.core.headers import (
    AGE,
    AUTHORIZATION,
    CONTENT_LENGTH,
    ETAG,
    LAST_MODIFIED,
    SET_COOKIE,
    Headers,
    strip_hop_by_hop,
)
from edgecache.core.model import RequestHead, SetCookieMode
from edgecache.core.ranges import stored_part
from edgecache.core.surrogate import SURROGATE_FIELDS
from edgecache.core.vary import parse_vary


class NotStored(enum.Enum):
    """Why a response was not stored; the words Cache-Status details and tests use."""

    METHOD = "method"
    STATUS = "status"
    NO_STORE = "no-store"
    PRIVATE = "private"
    AUTHORIZATION = "authorization"
    SET_COOKIE = "set-cookie"
    VARY_STAR = "vary-star"
    NO_FRESHNESS = "no-freshness"
    INCOMPLETE = "incomplete"
    TOO_LARGE = "too-large"
    REQUEST_BODY = "request-body"
    CREDENTIALS_HEURISTIC = "credentials-heuristic"
    MUST_UNDERSTAND = "must-understand"
    UPSTREAM_ERROR = "upstream-error"
    """No answer came from the upstream (core.upstream); marks the URL for hit-for-pass
    like any uncacheable answer, so waiting requests do not queue behind a dead one."""


REQUEST_REASONS = frozenset({NotStored.METHOD, NotStored.REQUEST_BODY})
"""Reasons that speak of one request, not of the URL's answers: they do not mark the URL
as uncacheable (hit-for-pass), or one odd request would slow every later miss."""


# RFC 9111 §5.2.2.3: the status codes whose caching requirements this cache implements
# in full, for answers marked must-understand: the final codes of RFC 9110 §15 that a
# cache stores as they are. Not 206 (ranges are not assembled), not 304 (not a complete
# response), and no code whose meaning this cache does not know.
MUST_UNDERSTAND_STATUSES = frozenset(
    {200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 451, 501}
)


def _status_understood(status: int) -> bool:
    # Partial content is not assembled and a 304 is not a complete response (§3, §3.3);
    # a 206 is stored as a part only (may_store).
    return 200 <= status <= 599 and status not in (206, 304)


def may_store(
    request: RequestHead,
    request_cc: CacheControl,
    status: int,
    headers: Headers,
    cc: CacheControl,
    *,
    set_cookie: SetCookieMode = "off",
    default_ttl: float = 0.0,
) -> NotStored | None:
    """None when a shared cache may store the response, else the first reason it may not.

    RFC 9111 §3: method understood and cacheable, final status understood, no
    ``no-store`` in request or response, no unqualified ``private`` (shared cache),
    Authorization only with ``public``, ``s-maxage`` or ``must-revalidate`` (§3.5), and
    something that makes reuse possible: explicit freshness, or a heuristically
    cacheable status (or ``public``) with a validator, the latter never for a request
    that carried Cookie or Authorization.
    """
    if request.method != "GET":
        return NotStored.METHOD
    # §3.3: a 206 is stored only as a part this cache can reuse (see core.ranges).
    if not _status_understood(status) and not (status == 206 and stored_part(headers)):
        return NotStored.STATUS
    # §5.2.2.3: must-understand limits storing to caches that know the status code's
    # requirements; those ignore the no-store sent beside it for older caches.
    must_understand = "must-understand" in cc.extensions
    if must_understand and status not in MUST_UNDERSTAND_STATUSES:
        return NotStored.MUST_UNDERSTAND
    if request_cc.no_store or (cc.no_store and not must_understand):
        return NotStored.NO_STORE
    if cc.private:
        return NotStored.PRIVATE
    explicitly_shared = cc.public or cc.s_maxage is not None
    if AUTHORIZATION in request.headers and not (explicitly_shared or cc.must_revalidate):
        return NotStored.AUTHORIZATION
    if parse_vary(headers) is None:
        return NotStored.VARY_STAR
    # A cookie is one user's state. RFC 9111 §3.1 would store it with the rest, and
    # replay it to every client; origins mark session-setting pages public by mistake
    # often enough that no Cache-Control makes a Set-Cookie answer storable here, unless
    # the origin named the cookie in private=/no-cache= (then it is stored without it,
    # §5.2.2.7, §5.2.2.4) or the operator chose ``strip`` or ``keep``.
    strips_cookie = SET_COOKIE in cc.private_fields or SET_COOKIE in cc.no_cache_fields
    if SET_COOKIE in headers and set_cookie == "off" and not strips_cookie:
        return NotStored.SET_COOKIE
    if has_explicit_expiration(headers, cc):
        return None
    if default_ttl > 0 and status in DEFAULT_TTL_STATUSES:
        # The operator's lifetime stands where a heuristic would, with its guard.
        return None if heuristics_allowed(request.headers) else NotStored.CREDENTIALS_HEURISTIC
    has_validator = ETAG in headers or LAST_MODIFIED in headers
    if (status in HEURISTIC_STATUSES or cc.public) and has_validator:
        # Reusable only by a heuristic, which a Cookie or Authorization request's answer
        # never gets (web cache deception, see heuristics_allowed).
        return None if heuristics_allowed(request.headers) else NotStored.CREDENTIALS_HEURISTIC
    return NotStored.NO_FRESHNESS


def stored_headers(
    headers: Headers, cc: CacheControl, body_length: int, *, set_cookie: SetCookieMode = "off"
) -> Headers:
    """The header list kept with an entry (§3.1, §5.2.2.4, §5.2.2.7).

    Hop-by-hop fields and those named in Connection are dropped; so are fields named by
    ``private=`` and ``no-cache=`` (a shared cache must not reuse them) and Age, which is
    recomputed on every answer. Content-Length is set to the stored body's length.
    Set-Cookie is kept only with ``set_cookie="keep"``.
    """
    kept = strip_hop_by_hop(headers)
    drop = {AGE, CONTENT_LENGTH} | cc.private_fields | cc.no_cache_fields | SURROGATE_FIELDS
    if set_cookie != "keep":
        drop.add(SET_COOKIE)
    return kept.without(drop).with_added([(CONTENT_LENGTH, str(body_length).encode())])
