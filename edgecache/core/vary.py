"""Vary (RFC 9111 §4.1): secondary cache keys."""

from __future__ import annotations

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


def normalise_field(headers: Headers, name: bytes) -> bytes | None:
    """Combine a field's lines and drop optional whitespace around list members.

    §4.1 allows "adding or removing whitespace, where allowed in the header field's
    syntax" and "combining multiple header field lines". Case is kept: not every field
    is case-insensitive.
    """
    values = headers.get_all(name)
    if not values:
        return None
    if name == ACCEPT_ENCODING:
        # A thousand browser spellings, a handful of meanings: key on the set of codings
        # accepted, so any variant an origin chose for one request suits the others.
        return acceptable_codings(b",".join(values), KNOWN_CODINGS)
    return b",".join(split_list(b",".join(values)))


def secondary_key(names: Iterable[bytes], request_headers: Headers) -> SecondaryKey:
    """The values the request carries for each field named by a stored Vary."""
    return tuple((name, normalise_field(request_headers, name)) for name in names)


def matches(stored: SecondaryKey, request_headers: Headers) -> bool:
    """True when the request selects the stored variant (§4.1)."""
    return all(normalise_field(request_headers, name) == value for name, value in stored)
