"""Building stored entries from a response: the derived fields every entry carries."""

from __future__ import annotations

from typing import Any

from edgecache.core.cache_control import INVALID, CacheControl
from edgecache.core.dates import format_http_date, parse_http_date
from edgecache.core.freshness import current_age, date_value, freshness_lifetime, parse_age
from edgecache.core.headers import DATE, ETAG, LAST_MODIFIED, Headers
from edgecache.core.model import Entry, PolicyOptions, RequestHead
from edgecache.core.storability import stored_headers
from edgecache.core.surrogate import parse_tags
from edgecache.core.vary import parse_vary, secondary_key


def _delta(value: int | None) -> float:
    return 0.0 if value is None or value == INVALID else float(value)


def entry_fields(
    status: int, headers: Headers, cc: CacheControl, date: float, options: PolicyOptions
) -> dict[str, Any]:
    """The freshness and validation fields derived from a response's headers."""
    return {
        "freshness_lifetime": freshness_lifetime(status, headers, cc, date, options),
        "no_cache": cc.no_cache,
        # §5.2.2.2, §5.2.2.8, §5.2.2.10: must-revalidate, proxy-revalidate and s-maxage
        # all forbid a shared cache to serve the response stale without validation.
        "must_revalidate": cc.must_revalidate or cc.proxy_revalidate or cc.s_maxage is not None,
        "stale_while_revalidate": _delta(cc.stale_while_revalidate),
        "stale_if_error": _delta(cc.stale_if_error),
        "etag": headers.get(ETAG),
        "last_modified": parse_http_date(headers.get(LAST_MODIFIED), date),
    }


def build_entry(
    request: RequestHead,
    status: int,
    headers: Headers,
    cc: CacheControl,
    body: bytes,
    request_time: float,
    response_time: float,
    options: PolicyOptions,
) -> Entry:
    """A stored entry for a response already judged storable."""
    kept = stored_headers(headers, cc, len(body), set_cookie=options.set_cookie)
    date = date_value(headers, response_time)
    if DATE not in kept:
        # RFC 9110 §6.6.1: a cache that receives an answer without Date records when it
        # received it, so every answer from the cache carries exactly one Date.
        kept = kept.with_added([(DATE, format_http_date(date))])
    names = parse_vary(headers) or ()
    return Entry(
        status=status,
        headers=kept,
        body=body,
        request_time=request_time,
        response_time=response_time,
        date_value=date,
        age_value=parse_age(headers),
        vary=secondary_key(names, request.headers),
        tags=parse_tags(headers),
        **entry_fields(status, kept, cc, date, options),
    )


def retention(entry: Entry, now: float, options: PolicyOptions) -> float:
    """How long a store should keep the entry from ``now`` on, seconds.

    Freshness, plus whichever stale allowance is longest (stale-while-revalidate,
    stale-if-error, stale-on-error); entries with validators are kept a while longer
    because a 304 makes them useful again.
    """
    stale_use = max(entry.stale_while_revalidate, entry.stale_if_error)
    if not (entry.must_revalidate or entry.no_cache):  # kept to answer when upstream fails
        stale_use = max(stale_use, options.stale_on_error)
    if entry.etag is not None or entry.last_modified is not None:
        stale_use = max(stale_use, options.stale_retention)
    return max(1.0, entry.freshness_lifetime - current_age(entry, now) + stale_use)
