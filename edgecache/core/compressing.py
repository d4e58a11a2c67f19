"""The compression layer's part of one request, as a sans-IO driver: which coding, and
what the answer's head becomes. The faces (ASGI, WSGI, the wire layer) run the codecs.

A face builds ``Compressing`` from the request, reports the answer's head to
``on_head`` and gets ``Unchanged`` (send the head as it is), ``Headers`` to send instead
(identity, but it varies by Accept-Encoding) or ``Hold`` (wait for the first body
chunk). After a hold, ``whole`` settles a body that arrived in one piece (encoded with an
exact Content-Length, or sent as identity when it is small or encoding is not worth it),
and ``streaming`` gives the head of a body encoded chunk by chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from edgecache.core.encoding import (
    EncodingRules,
    already_encoded,
    encoded_headers,
    is_encodable,
    with_vary_accept_encoding,
    worth_keeping,
)
from edgecache.core.headers import ACCEPT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, Headers
from edgecache.core.negotiation import IDENTITY

EVENT_STREAM = b"text/event-stream"
Pairs = list[tuple[bytes, bytes]]


class Unchanged(NamedTuple):
    """Send the answer as it is."""


class Replace(NamedTuple):
    """Send the answer unencoded, with these headers."""

    headers: Pairs


class Hold(NamedTuple):
    """Encode: hold the head until the first body chunk says whole or streamed."""


class Whole(NamedTuple):
    headers: Pairs
    body: bytes
    saved: int
    """Bytes not sent thanks to the coding (0 when sent as identity)."""


class Streaming(NamedTuple):
    headers: Pairs
    flush_each: bool
    """Flush the encoder per chunk: the body has no length, or is an event stream, so
    nothing may be held back."""


OnHead = Unchanged | Replace | Hold


class Compressing:
    """One request through the compression layer."""

    __slots__ = ("_headers", "_method", "_request", "_rules", "coding")

    def __init__(
        self,
        method: str,
        request_headers: Headers,
        rules: EncodingRules,
        negotiate: Callable[[bytes | None], str],
    ) -> None:
        self._method = method
        self._request = request_headers
        self._rules = rules
        self._headers = Headers()
        self.coding: str = negotiate(request_headers.get_joined(ACCEPT_ENCODING))

    def on_head(self, status: int, raw: Pairs) -> OnHead:
        if already_encoded(raw):  # e.g. a stored copy from the cache below
            return Unchanged()
        headers = Headers.from_raw(raw)
        if not is_encodable(self._method, status, self._request, headers, self._rules):
            return Unchanged()
        if self.coding == IDENTITY:
            return Replace(with_vary_accept_encoding(headers).pairs)
        self._headers = headers
        return Hold()

    def whole(self, body: bytes, encode: Callable[[bytes], bytes]) -> Whole:
        """A held answer whose body came in one piece; ``encode`` runs the codec."""
        headers = self._headers
        if len(body) < self._rules.min_size:
            return Whole(with_vary_accept_encoding(headers).pairs, body, 0)
        data = encode(body)
        if not worth_keeping(len(body), len(data)):
            # Not worth it: identity, but the answer still varies by Accept-Encoding.
            return Whole(with_vary_accept_encoding(headers).pairs, body, 0)
        encoded = encoded_headers(headers, self.coding, len(data)).pairs
        return Whole(encoded, data, len(body) - len(data))

    def streaming(self) -> Streaming:
        """A held answer whose body comes in pieces: encoded without Content-Length."""
        headers = self._headers
        content_type = headers.get(CONTENT_TYPE) or b""
        flush_each = CONTENT_LENGTH not in headers or content_type.startswith(EVENT_STREAM)
        return Streaming(encoded_headers(headers, self.coding, None).pairs, flush_each)

    def empty(self) -> Pairs:
        """A held answer that had no body at all: nothing to encode."""
        return with_vary_accept_encoding(self._headers).pairs
