"""HTTP/2 field lists to and from the wire layer's types, as pure functions (no I/O).

- A stream's decoded header list becomes a :class:`Request` (RFC 9113 §8.3): the
  pseudo-header fields give the method, target and authority, checked with the same
  rules as an HTTP/1.1 head (``rules``), so a handler sees one shape of request;
  ``Host`` is the request's first field and split cookies are joined again.
- A handler's head becomes the list h2 encodes: ``:status`` first, names lowercased,
  the connection-specific fields dropped (RFC 9113 §8.2.2), and no CR, LF or NUL in
  any name or value (RFC 9113 §8.2.1), which would smuggle a field past an HTTP/1.1
  hop behind the client.
- An :class:`Answer`'s pre-serialised HTTP/1.1 lines become such a list too; its
  stored head is parsed and HPACK-encoded once (:class:`AnswerFields`), not per hit.
"""

from __future__ import annotations

from typing import Any

from hpack import Encoder, NeverIndexedHeaderTuple

from edgecache.wire.rules import Refusal, valid_authority
from edgecache.wire.types import Answer, Headers, Request

Fields = list[tuple[bytes, bytes]]

CONNECTION_SPECIFIC = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade")
)
STATUS = {status: b"%d" % status for status in range(100, 1000)}
_FORBIDDEN = b"\r\n\0"


def build_request(
    fields: Fields,
    ended: bool,
    scheme: str,
    client: tuple[str, int] | None,
    max_fields: int,
    max_uri_bytes: int,
) -> tuple[Request, int | None]:
    """The validated Request and its declared Content-Length, or Refusal. ``fields``
    is h2's decoded list (already checked for RFC 9113 §8.2 form: lowercase names,
    pseudo-fields first and once each, no connection-specific field); ``ended``: the
    HEADERS frame ended the stream (no body)."""
    method = path = authority = host = b""
    headers: Headers = [(b"host", b"")]  # filled in below: Host comes first
    cookies: list[bytes] = []
    length: int | None = None
    for name, value in fields:
        if name[:1] == b":":
            if name == b":method":
                method = value
            elif name == b":path":
                path = value
            elif name == b":authority":
                authority = value
            continue  # :scheme is ours to say (how the client reached us), as in HTTP/1.1
        if name == b"cookie":
            if not cookies:
                headers.append((b"cookie", b""))  # the joined value goes here
            cookies.append(value)
            continue
        if name == b"host":
            host = value
            continue
        if name == b"content-length":
            length = _length(value)
        headers.append((name, value))
    if len(headers) - 1 + len(cookies) > max_fields:
        raise Refusal(431, "Request Header Fields Too Large")
    if len(path) > max_uri_bytes:
        raise Refusal(414, "URI Too Long")
    if method == b"CONNECT":
        raise Refusal(501, "Not Implemented: CONNECT")  # no extended CONNECT offered
    # RFC 9113 §8.3.1: a Host that names another entity than :authority is malformed.
    if authority and host and host.lower() != authority.lower():
        raise Refusal(400, "Bad Request: Host differs from :authority")
    authority = (authority or host).lower()
    if not authority or not valid_authority(authority):
        raise Refusal(400, "Bad Request: invalid or no :authority")
    if path[:1] == b"/":
        bare, _, query = path.partition(b"?")
    elif path == b"*" and method == b"OPTIONS":
        bare, query = b"*", b""
    else:
        raise Refusal(400, "Bad Request: invalid :path")
    headers[0] = (b"host", authority)
    if cookies:
        # RFC 9113 §8.2.3: split cookie fields are joined with "; " for HTTP/1.1.
        at = next(i for i, (n, _) in enumerate(headers) if n == b"cookie")
        headers[at] = (b"cookie", b"; ".join(cookies))
    has_body = not ended and length != 0
    request = Request(
        method.decode("ascii"),
        path.decode("latin-1"),  # the target: :path as received
        bare.decode("latin-1"),
        query.decode("latin-1"),
        authority.decode("latin-1"),
        scheme,
        "2",
        headers,
        client,
        True,
        has_body,
        None,
    )
    return request, length


def _length(value: bytes) -> int:
    if not value.isdigit():
        raise Refusal(400, "Bad Request: invalid Content-Length")
    return int(value)


