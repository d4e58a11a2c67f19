"""Cache-Control (RFC 9111 §5.2) and Pragma (§5.4) parsing.

Lenient: the parser never raises. Directive names are case-insensitive; arguments may
be tokens or quoted strings. Delta-seconds that are not non-negative integers become
``INVALID`` so the policy can act conservatively (§4.2.1: "caches are encouraged to
consider responses that have invalid freshness information ... to be stale"); values too
large to represent are clamped to 2^31 (§1.2.2). A directive repeated with different
values is also ``INVALID`` (§4.2.1 allows "the response should be considered stale").
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from edgecache.core.headers import CACHE_CONTROL, PRAGMA, Headers, split_list
from edgecache.core.structured import ParseError, Token, parse_dictionary

INVALID = -1
"""A delta-seconds directive that was present but unusable."""

DELTA_MAX = 2**31  # RFC 9111 §1.2.2

_DELTA_DIRECTIVES = frozenset(
    {
        "max-age",
        "s-maxage",
        "max-stale",
        "min-fresh",
        "stale-while-revalidate",
        "stale-if-error",
    }
)


@dataclass(frozen=True, slots=True)
class CacheControl:
    """Parsed directives. Delta-seconds are ``None`` (absent), ``INVALID`` or >= 0."""

    no_store: bool = False
    no_cache: bool = False
    no_cache_fields: frozenset[bytes] = frozenset()
    private: bool = False
    private_fields: frozenset[bytes] = frozenset()
    public: bool = False
    must_revalidate: bool = False
    proxy_revalidate: bool = False
    no_transform: bool = False
    immutable: bool = False
    only_if_cached: bool = False
    max_age: int | None = None
    s_maxage: int | None = None
    max_stale: int | None = None
    """``DELTA_MAX`` when the client sent max-stale without a value (any staleness)."""
    min_fresh: int | None = None
    stale_while_revalidate: int | None = None
    stale_if_error: int | None = None
    extensions: dict[str, str | None] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return self == EMPTY


EMPTY = CacheControl()


def parse_delta_seconds(raw: str | None) -> int:
    """RFC 9111 §1.2.2 delta-seconds; ``INVALID`` when not a plain non-negative integer."""
    if raw is None or not raw.isascii() or not raw.isdigit():
        return INVALID
    return min(int(raw), DELTA_MAX) if len(raw) < 20 else DELTA_MAX


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        inner = raw[1:-1]
        out = []
        escaped = False
        for ch in inner:
            if escaped:
                out.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            else:
                out.append(ch)
        return "".join(out)
    return raw


def parse_directives(value: bytes | None) -> dict[str, str | None]:
    """Directive name (lowercase) to argument (unquoted) or None.

    A name seen twice with different arguments maps to the sentinel ``"\\x00conflict"``.
    """
    result: dict[str, str | None] = {}
    for member in split_list(value):
        text = member.decode("latin-1")
        name, eq, arg = text.partition("=")
        name = name.strip().lower()
        if not name:
            continue
        argument = _unquote(arg.strip()) if eq else None
        if name in result and result[name] != argument:
            result[name] = _CONFLICT
        else:
            result[name] = argument
    return result


_CONFLICT = "\x00conflict"


def _field_names(arg: str | None) -> frozenset[bytes]:
    if not arg or arg == _CONFLICT:
        return frozenset()
    names = (n.strip().lower() for n in arg.split(","))
    return frozenset(n.encode("latin-1") for n in names if n)


@functools.lru_cache(maxsize=4096)
def parse_cache_control(value: bytes | None) -> CacheControl:
    """Parse a (joined) Cache-Control value. Never raises.

    Memoised by value: a site sends a handful of distinct Cache-Control strings, and the
    result is immutable (treat ``extensions`` as read-only)."""
    d = parse_directives(value)
    if not d:
        return EMPTY
    return _from_directives(d)


def _from_directives(d: dict[str, str | None]) -> CacheControl:
    """The CacheControl for directive names (lowercase) mapped to arguments."""

    def delta(name: str) -> int | None:
        if name not in d:
            return None
        return parse_delta_seconds(d[name])

    max_stale: int | None = None
    if "max-stale" in d:
        # §5.2.1.2: without a value, the client accepts a stale response of any age.
        max_stale = DELTA_MAX if d["max-stale"] is None else delta("max-stale")
    no_cache_fields = _field_names(d.get("no-cache"))
    private_fields = _field_names(d.get("private"))
    return CacheControl(
        no_store="no-store" in d,
        no_cache="no-cache" in d and not no_cache_fields,
        no_cache_fields=no_cache_fields,
        private="private" in d and not private_fields,
        private_fields=private_fields,
        public="public" in d,
        must_revalidate="must-revalidate" in d,
        proxy_revalidate="proxy-revalidate" in d,
        no_transform="no-transform" in d,
        immutable="immutable" in d,
        only_if_cached="only-if-cached" in d,
        max_age=delta("max-age"),
        s_maxage=delta("s-maxage"),
        max_stale=max_stale,
        min_fresh=delta("min-fresh"),
        stale_while_revalidate=delta("stale-while-revalidate"),
        stale_if_error=delta("stale-if-error"),
        extensions={k: v for k, v in d.items() if k not in _KNOWN},
    )


_KNOWN = _DELTA_DIRECTIVES | {
    "no-store",
    "no-cache",
    "private",
    "public",
    "must-revalidate",
    "proxy-revalidate",
    "no-transform",
    "immutable",
    "only-if-cached",
}


_FLAG_DIRECTIVES = frozenset(
    {
        "no-store",
        "public",
        "must-revalidate",
        "proxy-revalidate",
        "no-transform",
        "immutable",
        "must-understand",
    }
)
_TARGETED_DELTAS = frozenset({"max-age", "s-maxage", "stale-while-revalidate", "stale-if-error"})


@functools.lru_cache(maxsize=1024)
def parse_targeted(value: bytes) -> CacheControl | None:
    """A targeted cache-control field (RFC 9213 §2.1: CDN-Cache-Control or our own), or
    None when the cache must ignore it and fall back to Cache-Control.

    The field is an RFC 8941 Dictionary; a parse error, or an empty field, means it is
    ignored whole (§2.1). So is a field whose known directive has a value of the wrong
    type (``max-age="10000"``, ``max-age=-1``, ``no-store=5``): no value was given that
    this cache can obey, and guessing one could override a ``no-store`` in
    Cache-Control. Parameters are ignored (§2.1). ``no-cache`` and ``private`` take a
    String of field names, as the quoted form in Cache-Control. Boolean false members
    (``public=?0``) are absent.
    """
    try:
        members = parse_dictionary(value)
    except ParseError:
        return None
    if not members:
        return None
    directives: dict[str, str | None] = {}
    for name, (arg, _params) in members.items():
        if arg is False:
            continue
        if name in _TARGETED_DELTAS:
            if isinstance(arg, bool) or not isinstance(arg, int) or arg < 0:
                return None
            directives[name] = str(arg)
        elif name in _FLAG_DIRECTIVES:
            if arg is not True:
                return None
            directives[name] = None
        elif name in ("no-cache", "private"):
            if arg is True:
                directives[name] = None
            elif isinstance(arg, str) and not isinstance(arg, Token):
                directives[name] = arg
            else:
                return None
        elif isinstance(arg, str):  # an extension: kept as Cache-Control would keep it
            directives[name] = str(arg)
        else:
            directives[name] = None if arg is True else repr(arg)
    return _from_directives(directives)


def request_cache_control(headers: Headers) -> CacheControl:
    """Request directives, with ``Pragma: no-cache`` honoured when Cache-Control is absent.

    RFC 9111 §5.4: "When the Cache-Control header field is also present and understood in
    a request, Pragma is ignored."
    """
    raw = headers.get_joined(CACHE_CONTROL)
    if raw is None:
        pragma = headers.get_joined(PRAGMA)
        if pragma and any(t.lower() == b"no-cache" for t in split_list(pragma)):
            return CacheControl(no_cache=True)
        return EMPTY
    return parse_cache_control(raw)


def format_cache_control(cc: dict[str, str | None]) -> bytes:
    """Format directives; arguments that are not tokens are quoted."""
    parts = []
    for name, arg in cc.items():
        if arg is None:
            parts.append(name)
        elif arg and all(c.isalnum() or c in "-!#$%&'*+.^_`|~" for c in arg):
            parts.append(f"{name}={arg}")
        else:
            escaped = arg.replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'{name}="{escaped}"')
    return ", ".join(parts).encode("latin-1")
