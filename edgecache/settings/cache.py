"""The cache's settings: the store, RFC 9111 policy options, coalescing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from edgecache.core.model import PolicyOptions
from edgecache.settings.fields import check_fields, named, setting

StoreKind = str
"""``memory``, ``shared``, ``disk``, or a Redis URL (``redis://``, ``rediss://``, ``unix://``)."""
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def is_token(text: str) -> bool:
    """An HTTP token (RFC 9110 §5.6.2): a field name, a Cache-Status cache name."""
    return bool(_TOKEN.match(text))


def _is_store(kind: str) -> bool:
    return kind in ("memory", "shared", "disk") or kind.startswith(REDIS_SCHEMES)


@dataclass(frozen=True)
class CacheSettings:
    """The RFC 9111 cache layer and its store."""

    cache: bool = setting(True, "The RFC 9111 cache layer; off leaves compression and auth.")
    store: StoreKind = setting(
        "memory",
        """memory (per process, cachetools), shared (LMDB at store_path, shared by the
        processes of one machine; what memory becomes with several workers), disk
        (diskcache, survives restarts), or a redis:// URL: shared by every node, with
        local memory in front.""",
        valid=_is_store,
        accepted="'memory', 'shared', 'disk' or a redis:// URL",
        metavar="memory|shared|disk|URL",
    )
    store_path: str = setting(
        ".edgecache",
        "Directory of the disk or shared store.",
        valid=bool,
        accepted="a directory path",
    )
    redis_prefix: str = setting(
        "edgecache",
        "Prefix of every Redis key and channel: one per deployment sharing a Redis.",
        valid=bool,
        accepted="a non-empty prefix",
    )
    local_ttl: float = setting(
        60.0,
        "With Redis, longest a node keeps a local copy without hearing from Redis.",
        unit="seconds",
        above=0,
    )
    max_bytes: int = setting(
        256 * 1024**2,
        "Total size the store may hold (bodies plus headers).",
        unit="bytes",
        above=0,
    )
    max_entry_bytes: int = setting(
        8 * 1024**2,
        "Largest response body stored; larger ones stream through, never buffered.",
        unit="bytes",
        above=0,
    )
    heuristic_fraction: float = setting(
        0.1,
        """RFC 9111 §4.2.2 fraction of the Last-Modified age used as freshness when the
        origin gives none; 0 turns heuristics off.""",
        at_least=0,
        at_most=1,
    )
    heuristic_max: float = setting(
        86400.0, "Cap on a heuristic freshness lifetime.", unit="seconds", at_least=0
    )
    default_ttl: float = setting(
        0.0,
        """Freshness for 200/203/301/308 answers that give none (no s-maxage, max-age or
        Expires), as nginx's proxy_cache_valid; best set per route. 0: off (the RFC:
        only Last-Modified's heuristic).""",
        unit="seconds",
        at_least=0,
    )
    stale_retention: float = setting(
        3600.0,
        "How long stale entries with validators are kept for revalidation (304s).",
        unit="seconds",
        at_least=0,
    )
    stale_on_error: float = setting(
        300.0,
        """When the upstream refuses, resets, times out or answers garbage, a stored
        entry up to this stale answers instead (not when must-revalidate,
        proxy-revalidate, no-cache or s-maxage forbid it); 0 turns it off.""",
        unit="seconds",
        at_least=0,
    )
    max_variants: int = setting(16, "Stored Vary variants per URL.", at_least=1)
    cache_name: str = setting(
        "edgecache",
        "This cache's name in Cache-Status (RFC 9211); an HTTP token.",
        valid=is_token,
        accepted="an HTTP token (letters, digits, -._~ and similar)",
    )
    cache_set_cookie: Literal["off", "strip", "keep"] = setting(
        "off",
        """Answers with Set-Cookie: off = not stored (unless private=/no-cache= names the
        cookie), strip = stored without Set-Cookie, keep = stored whole and the cookie
        replayed to every client (RFC 9111 §3.1).""",
    )
    targeted_fields: tuple[str, ...] = setting(
        ("CDN-Cache-Control",),
        "RFC 9213 targeted Cache-Control fields obeyed, comma-separated; first present wins.",
        valid=is_token,
        accepted="header field names",
        metavar="FIELD,...",
    )
    coalesce: bool = setting(
        True, "One upstream request per cold URL at a time; the others wait for it."
    )
    coalesce_timeout: float = setting(
        30.0,
        "Longest a coalesced request waits for the leader before going on alone.",
        unit="seconds",
        above=0,
    )
    pass_memory: float = setting(
        30.0,
        """After an uncacheable answer, a URL's misses go straight on, uncoalesced, for
        this long; 0 always coalesces.""",
        unit="seconds",
        at_least=0,
    )

    def __post_init__(self) -> None:
        check_fields(self, CacheSettings)
        if self.max_entry_bytes > self.max_bytes:
            raise named(CacheSettings, "max_entry_bytes").fail(
                self.max_entry_bytes, "a positive size no larger than max_bytes"
            )

    def policy_options(self) -> PolicyOptions:
        return PolicyOptions(
            heuristic_fraction=self.heuristic_fraction,
            heuristic_max=self.heuristic_max,
            default_ttl=self.default_ttl,
            targeted_fields=tuple(f.lower().encode("ascii") for f in self.targeted_fields),
            stale_retention=self.stale_retention,
            max_variants=self.max_variants,
            cache_name=self.cache_name,
            set_cookie=self.cache_set_cookie,
            stale_on_error=self.stale_on_error,
        )
