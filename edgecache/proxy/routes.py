"""The route file (``--config edgecache.toml``): pools, routes to a pool, a static root
or a redirect, and per-route settings. Validated at start; every error names the line
and the key.

    [[pool]]
    name = "api"
    servers = ["http://127.0.0.1:8001", "http://127.0.0.1:8002;weight=3"]
    balance = "round-robin"          # or "least-conn"; max_fails, fail_timeout,
                                     # health_path, health_interval, connect_timeout,
                                     # read_timeout as the flags
    [[route]]
    path = "/api/"                   # prefix; host = "example.com" optional
    pool = "api"                     # or static = "/srv/www" (spa = true), or
                                     # redirect = "https://..." (status = 301)
    cache = true                     # compress, auth = {user_file, realm} optional
    read_timeout = 300               # this route's own (nginx's proxy_read_timeout)
    default_ttl = "10m"              # freshness where the origin gives none (off: 0)
    headers = {"X-Frame-Options" = "DENY"}
    [[route.rules]]                  # extra headers where the path matches a regex
    match = "service-worker\\\\.js$"
    headers = {"Cache-Control" = "no-store"}
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from edgecache.config import Settings
from edgecache.core.auth import AuthRule
from edgecache.errors import ConfigError

POOL_KEYS = {
    "name",
    "servers",
    "balance",
    "max_fails",
    "fail_timeout",
    "health_path",
    "health_interval",
    "connect_timeout",
    "read_timeout",
}
ROUTE_KEYS = {
    "path",
    "host",
    "pool",
    "static",
    "spa",
    "redirect",
    "status",
    "cache",
    "compress",
    "auth",
    "headers",
    "rules",
    "read_timeout",
    "default_ttl",
}


@dataclass(frozen=True)
class HeaderRule:
    pattern: re.Pattern[str] | None
    headers: tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True)
class Route:
    path: str
    host: str | None = None
    pool: str | None = None
    static: str | None = None
    spa: bool = False
    redirect: str | None = None
    status: int = 301
    settings: Settings | None = None
    rules: tuple[HeaderRule, ...] = ()


@dataclass
class RouteTable:
    pools: dict[str, Settings] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)


class _Locator:
    """Line numbers for error messages: tomllib gives values, not positions."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def line(self, table: str, index: int, key: str | None) -> int:
        seen = -1
        header = re.compile(rf"^\s*\[\[\s*{re.escape(table)}\s*\]\]")
        for number, line in enumerate(self.lines, start=1):
            if header.match(line):
                seen += 1
                if seen == index and key is None:
                    return number
            elif seen == index and key is not None:
                if re.match(rf"^\s*{re.escape(key)}\s*=", line):
                    return number
                if line.lstrip().startswith("[") and not line.lstrip().startswith("[[route.r"):
                    break
        return 0

    def fail(self, table: str, index: int, key: str | None, message: str) -> ConfigError:
        line = self.line(table, index, key)
        where = f"{self.path}:{line}" if line else self.path
        what = f"[[{table}]] #{index + 1}" + (f" key {key!r}" if key else "")
        return ConfigError(f"{where}: {what}: {message}")


