"""Surrogate keys: tags an origin puts on responses so a cache can purge by them.

``Surrogate-Key`` (Fastly: space-separated) and ``Cache-Tag`` (Cloudflare, Akamai:
comma-separated) are read when a response is stored and never reach the client.
"""

from __future__ import annotations

from edgecache.core.headers import Headers, split_list

SURROGATE_KEY = b"surrogate-key"
CACHE_TAG = b"cache-tag"
SURROGATE_FIELDS = frozenset({SURROGATE_KEY, CACHE_TAG})


def parse_tags(headers: Headers) -> tuple[str, ...]:
    tags: list[str] = []
    for value in headers.get_all(SURROGATE_KEY):
        tags.extend(value.decode("latin-1").split())
    for member in split_list(headers.get_joined(CACHE_TAG)):
        tags.append(member.decode("latin-1"))
    return tuple(dict.fromkeys(t for t in tags if t))


def without_surrogates(pairs: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Response headers for the client: surrogate keys are for this cache only."""
    if not any(name in SURROGATE_FIELDS for name, _ in pairs):
        return pairs
    return [(n, v) for n, v in pairs if n not in SURROGATE_FIELDS]
