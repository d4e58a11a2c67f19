"""One frozen, validated settings object; keyword arguments and ``EDGECACHE_*``
variables map onto it. A bad value fails here, at start, naming the setting."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from edgecache.compression import QUALITY_RANGE, SUPPORTED
from edgecache.core.auth import AuthRule
from edgecache.core.encoding import DEFAULT_TYPES, EncodingRules
from edgecache.core.model import PolicyOptions
from edgecache.core.negotiation import negotiator
from edgecache.errors import ConfigError

ENV_PREFIX = "EDGECACHE_"
StoreKind = str
"""``memory``, ``disk``, or a Redis URL (``redis://``, ``rediss://``, ``unix://``)."""
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


@dataclass(frozen=True, slots=True)
class Settings:
    """Every cache setting, with its safe default. See README for the variables."""

    store: StoreKind = "memory"
    """memory (per process, cachetools), disk (diskcache, survives restarts), or a
    redis:// URL: shared by every node, with local memory in front."""
    redis_prefix: str = "edgecache"
    """Prefix of every Redis key and channel: one per deployment sharing a Redis."""
    local_ttl: float = 60.0
    """With Redis, longest a node keeps a local copy without hearing from Redis."""
    admin_token: str = ""
    """Bearer token for /_edgecache/purge and /_edgecache/metrics; empty turns them off."""
    store_path: str = ".edgecache"
    """Directory of the disk store."""
    max_bytes: int = 256 * 1024**2
    """Total size the store may hold, bytes (bodies plus headers)."""
    max_entry_bytes: int = 8 * 1024**2
    """Largest response body stored; larger ones stream through, never buffered."""
    heuristic_fraction: float = 0.1
    """RFC 9111 §4.2.2 fraction of the Last-Modified age, 0 turns heuristics off."""
    heuristic_max: float = 86400.0
    """Cap on a heuristic freshness lifetime, seconds."""
    stale_retention: float = 3600.0
    """How long stale entries with validators are kept for revalidation, seconds."""
    max_variants: int = 16
    """Stored Vary variants per URL."""
    cache_name: str = "edgecache"
    """This cache's name in Cache-Status (RFC 9211); an HTTP token."""
    cache_set_cookie: Literal["off", "strip", "keep"] = "off"
    """Answers with Set-Cookie: off = not stored (unless private=/no-cache= names the
    cookie), strip = stored without Set-Cookie, keep = stored whole and the cookie
    replayed to every client (RFC 9111 §3.1)."""
    stale_on_error: float = 300.0
    """When the upstream refuses, resets, times out or answers garbage, a stored entry
    up to this many seconds stale answers instead (not when must-revalidate,
    proxy-revalidate, no-cache or s-maxage forbid it); 0 turns it off."""
    targeted_fields: tuple[str, ...] = ("CDN-Cache-Control",)
    """RFC 9213 targeted Cache-Control fields obeyed, first present wins."""
    coalesce: bool = True
    """One upstream request per cold URL at a time; the others wait for it."""
    coalesce_timeout: float = 30.0
    """Longest a coalesced request waits for the leader before going on alone, seconds."""
    pass_memory: float = 30.0
    """After an uncacheable answer, a URL's misses go straight on, uncoalesced, for this
    many seconds; 0 always coalesces."""
    compress: bool = True
    """Content-encode compressible answers for clients that accept it."""
    codings: tuple[str, ...] = ("br", "zstd", "gzip")
    """Codings offered, in the server's order of preference among equal q-values."""
    compress_min_size: int = 256
    """Bodies smaller than this many bytes are sent as they are."""
    compress_types: tuple[str, ...] = DEFAULT_TYPES
    """Content types compressed; ``text/*`` and ``*/*+json`` style patterns allowed."""
    br_quality: int = 4
    zstd_level: int = 3
    gzip_level: int = 5
    """On-the-fly qualities: fast, because they are paid on every uncached answer."""
    auth: tuple[AuthRule, ...] = ()
    """Basic-auth rules: path prefix, htpasswd file, realm. Env: PREFIX:FILE[:REALM];..."""
    auth_plaintext: bool = False
    """Accept plain-text passwords in user files (otherwise such lines are skipped)."""
    auth_forward_credentials: bool = False
    """Pass Authorization on to the app (the cache then applies RFC 9111 §3.5)."""
    auth_memo: bool = True
    """Remember verified credentials (by keyed hash) so bcrypt runs once, not per request."""
    auth_memo_ttl: float = 300.0
    auth_memo_size: int = 10_000
    auth_max_failures: int = 5
    """Failures for one user name from one address within ``auth_failure_window``
    before that pair gets 429 (other names and addresses still get in)."""
    auth_max_failures_per_address: int = 20
    """Failures from one address, whatever the user names, within ``auth_failure_window``
    before every request from it gets 429; at least ``auth_max_failures``."""
    auth_failure_window: float = 60.0
    auth_lockout: float = 60.0
    """Seconds an address is answered 429 after too many failures."""
    auth_failure_delay: float = 0.25
    """Each failure's 401 waits this many seconds times the address's failures so far
    (max 2 s)."""
    auth_hash_threads: int = 2
    """Threads per process that check passwords, off the event loop and at a lower CPU
    priority; when all are busy, checks wait their turn."""
    cache: bool = True
    """The RFC 9111 cache layer; off leaves compression and auth in place."""
    upstream: str = ""
    """The proxy's backends: ``URL[;weight=N]``, comma-separated (or --upstream repeated)."""
    balance: Literal["round-robin", "least-conn"] = "round-robin"
    """How requests are spread over several upstreams (smooth weighted round-robin)."""
    max_fails: int = 3
    fail_timeout: float = 10.0
    """An upstream failing ``max_fails`` times within this many seconds is skipped for as
    long, then tried again."""
    health_path: str = ""
    """When set, each upstream is probed with GET on this path every health_interval."""
    health_interval: float = 5.0
    config: str = ""
    """A TOML route file (routes, pools, static roots, redirects); see README."""
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    workers: int = 1
    """Server processes; each has its own memory cache (use the disk store to share)."""
    preserve_host: bool = True
    """Send the client's Host upstream; off sends the upstream's own host name."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks whose X-Forwarded-* are believed; none by default."""
    forwarded_header: bool = False
    """Also send an RFC 7239 Forwarded header upstream."""
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    """Longest wait for the upstream's next bytes (headers or body), seconds."""
    send_timeout: float = 60.0
    """Longest wait for the client to send the next part of its body, seconds."""
    max_body_size: int = 100 * 1024**2
    """Largest request body accepted, bytes; larger ones get 413."""
    certfile: str = ""
    keyfile: str = ""
    self_signed: bool = False
    """Serve TLS with a throwaway certificate made at start, for local use only."""
    redirect_http_port: int = 0
    """With TLS, also listen for plain HTTP on this port and redirect it to HTTPS."""
    hsts: int = 0
    """Strict-Transport-Security max-age on TLS answers, seconds; 0 sends none."""
    access_log: Literal["combined", "json", "off"] = "combined"
    server: Literal["uvicorn", "wire"] = "wire"
    """The HTTP server under proxy/serve: uvicorn, or edgecache's own wire layer
    (uvloop + httptools) with the limits and deadlines below."""
    header_timeout: float = 10.0
    """Wire server: longest a client may take to send a whole request head, seconds
    (nginx's client_header_timeout); then 408 and the connection is closed."""
    keepalive_timeout: float = 75.0
    """Wire server: an idle keep-alive connection is closed after this many seconds."""
    write_timeout: float = 60.0
    """Wire server: longest wait for the client to take the next part of an answer,
    seconds (nginx's send_timeout); then the connection is closed."""
    max_header_bytes: int = 32 * 1024
    """Wire server: largest request head (request line and fields), bytes; then 431."""
    max_header_fields: int = 100
    """Wire server: most header field lines in a request; then 431."""
    max_uri_bytes: int = 8 * 1024
    """Wire server: longest request-target, bytes; then 414."""
    max_connections: int = 4096
    """Wire server: open client connections per worker; beyond it new ones wait in the
    listen backlog (accepting pauses) instead of the process running out of files."""
    http2: bool = True
    """Wire server over TLS: offer HTTP/2 (ALPN h2, then http/1.1). The header limits
    above apply to HTTP/2 too (max_header_bytes is SETTINGS_MAX_HEADER_LIST_SIZE)."""
    http2_cleartext_port: int = 0
    """Wire server: also listen on this port for HTTP/2 over plain TCP with prior
    knowledge (h2c, no TLS, no HTTP/1.1), for a load balancer in front; 0: none."""
    http2_max_concurrent_streams: int = 100
    """Wire server: streams one HTTP/2 connection may have under way (nginx's default)."""
    http2_hpack_table_size: int = 4096
    """Wire server: the HPACK dynamic table a client may make us keep, bytes."""
    stored_br_quality: int = 11
    stored_zstd_level: int = 19
    stored_gzip_level: int = 9
    """Qualities of the encoded copies the cache keeps: paid once per entry and coding,
    off the request path, so they can be the smallest."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "auth", tuple(_auth_rule(r) for r in self.auth))
        _check(
            self.store in ("memory", "disk") or self.store.startswith(REDIS_SCHEMES),
            "store",
            self.store,
            "'memory', 'disk' or a redis:// URL",
        )
        _check(self.local_ttl > 0, "local_ttl", self.local_ttl, "seconds > 0")
        _check(bool(self.redis_prefix), "redis_prefix", self.redis_prefix, "a non-empty prefix")
        _check(bool(self.store_path), "store_path", self.store_path, "a directory path")
        _check(self.max_bytes > 0, "max_bytes", self.max_bytes, "a positive size")
        _check(
            0 < self.max_entry_bytes <= self.max_bytes,
            "max_entry_bytes",
            self.max_entry_bytes,
            "a positive size no larger than max_bytes",
        )
        _check(
            0 <= self.heuristic_fraction <= 1,
            "heuristic_fraction",
            self.heuristic_fraction,
            "a number from 0 to 1",
        )
        for name in ("heuristic_max", "stale_retention", "stale_on_error"):
            _check(getattr(self, name) >= 0, name, getattr(self, name), "seconds >= 0")
        _check(self.coalesce_timeout > 0, "coalesce_timeout", self.coalesce_timeout, "seconds > 0")
        _check(self.pass_memory >= 0, "pass_memory", self.pass_memory, "seconds >= 0")
        _check(self.max_variants >= 1, "max_variants", self.max_variants, "an integer >= 1")
        _check(
            bool(_TOKEN.match(self.cache_name)),
            "cache_name",
            self.cache_name,
            "an HTTP token (letters, digits, -._~ and similar)",
        )
        _check(
            self.cache_set_cookie in ("off", "strip", "keep"),
            "cache_set_cookie",
            self.cache_set_cookie,
            "'off', 'strip' or 'keep'",
        )
        for coding in self.codings:
            _check(coding in SUPPORTED, "codings", coding, f"codings among {', '.join(SUPPORTED)}")
        for name, coding in _QUALITY_SETTINGS.items():
            low, high = QUALITY_RANGE[coding]
            value = getattr(self, name)
            _check(low <= value <= high, name, value, f"an integer from {low} to {high}")
        _check(
            self.compress_min_size >= 0, "compress_min_size", self.compress_min_size, "a size >= 0"
        )
        for pattern in self.compress_types:
            _check("/" in pattern, "compress_types", pattern, "media types like text/*")
        for rule in self.auth:
            _check(rule.prefix.startswith("/"), "auth", rule.prefix, "path prefixes like /admin/")
        for name in ("auth_memo_ttl", "auth_failure_window", "auth_lockout", "auth_failure_delay"):
            _check(getattr(self, name) >= 0, name, getattr(self, name), "seconds >= 0")
        for name in ("auth_memo_size", "auth_max_failures", "auth_hash_threads"):
            _check(getattr(self, name) >= 1, name, getattr(self, name), "an integer >= 1")
        _check(
            self.auth_max_failures_per_address >= self.auth_max_failures,
            "auth_max_failures_per_address",
            self.auth_max_failures_per_address,
            f"an integer >= auth_max_failures ({self.auth_max_failures})",
        )
        for url, weight in parse_upstreams(self.upstream):
            _check_upstream(url)
            _check(weight >= 1, "upstream", self.upstream, "weights >= 1 (URL;weight=N)")
        _check(
            self.balance in ("round-robin", "least-conn"),
            "balance",
            self.balance,
            "'round-robin' or 'least-conn'",
        )
        _check(self.max_fails >= 1, "max_fails", self.max_fails, "an integer >= 1")
        for name in ("fail_timeout", "health_interval"):
            _check(getattr(self, name) > 0, name, getattr(self, name), "seconds > 0")
        _check(
            not self.health_path or self.health_path.startswith("/"),
            "health_path",
            self.health_path,
            "a path such as /healthz",
        )
        _check(0 <= self.listen_port <= 65535, "listen_port", self.listen_port, "a port number")
        _check(
            0 <= self.redirect_http_port <= 65535,
            "redirect_http_port",
            self.redirect_http_port,
            "a port number, 0 for none",
        )
        _check(
            0 <= self.http2_cleartext_port <= 65535,
            "http2_cleartext_port",
            self.http2_cleartext_port,
            "a port number, 0 for none",
        )
        _check(self.workers >= 1, "workers", self.workers, "an integer >= 1")
        for name in ("connect_timeout", "read_timeout", "send_timeout"):
            _check(getattr(self, name) > 0, name, getattr(self, name), "seconds > 0")
        _check(self.max_body_size > 0, "max_body_size", self.max_body_size, "a positive size")
        _check(self.hsts >= 0, "hsts", self.hsts, "seconds >= 0")
        _check(
            self.access_log in ("combined", "json", "off"),
            "access_log",
            self.access_log,
            "'combined', 'json' or 'off'",
        )
        _check(self.server in ("uvicorn", "wire"), "server", self.server, "'uvicorn' or 'wire'")
        for name in ("header_timeout", "keepalive_timeout", "write_timeout"):
            _check(getattr(self, name) > 0, name, getattr(self, name), "seconds > 0")
        for name in ("max_header_bytes", "max_uri_bytes"):
            _check(getattr(self, name) >= 256, name, getattr(self, name), "a size >= 256")
        for name in ("max_header_fields", "max_connections", "http2_max_concurrent_streams"):
            _check(getattr(self, name) >= 1, name, getattr(self, name), "an integer >= 1")
        _check(
            0 <= self.http2_hpack_table_size <= 65536,
            "http2_hpack_table_size",
            self.http2_hpack_table_size,
            "a size from 0 to 64K",
        )
        _check(
            bool(self.certfile) == bool(self.keyfile),
            "certfile",
            self.certfile,
            "certfile and keyfile together",
        )
        for entry in self.trusted_proxies:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                _check(False, "trusted_proxies", entry, "IP addresses or networks (CIDR)")
        for field_name in self.targeted_fields:
            _check(
                bool(_TOKEN.match(field_name)), "targeted_fields", field_name, "header field names"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``EDGECACHE_*`` variables; keyword arguments take precedence."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            variable = ENV_PREFIX + f.name.upper()
            if variable in environ:
                parse = _PARSERS[f.name]
                try:
                    values[f.name] = parse(environ[variable])
                except ValueError as exc:
                    raise ConfigError(f"{variable}={environ[variable]!r}: {exc}") from None
        unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        values.update(overrides)
        return cls(**values)

    def encoding_rules(self) -> EncodingRules:
        return EncodingRules(self.codings, self.compress_min_size, self.compress_types)

    def negotiator(self) -> Callable[[bytes | None], str]:
        """Accept-Encoding -> the coding to answer in, memoised per header value."""
        return negotiator(self.codings)

    def quality(self, coding: str, stored: bool = False) -> int:
        """The quality or level for ``coding``, on the fly or for a stored copy."""
        name = {"br": "br_quality", "zstd": "zstd_level", "gzip": "gzip_level"}[coding]
        return int(getattr(self, ("stored_" if stored else "") + name))

    def policy_options(self) -> PolicyOptions:
        return PolicyOptions(
            heuristic_fraction=self.heuristic_fraction,
            heuristic_max=self.heuristic_max,
            targeted_fields=tuple(f.lower().encode("ascii") for f in self.targeted_fields),
            stale_retention=self.stale_retention,
            max_variants=self.max_variants,
            cache_name=self.cache_name,
            set_cookie=self.cache_set_cookie,
            stale_on_error=self.stale_on_error,
        )


def _check(ok: bool, name: str, value: object, accepted: str) -> None:
    if not ok:
        raise ConfigError(
            f"setting {name} ({ENV_PREFIX}{name.upper()}) = {value!r}: expected {accepted}"
        )


def parse_upstreams(text: str) -> list[tuple[str, int]]:
    """``http://a:1;weight=3, http://b:2`` -> [(url, weight), ...]."""
    result = []
    for item in text.split(","):
        url, *params = (p.strip() for p in item.strip().split(";"))
        if not url:
            continue
        weight = 1
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() != "weight" or not value.strip().isdigit():
                raise ConfigError(
                    f"setting upstream (EDGECACHE_UPSTREAM) = {text!r}: "
                    f"expected URL[;weight=N], got {item.strip()!r}"
                )
            weight = int(value)
        result.append((url, weight))
    return result


def _check_upstream(url: str) -> None:
    parts = urlsplit(url)
    ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        ok = False
    _check(
        ok and not parts.query and not parts.fragment,
        "upstream",
        url,
        "an http:// or https:// URL with a host, e.g. http://127.0.0.1:8000",
    )


def _auth_rule(rule: object) -> AuthRule:
    if isinstance(rule, AuthRule):
        return rule
    if isinstance(rule, dict):
        try:
            return AuthRule(**rule)
        except TypeError as exc:
            raise ConfigError(f"setting auth: {rule!r}: {exc}") from None
    if isinstance(rule, tuple | list) and 2 <= len(rule) <= 3:
        return AuthRule(*rule)
    raise ConfigError(f"setting auth: {rule!r}: expected AuthRule, dict or (prefix, file[, realm])")


def parse_auth(raw: str) -> tuple[AuthRule, ...]:
    """``/admin/:/etc/edgecache/admin.htpasswd:Admin area;/ops/:/etc/ops.htpasswd``"""
    rules = []
    for item in raw.split(";"):
        if not item.strip():
            continue
        parts = item.strip().split(":", 2)
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise ValueError("expected PREFIX:FILE[:REALM] rules separated by ';'")
        rules.append(AuthRule(*parts))
    return tuple(rules)


def parse_size(raw: str) -> int:
    """``1048576``, ``512k``, ``256M``, ``1GiB`` -> bytes."""
    m = _SIZE.match(raw)
    if not m:
        raise ValueError("expected a size in bytes such as 1048576, 512k, 256M or 1G")
    unit = (m.group(2) or "").lower()[:1]
    return int(m.group(1)) * _UNITS[unit]


def parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")


def parse_float(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError("expected a number") from None


def parse_int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("expected an integer") from None


def parse_names(raw: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in raw.split(",") if n.strip())


def _identity(raw: str) -> str:
    return raw


_QUALITY_SETTINGS = {
    "br_quality": "br",
    "zstd_level": "zstd",
    "gzip_level": "gzip",
    "stored_br_quality": "br",
    "stored_zstd_level": "zstd",
    "stored_gzip_level": "gzip",
}

_PARSERS: dict[str, Callable[[str], Any]] = {
    "store": _identity,
    "store_path": _identity,
    "redis_prefix": _identity,
    "local_ttl": parse_float,
    "admin_token": _identity,
    "max_bytes": parse_size,
    "max_entry_bytes": parse_size,
    "heuristic_fraction": parse_float,
    "heuristic_max": parse_float,
    "stale_retention": parse_float,
    "max_variants": parse_int,
    "cache_name": _identity,
    "cache_set_cookie": _identity,
    "stale_on_error": parse_float,
    "targeted_fields": parse_names,
    "coalesce": parse_bool,
    "coalesce_timeout": parse_float,
    "pass_memory": parse_float,
    "compress": parse_bool,
    "codings": lambda raw: tuple(n.lower() for n in parse_names(raw)),
    "compress_min_size": parse_size,
    "compress_types": parse_names,
    **dict.fromkeys(_QUALITY_SETTINGS, parse_int),
    "auth": parse_auth,
    "auth_plaintext": parse_bool,
    "auth_forward_credentials": parse_bool,
    "auth_memo": parse_bool,
    "auth_memo_ttl": parse_float,
    "auth_memo_size": parse_int,
    "auth_max_failures": parse_int,
    "auth_max_failures_per_address": parse_int,
    "auth_hash_threads": parse_int,
    "auth_failure_window": parse_float,
    "auth_lockout": parse_float,
    "auth_failure_delay": parse_float,
    "cache": parse_bool,
    "upstream": _identity,
    "balance": _identity,
    "max_fails": parse_int,
    "fail_timeout": parse_float,
    "health_path": _identity,
    "health_interval": parse_float,
    "config": _identity,
    "listen_host": _identity,
    "listen_port": parse_int,
    "workers": parse_int,
    "preserve_host": parse_bool,
    "trusted_proxies": parse_names,
    "forwarded_header": parse_bool,
    "connect_timeout": parse_float,
    "read_timeout": parse_float,
    "send_timeout": parse_float,
    "max_body_size": parse_size,
    "certfile": _identity,
    "keyfile": _identity,
    "self_signed": parse_bool,
    "redirect_http_port": parse_int,
    "hsts": parse_int,
    "access_log": _identity,
    "server": _identity,
    "header_timeout": parse_float,
    "keepalive_timeout": parse_float,
    "write_timeout": parse_float,
    "max_header_bytes": parse_size,
    "max_header_fields": parse_int,
    "max_uri_bytes": parse_size,
    "max_connections": parse_int,
    "http2": parse_bool,
    "http2_cleartext_port": parse_int,
    "http2_max_concurrent_streams": parse_int,
    "http2_hpack_table_size": parse_size,
}
