"""Validation (RFC 9111 §4.3, RFC 9110 §13): to the origin and from the cache."""

from __future__ import annotations

from edgecache.core.dates import format_http_date, parse_http_date
from edgecache.core.entries import entry_fields
from edgecache.core.freshness import date_value, effective_cache_control, parse_age
from edgecache.core.headers import (
    CONTENT_LENGTH,
    ETAG,
    IF_MATCH,
    IF_MODIFIED_SINCE,
    IF_NONE_MATCH,
    IF_UNMODIFIED_SINCE,
    LAST_MODIFIED,
    SET_COOKIE,
    Headers,
    split_list,
    strip_hop_by_hop,
)
from edgecache.core.model import Entry, PolicyOptions

CLIENT_CONDITIONALS = (IF_MATCH, IF_NONE_MATCH, IF_MODIFIED_SINCE, IF_UNMODIFIED_SINCE)
"""Replaced by the stored validators when the cache validates. If-Range is kept: after
our If-None-Match fails, it is what stops the origin sending a range of a newer
representation to a client holding the older one (RFC 9110 §13.1.5, §13.2.2)."""


def opaque_tag(etag: bytes) -> bytes:
    """The opaque-tag of an entity-tag, without the weakness prefix (RFC 9110 §8.8.3)."""
    etag = etag.strip()
    return etag[2:] if etag[:2] == b"W/" else etag


def weak_match(a: bytes, b: bytes) -> bool:
    """Weak comparison (RFC 9110 §8.8.3.2): opaque-tags equal, weakness ignored."""
    return opaque_tag(a) == opaque_tag(b)


def if_none_match_matches(value: bytes, etag: bytes | None) -> bool:
    """RFC 9110 §13.1.2 with weak comparison; ``*`` matches any current representation."""
    members = split_list(value)
    if b"*" in members:
        return True
    return etag is not None and any(weak_match(m, etag) for m in members)


def is_not_modified(request_headers: Headers, entry: Entry) -> bool:
    """May the cache answer a client's conditional GET/HEAD with 304? (§4.3.2)

    If-None-Match wins when present; otherwise If-Modified-Since is compared with the
    stored Last-Modified, or the Date when there is none.
    """
    inm = request_headers.get_joined(IF_NONE_MATCH)
    if inm is not None:
        return if_none_match_matches(inm, entry.etag)
    ims = parse_http_date(request_headers.get(IF_MODIFIED_SINCE))
    if ims is None:
        return False
    modified = entry.last_modified if entry.last_modified is not None else entry.date_value
    return modified <= ims


def has_precondition_cache_cannot_answer(request_headers: Headers) -> bool:
    """If-Match and If-Unmodified-Since are left to the origin. (If-Range the cache
    answers itself: see ``core.ranges.select_range``.)"""
    h = request_headers
    return IF_MATCH in h or IF_UNMODIFIED_SINCE in h


def revalidation_headers(request_headers: Headers, entry: Entry) -> Headers:
    """The request headers for validating ``entry`` upstream (§4.3.1).

    The client's own conditionals are replaced by the stored validators: If-None-Match
    with the stored ETag, and If-Modified-Since with the stored Last-Modified.
    """
    validators = []
    if entry.etag is not None:
        validators.append((IF_NONE_MATCH, entry.etag))
    if entry.last_modified is not None:
        validators.append((IF_MODIFIED_SINCE, format_http_date(entry.last_modified)))
    return request_headers.without(CLIENT_CONDITIONALS).with_added(validators)


def merge_headers(stored: Headers, update: Headers, *, keep_set_cookie: bool = False) -> Headers:
    """§3.2: fields of a newer response replace stored ones, except Content-Length and
    hop-by-hop fields; and Set-Cookie, unless the cache keeps cookies (cache_set_cookie
    keep): a 304 that sets a cookie must not plant it in the entry every client gets."""
    drop = (CONTENT_LENGTH, b"age") if keep_set_cookie else (CONTENT_LENGTH, b"age", SET_COOKIE)
    fresh = strip_hop_by_hop(update).without(drop)
    return stored.replaced(fresh)


def merge_not_modified(
    entry: Entry,
    headers: Headers,
    request_time: float,
    response_time: float,
    options: PolicyOptions,
) -> Entry:
    """The stored entry freshened by a 304 (§4.3.4) or a matching HEAD (§4.3.5).

    The entry's clock restarts from this exchange: Date, Age and the request/response
    times come from the new response, and the lifetime is recomputed on merged headers.
    """
    merged = merge_headers(entry.headers, headers, keep_set_cookie=options.set_cookie == "keep")
    cc = effective_cache_control(merged, options.targeted_fields)
    date = date_value(headers, response_time)
    return Entry(
        status=entry.status,
        headers=merged,
        body=entry.body,
        request_time=request_time,
        response_time=response_time,
        date_value=date,
        age_value=parse_age(headers),
        vary=entry.vary,
        tags=entry.tags,
        **entry_fields(entry.status, merged, cc, date, options),
    )


def head_matches(entry: Entry, headers: Headers) -> bool:
    """§4.3.5: a HEAD response updates a stored GET response only when its validators
    and Content-Length agree with it."""
    etag = headers.get(ETAG)
    if etag is not None and (entry.etag is None or etag != entry.etag):
        return False
    lm = headers.get(LAST_MODIFIED)
    if lm is not None and parse_http_date(lm) != entry.last_modified:
        return False
    length = headers.get(CONTENT_LENGTH)
    if length is not None and length.strip() != str(len(entry.body)).encode():
        return False
    return etag is not None or lm is not None
