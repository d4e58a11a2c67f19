"""Invalidation by unsafe methods (RFC 9111 §4.4)."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

from edgecache.core.headers import CONTENT_LOCATION, LOCATION, Headers
from edgecache.core.model import SAFE_METHODS, RequestHead


def invalidation_targets(request: RequestHead, status: int, headers: Headers) -> list[str]:
    """Primary keys to invalidate after ``request`` got a response with ``status``.

    §4.4: "A cache MUST invalidate the target URI ... when it receives a non-error
    status code in response to an unsafe request method", and the URIs in Location and
    Content-Location, but only where they share the target's origin (to prevent
    denial-of-service by one origin invalidating another's entries).
    """
    if request.method in SAFE_METHODS or not 200 <= status < 400:
        return []
    base = request.primary_key
    origin = (request.scheme, request.authority)
    targets = [base]
    for name in (LOCATION, CONTENT_LOCATION):
        raw = headers.get(name)
        if not raw:
            continue
        try:
            url = urljoin(base, raw.decode("latin-1").strip())
            parts = urlsplit(url)
        except ValueError:
            continue
        if (parts.scheme, parts.netloc.lower()) != origin:
            continue
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        key = f"{parts.scheme}://{parts.netloc.lower()}{target}"
        if key not in targets:
            targets.append(key)
    return targets
