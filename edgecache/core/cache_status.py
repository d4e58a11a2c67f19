"""The Cache-Status response field (RFC 9211)."""

from __future__ import annotations

import enum
import functools
import math


class Fwd(enum.Enum):
    """RFC 9211 §2.2 ``fwd`` values: why the request went to the next hop."""

    BYPASS = "bypass"
    METHOD = "method"
    URI_MISS = "uri-miss"
    VARY_MISS = "vary-miss"
    MISS = "miss"
    REQUEST = "request"
    STALE = "stale"
    PARTIAL = "partial"


def hit_status(name: str, ttl: float) -> bytes:
    """``name; hit; ttl=N``: the member of a fresh hit, made without the general path."""
    return b"%s; hit; ttl=%d" % (_ascii(name), math.floor(ttl))


@functools.lru_cache(maxsize=16)
def _ascii(name: str) -> bytes:
    return name.encode("ascii")


def cache_status(
    name: str,
    *,
    hit: bool = False,
    fwd: Fwd | None = None,
    fwd_status: int | None = None,
    stored: bool = False,
    ttl: float | None = None,
    collapsed: bool = False,
    detail: str | None = None,
) -> bytes:
    """One Cache-Status member for this cache, e.g. ``edgecache; hit; ttl=42``."""
    parts = [name]
    if hit:
        parts.append("hit")
    if fwd is not None:
        parts.append(f"fwd={fwd.value}")
    if fwd_status is not None:
        parts.append(f"fwd-status={fwd_status}")
    if stored:
        parts.append("stored")
    if collapsed:
        parts.append("collapsed")
    if ttl is not None:
        parts.append(f"ttl={math.floor(ttl)}")
    if detail:
        parts.append(f"detail={detail}")
    return "; ".join(parts).encode("ascii")
