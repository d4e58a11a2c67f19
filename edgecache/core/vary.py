"""Vary (RFC 9111 §4.1): secondary cache keys."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from edgecache.core.headers import ACCEPT_ENCODING, VARY, Headers, split_list
from edgecache.core.negotiation import acceptable_codings

KNOWN_CODINGS = ("br", "compress", "deflate", "gzip", "identity", "zstd")

SecondaryKey = tuple[tuple[bytes, bytes | None], ...]


def parse_vary(headers: Headers) -> tuple[bytes, ...] | None:
    """Lowercase field names listed in Vary; None for ``Vary: *`` (never matches)."""
    names: list[bytes] = []
    for member in split_list(headers.get_joined(VARY)):
        name = member.lower()
        if name == b"*":
            return None
        if name not in names:
            names.append(name)
    return tuple(names)


# Content-negotiation lists (RFC 9110 §12.5): members are case-insensitive (media
# ranges, charsets, language ranges; RFC 9110 §8.3.1, §8.5.1, RFC 4647 §2.1), weighted by
# q (§12.4.2), and their order only matters between members of equal weight.
WEIGHTED_LISTS = frozenset({b"accept", b"accept-charset", b"accept-language"})


@functools.lru_cache(maxsize=4096)
def normalise_weighted_list(value: bytes) -> bytes:
    """A canonical spelling of a weighted list: members lowercased (parameter values
    other than q kept as sent), no whitespace, ``q`` written shortest (``q=1`` dropped),
    and members ordered by falling weight. Members of equal weight keep their order:
    ``en, fr`` and ``fr, en`` may rightly get different answers; ``fr;q=0.5, en`` and
    ``EN,fr; q=0.50`` may not.
    """
    weighted: list[tuple[float, int, bytes]] = []
    for position, member in enumerate(split_list(value)):
        main, *params = (p.strip(b" \t") for p in member.split(b";"))
        out = [main.lower()]
        weight = 1.0
        for param in params:
            key, eq, arg = (x.strip(b" \t") for x in param.partition(b"="))
            key = key.lower()
            if key == b"q" and _QVALUE.match(arg):
                weight = float(arg)
                arg = arg.rstrip(b"0").rstrip(b".") if b"." in arg else arg
                if weight == 1.0:
                    continue
            out.append(key + eq + arg)
        weighted.append((-weight, position, b";".join(out)))
    return b",".join(member for _, _, member in sorted(weighted))


_QVALUE = re.compile(rb"^(0(\.\d{0,3})?|1(\.0{0,3})?)$")  # RFC 9110 §12.4.2


def normalise_field(headers: Headers, name: bytes) -> bytes | None:
    """Combine a field's lines and drop optional whitespace around list members.

    §4.1 allows "adding or removing whitespace, where allowed in the header field's
    syntax" and "combining multiple header field lines". Case is kept: not every field
    is case-insensitive; the content-negotiation lists, which are, are also put in a
    canonical order and case (``normalise_weighted_list``).
    """
    values = headers.get_all(name)
    if not values:
        return None
    if name == ACCEPT_ENCODING:
        # A thousand browser spellings, a handful of meanings: key on the set of codings
        # accepted, so any variant an origin chose for one request suits the others.
        return acceptable_codings(b",".join(values), KNOWN_CODINGS)
    if name in WEIGHTED_LISTS:
        return normalise_weighted_list(b",".join(values))
    return b",".join(split_list(b",".join(values)))


def secondary_key(names: Iterable[bytes], request_headers: Headers) -> SecondaryKey:
    """The values the request carries for each field named by a stored Vary."""
    return tuple((name, normalise_field(request_headers, name)) for name in names)


def matches(stored: SecondaryKey, request_headers: Headers) -> bool:
    """True when the request selects the stored variant (§4.1)."""
    return all(normalise_field(request_headers, name) == value for name, value in stored)
