"""Content-coding negotiation from Accept-Encoding (RFC 9110 §12.5.3, §12.4.2)."""

from __future__ import annotations

import functools
from collections.abc import Callable

from edgecache.core.headers import split_list

IDENTITY = "identity"
_ALIASES = {"x-gzip": "gzip"}


def parse_qvalue(raw: str) -> float | None:
    """RFC 9110 §12.4.2 qvalue: 0 to 1 with at most three decimals; None if invalid."""
    raw = raw.strip()
    if not raw or len(raw) > 5 or raw[0] not in "01":
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if 0.0 <= value <= 1.0 else None


def parse_accept_encoding(value: bytes | None) -> dict[str, float]:
    """Coding (lowercase) to qvalue. Never raises; a member with an invalid qvalue is
    read as q=0 (not acceptable), the conservative reading. A repeated coding keeps its
    first qvalue."""
    result: dict[str, float] = {}
    for member in split_list(value):
        coding, *params = member.decode("latin-1").split(";")
        coding = coding.strip().lower()
        coding = _ALIASES.get(coding, coding)
        if not coding:
            continue
        q = 1.0
        for param in params:
            name, _, arg = param.partition("=")
            if name.strip().lower() == "q":
                parsed = parse_qvalue(arg)
                q = 0.0 if parsed is None else parsed
        result.setdefault(coding, q)
    return result


def _quality(accepted: dict[str, float], coding: str) -> float:
    if coding in accepted:
        return accepted[coding]
    if "*" in accepted:
        return accepted["*"]
    # §12.5.3: identity is acceptable unless excluded by "identity;q=0" or "*;q=0".
    return 1.0 if coding == IDENTITY else 0.0


def choose_coding(value: bytes | None, preference: tuple[str, ...]) -> str:
    """The coding to send: the highest qvalue among ``preference`` (ties go to the
    server's order), or ``identity``. ``q=0`` is never chosen.

    A request without Accept-Encoding states no preference; like nginx and most servers
    we then send identity, the one coding every client can read. An empty value means
    identity only. When even identity is excluded and nothing else fits, identity is
    still sent: §12.5.3 allows a server to ignore the field rather than answer 406.
    """
    if not value:
        return IDENTITY
    accepted = parse_accept_encoding(value)
    best, best_q = IDENTITY, 0.0
    for coding in preference:
        q = _quality(accepted, coding)
        if q > best_q:
            best, best_q = coding, q
    if best_q == 0.0 or (best_q < _quality(accepted, IDENTITY) and IDENTITY in accepted):
        return IDENTITY
    return best


def negotiator(preference: tuple[str, ...]) -> Callable[[bytes | None], str]:
    """``choose_coding`` for one preference order, memoised by header value: browsers
    send a handful of distinct Accept-Encoding strings, each parsed once."""

    @functools.lru_cache(maxsize=1024)
    def choose(value: bytes | None) -> str:
        return choose_coding(value, preference)

    return choose


def acceptable_codings(value: bytes | None, known: tuple[str, ...]) -> bytes:
    """A canonical form of Accept-Encoding for cache keys (RFC 9111 §4.1 normalisation):
    the sorted set of ``known`` codings the client accepts. Requests with the same set
    can share any variant an origin chose for one of them."""
    if value is None:
        return b""
    accepted = parse_accept_encoding(value)
    names = sorted(c for c in known if _quality(accepted, c) > 0)
    return ",".join(names).encode("ascii")