def response_fields(status: int, headers: Headers) -> tuple[Fields, int | None, str, bool]:
    """h2's list for ``status`` and ``headers``: (fields, the Content-Length given,
    the Cache-Status given, whether a Date was given). Raises ValueError for a CR, LF
    or NUL in a name or value."""
    fields: Fields = [(b":status", STATUS.get(status) or b"%d" % status)]
    length: int | None = None
    cache_status = ""
    dated = False
    for name, value in headers:
        name = name.lower()
        if name in CONNECTION_SPECIFIC:
            continue
        if name == b"content-length":
            length = int(value)
            if status == 204 or status < 200:
                continue  # RFC 9110 §8.6: never on 1xx or 204
        elif name == b"date":
            dated = True
        elif name == b"cache-status":
            cache_status = value.decode("latin-1")
        fields.append((name, value))
    _check(fields)
    return fields, length, cache_status, dated


def plain_answer(status: int, text: str) -> tuple[Headers, bytes]:
    """The fields (without ``:status``) and body of the wire layer's own short text
    answers (refusals, 408, 413, 500), as ``framing.plain_answer`` for HTTP/1.1."""
    body = f"{status} {text}\n".encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
        (b"cache-control", b"no-store"),
    ]
    return headers, body


def _check(fields: Fields) -> None:
    """One pass over all names and values for the bytes HTTP/2 forbids in them."""
    block = b"".join(b"".join(pair) for pair in fields)
    if len(block.translate(None, _FORBIDDEN)) != len(block):
        raise ValueError("a header field name or value holds a CR, LF or NUL")


def parse_head_part(part: bytes) -> Fields:
    """The fields of pre-serialised HTTP/1.1 head lines (a status line is skipped).
    Lenient: a line without a colon is skipped."""
    fields: Fields = []
    for line in part.split(b"\r\n"):
        if not line or line.startswith(b"HTTP/"):
            continue
        name, colon, value = line.partition(b":")
        name = name.strip().lower()
        if not colon or not name or name in CONNECTION_SPECIFIC:
            continue
        fields.append((name, value.strip(b" \t")))
    _check(fields)
    return fields


PREPARED = b"\x00edgecache-prepared"
"""Not a field name (no field name holds NUL): marks an already HPACK-encoded part."""


class PreparingEncoder(Encoder):
    """h2's HPACK encoder, which also takes a part encoded in advance: a field list
    whose second item is ``(PREPARED, block)`` is encoded as ``:status``, then
    ``block`` as it is, then the rest. The block is made of never-indexed literals
    (RFC 7541 §6.2.3), which leave the dynamic table alone, so one block is right on
    every connection; ``:status`` comes first, as RFC 9113 §8.3 wants it, and carries
    any table size update the encoder owes, as RFC 7541 §4.2 wants that."""

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        if len(headers) > 1 and headers[1][0] == PREPARED:
            status: bytes = super().encode(headers[:1], huffman)
            block: bytes = headers[1][1]
            rest: bytes = super().encode(headers[2:], huffman)
            return status + block + rest
        return super().encode(headers, huffman)


def prepare(fields: Fields) -> bytes:
    """``fields`` as an HPACK block that depends on no connection's dynamic table."""
    return bytes(Encoder().encode([NeverIndexedHeaderTuple(n, v) for n, v in fields]))


class AnswerFields:
    """An Answer's head as h2 fields; its first part (the stored head) is parsed and
    HPACK-encoded once, and sent as that block on every connection.

    Keyed by the part's bytes *value*, so a hit can never get another answer's fields
    (an ``id()`` key could, once the part is freed and its address reused). A stored
    entry hands out the same bytes object on each hit: its hash is cached in the
    object and the lookup's equality check is an identity check, so a hit pays no
    parsing, no copying and no encoding of its stored fields. The parts after it (Age,
    Cache-Status) change from one hit to the next: two short lines, parsed and encoded
    each time rather than filling the memo. Bounded: past ``size`` heads the memo
    starts again. The price: the stored fields are not compressed against earlier
    answers on the connection (the dynamic table), only Huffman-coded.
    """

    __slots__ = ("_parts", "size")

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._parts: dict[bytes, bytes] = {}

    def fields(self, answer: Answer) -> Fields:
        """A new list for ``PreparingEncoder``: ``:status``, the stored part's block,
        then every other part's fields in order."""
        out: Fields = [(b":status", STATUS.get(answer.status) or b"%d" % answer.status)]
        head = answer.head
        if not head:
            return out
        parts = self._parts
        stored = head[0]
        block = parts.get(stored)
        if block is None:
            block = prepare(parse_head_part(stored))
            if len(parts) >= self.size:
                parts.clear()
            parts[stored] = block
        out.append((PREPARED, block))
        for part in head[1:]:
            out += parse_head_part(part)
        return out