def load_routes(path: str, base: Settings) -> RouteTable:
    """Read and validate the route file against the base settings."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ConfigError(f"setting config (EDGECACHE_CONFIG): {path!r}: {exc.strerror}") from None
    text = raw.decode("utf-8", errors="replace")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    where = _Locator(path, text)
    unknown = set(data) - {"pool", "route"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown table(s) {', '.join(sorted(unknown))}; "
            "expected [[pool]] and [[route]]"
        )
    table = RouteTable()
    for i, pool in enumerate(data.get("pool", [])):
        name, settings = _pool(pool, i, base, where)
        if name in table.pools:
            raise where.fail("pool", i, "name", f"pool {name!r} is defined twice")
        table.pools[name] = settings
    for i, route in enumerate(data.get("route", [])):
        table.routes.append(_route(route, i, base, table.pools, where))
    if not table.routes:
        raise ConfigError(f"{path}: no [[route]] defined")
    return table


def _typed(
    entry: dict[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    table: str,
    index: int,
    where: _Locator,
) -> Any:
    value = entry.get(key)
    if value is not None and not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise where.fail(table, index, key, f"expected {names}, got {value!r}")
    return value


def _pool(entry: dict[str, Any], i: int, base: Settings, where: _Locator) -> tuple[str, Settings]:
    for key in set(entry) - POOL_KEYS:
        raise where.fail("pool", i, key, f"unknown key; expected one of {sorted(POOL_KEYS)}")
    name = _typed(entry, "name", str, "pool", i, where)
    if not name:
        raise where.fail("pool", i, None, "a pool needs a name")
    servers = _typed(entry, "servers", list, "pool", i, where)
    if not servers or not all(isinstance(s, str) for s in servers):
        raise where.fail("pool", i, "servers", "expected a list of URLs")
    changes: dict[str, Any] = {"upstream": ",".join(servers)}
    for key in set(POOL_KEYS) - {"name", "servers"}:
        if key in entry:
            changes[key] = entry[key]
    try:
        return name, dataclasses.replace(base, **changes)
    except (ConfigError, TypeError) as exc:
        bad = next((k for k in changes if k in str(exc)), None)
        raise where.fail("pool", i, bad, str(exc)) from None


def _route(
    entry: dict[str, Any], i: int, base: Settings, pools: dict[str, Settings], where: _Locator
) -> Route:
    for key in set(entry) - ROUTE_KEYS:
        raise where.fail("route", i, key, f"unknown key; expected one of {sorted(ROUTE_KEYS)}")
    path = _typed(entry, "path", str, "route", i, where)
    if not path or not path.startswith("/"):
        raise where.fail("route", i, "path", "expected a path prefix such as /api/")
    targets = [k for k in ("pool", "static", "redirect") if k in entry]
    if len(targets) != 1:
        raise where.fail("route", i, None, "needs exactly one of pool, static, redirect")
    pool = _typed(entry, "pool", str, "route", i, where)
    if pool is not None and pool not in pools:
        raise where.fail("route", i, "pool", f"unknown pool {pool!r}")
    static = _typed(entry, "static", str, "route", i, where)
    status = _typed(entry, "status", int, "route", i, where) or 301
    if status not in (301, 302, 303, 307, 308):
        raise where.fail("route", i, "status", "expected 301, 302, 303, 307 or 308")
    settings = pools[pool] if pool else base
    changes: dict[str, Any] = {"cache": bool(pool)} if "cache" not in entry else {}
    for key in ("cache", "compress"):
        if key in entry:
            changes[key] = _typed(entry, key, bool, "route", i, where)
    if "read_timeout" in entry:  # nginx's proxy_read_timeout per location
        if pool is None:
            raise where.fail("route", i, "read_timeout", "only a route to a pool has one")
        timeout = _typed(entry, "read_timeout", (int, float), "route", i, where)
        if isinstance(timeout, bool) or timeout <= 0:
            raise where.fail("route", i, "read_timeout", "expected seconds > 0")
        changes["read_timeout"] = float(timeout)
    if "default_ttl" in entry:  # nginx's proxy_cache_valid: the operator's opt-in
        ttl = _typed(entry, "default_ttl", (int, float, str), "route", i, where)
        changes["default_ttl"] = ttl
    auth = _typed(entry, "auth", dict, "route", i, where)
    if auth is not None:
        if not isinstance(auth.get("user_file"), str):
            raise where.fail("route", i, "auth", "expected {user_file = ..., realm = ...}")
        changes["auth"] = (AuthRule(path, auth["user_file"], str(auth.get("realm", "Restricted"))),)
    rules = [_rule(None, entry.get("headers") or {}, i, "headers", where)]
    for rule in _typed(entry, "rules", list, "route", i, where) or []:
        if not isinstance(rule, dict) or not isinstance(rule.get("match"), str):
            raise where.fail("route", i, "rules", "expected [[route.rules]] with match and headers")
        rules.append(_rule(rule["match"], rule.get("headers") or {}, i, "match", where))
    return Route(
        path=path,
        host=(_typed(entry, "host", str, "route", i, where) or "").lower() or None,
        pool=pool,
        static=static,
        spa=bool(_typed(entry, "spa", bool, "route", i, where)),
        redirect=_typed(entry, "redirect", str, "route", i, where),
        status=status,
        settings=dataclasses.replace(settings, **changes),
        rules=tuple(r for r in rules if r.headers),
    )


def _rule(pattern: str | None, headers: Any, i: int, key: str, where: _Locator) -> HeaderRule:
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise where.fail("route", i, key, "headers must be a table of strings")
    try:
        compiled = re.compile(pattern) if pattern is not None else None
    except re.error as exc:
        raise where.fail("route", i, "match", f"bad regular expression: {exc}") from None
    pairs = tuple((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())
    return HeaderRule(compiled, pairs)
