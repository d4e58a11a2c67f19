"""One header type for the whole core.

Names are lowercase bytes, values are opaque bytes; order and duplicates are kept, as
on the wire. Adapters normalise once at the edge (ASGI already gives lowercase bytes;
WSGI converts from environ as latin-1, PEP 3333).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

HeaderPairs = list[tuple[bytes, bytes]]

ACCEPT_ENCODING = b"accept-encoding"
AGE = b"age"
AUTHORIZATION = b"authorization"
CACHE_CONTROL = b"cache-control"
CACHE_STATUS = b"cache-status"
CONNECTION = b"connection"
CONTENT_ENCODING = b"content-encoding"
CONTENT_LENGTH = b"content-length"
CONTENT_LOCATION = b"content-location"
CONTENT_RANGE = b"content-range"
CONTENT_TYPE = b"content-type"
COOKIE = b"cookie"
DATE = b"date"
ETAG = b"etag"
EXPIRES = b"expires"
HOST = b"host"
IF_MATCH = b"if-match"
IF_MODIFIED_SINCE = b"if-modified-since"
IF_NONE_MATCH = b"if-none-match"
IF_RANGE = b"if-range"
IF_UNMODIFIED_SINCE = b"if-unmodified-since"
LAST_MODIFIED = b"last-modified"
LOCATION = b"location"
PRAGMA = b"pragma"
RANGE = b"range"
SET_COOKIE = b"set-cookie"
TRANSFER_ENCODING = b"transfer-encoding"
VARY = b"vary"

# RFC 9110 §7.6.1 and RFC 9111 §3.1: connection-specific fields never stored or reused.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)


class Headers:
    """An ordered multi-map of lowercase byte names to byte values.

    Immutable by convention: methods that change headers return a new object. Lookups go
    through an index of first values built on first use (one C-speed ``dict`` call), so
    a request pays one pass over its headers however many fields the policy asks about.
    """

    __slots__ = ("_first", "_pairs", "_repeated")

    def __init__(self, pairs: Iterable[tuple[bytes, bytes]] = ()) -> None:
        self._pairs: HeaderPairs = pairs if isinstance(pairs, list) else list(pairs)
        self._first: dict[bytes, bytes] | None = None
        self._repeated = False

    @classmethod
    def from_raw(cls, pairs: Iterable[tuple[bytes, bytes]]) -> Headers:
        """Build from pairs whose names may not be lowercase yet."""
        return cls([(name.lower(), value) for name, value in pairs])

    @classmethod
    def from_str_pairs(cls, pairs: Iterable[tuple[str, str]]) -> Headers:
        return cls([(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in pairs])

    def _index(self) -> dict[bytes, bytes]:
        # Built from the reversed pairs so the first occurrence of a name wins.
        first = dict(reversed(self._pairs))
        self._repeated = len(first) != len(self._pairs)
        self._first = first
        return first

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def __contains__(self, name: object) -> bool:
        return name in (self._first if self._first is not None else self._index())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._pairs == other._pairs

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self._pairs!r})"

    @property
    def pairs(self) -> HeaderPairs:
        """The raw pairs, for sending. Do not mutate."""
        return self._pairs

    def get(self, name: bytes) -> bytes | None:
        """The first value of ``name``, or None."""
        return (self._first if self._first is not None else self._index()).get(name)

    def get_all(self, name: bytes) -> list[bytes]:
        first = (self._first if self._first is not None else self._index()).get(name)
        if first is None:
            return []
        if not self._repeated:
            return [first]
        return [v for n, v in self._pairs if n == name]

    def get_joined(self, name: bytes) -> bytes | None:
        """All field lines of a list-based field joined with commas (RFC 9110 §5.3)."""
        first = (self._first if self._first is not None else self._index()).get(name)
        if first is None or not self._repeated:
            return first
        return b", ".join(v for n, v in self._pairs if n == name)

    def without(self, names: Iterable[bytes]) -> Headers:
        drop = frozenset(names)
        return Headers([(n, v) for n, v in self._pairs if n not in drop])

    def with_added(self, pairs: Iterable[tuple[bytes, bytes]]) -> Headers:
        return Headers([*self._pairs, *pairs])

    def replaced(self, updates: Iterable[tuple[bytes, bytes]]) -> Headers:
        """A copy where every name present in ``updates`` takes exactly the new values."""
        updates = list(updates)
        names = {n for n, _ in updates}
        return Headers([(n, v) for n, v in self._pairs if n not in names] + updates)


def split_list(value: bytes | None) -> list[bytes]:
    """Split a comma-separated list field into trimmed, non-empty members.

    Quoted strings are respected so a comma inside quotes does not split.
    """
    if not value:
        return []
    items: list[bytes] = []
    start = 0
    in_quotes = False
    escaped = False
    for i, ch in enumerate(value):
        if escaped:
            escaped = False
        elif in_quotes and ch == 0x5C:  # backslash
            escaped = True
        elif ch == 0x22:  # double quote
            in_quotes = not in_quotes
        elif ch == 0x2C and not in_quotes:  # comma
            items.append(value[start:i])
            start = i + 1
    items.append(value[start:])
    return [item.strip(b" \t") for item in items if item.strip(b" \t")]


def connection_tokens(headers: Headers) -> frozenset[bytes]:
    """Field names listed in Connection (RFC 9110 §7.6.1), lowercased."""
    return frozenset(t.lower() for t in split_list(headers.get_joined(CONNECTION)))


def strip_hop_by_hop(headers: Headers) -> Headers:
    """Drop hop-by-hop fields and those the Connection field names (RFC 9111 §3.1)."""
    return headers.without(HOP_BY_HOP | connection_tokens(headers))
