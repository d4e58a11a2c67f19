"""Small builders shared by the tests: requests, responses and entries as the core sees them."""

from __future__ import annotations

from edgecache.core.cache_control import CacheControl, request_cache_control
from edgecache.core.entries import build_entry
from edgecache.core.freshness import effective_cache_control
from edgecache.core.headers import Headers
from edgecache.core.model import Entry, PolicyOptions, RequestHead

OPTIONS = PolicyOptions()


def headers(*pairs: tuple[str, str]) -> Headers:
    return Headers.from_str_pairs(pairs)


def request(*pairs: tuple[str, str], method: str = "GET", target: str = "/page") -> RequestHead:
    return RequestHead(method, "http", "example.com", target, headers(*pairs))


def request_cc(req: RequestHead) -> CacheControl:
    return request_cache_control(req.headers)


def entry(
    *pairs: tuple[str, str],
    status: int = 200,
    body: bytes = b"body",
    req: RequestHead | None = None,
    at: float = 1000.0,
    options: PolicyOptions = OPTIONS,
) -> Entry:
    """An entry stored from a response received at ``at`` (request sent at ``at`` too)."""
    resp = headers(*pairs)
    cc = effective_cache_control(resp, options.targeted_fields)
    return build_entry(req or request(), status, resp, cc, body, at, at, options)
