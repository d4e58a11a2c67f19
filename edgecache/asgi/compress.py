"""ASGI CompressMiddleware: br / zstd / gzip negotiated from Accept-Encoding, streamed.

The start message is held until the first body message: a body that arrives whole is
encoded whole and gets an exact Content-Length (or is sent as is when encoding does not
make it smaller); a streamed body is encoded chunk by chunk without Content-Length, and
flushed per chunk when it has no length or is an event stream, so events are not held
back. Answers the cache already encoded pass untouched.
"""

from __future__ import annotations

from typing import Any

from edgecache.asgi.types import AnswersHits, ASGIApp, Message, Receive, Scope, Send
from edgecache.compression import ENCODINGS, Encoder, make_encoder
from edgecache.config import Settings
from edgecache.core.encoding import (
    already_encoded,
    encoded_headers,
    is_encodable,
    with_vary_accept_encoding,
)
from edgecache.core.headers import ACCEPT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, Headers
from edgecache.core.negotiation import IDENTITY, negotiator
from edgecache.metrics import BYTES_SAVED

EVENT_STREAM = b"text/event-stream"


class CompressMiddleware:
    """Content-encodes compressible answers for clients that accept it."""

    def __init__(self, app: ASGIApp, settings: Settings | None = None, **options: Any):
        self.app = app
        self.settings = settings or Settings.from_env(**options)
        self.rules = self.settings.encoding_rules()
        self.choose = negotiator(self.rules.codings)
        # With a cache right below (as EdgeCache builds it), its hits come first, before
        # any wrapping here: they are already in the client's coding.
        self.cache = app if isinstance(app, AnswersHits) else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.settings.compress:
            await self.app(scope, receive, send)
            return
        request_headers = Headers(scope["headers"])
        if self.cache is not None and await self.cache.answer_hit(scope, send, request_headers):
            return
        coding = self.choose(request_headers.get_joined(ACCEPT_ENCODING))
        method = scope["method"]
        settings = self.settings
        rules = self.rules
        held: Message | None = None
        headers = Headers()
        encoder: Encoder | None = None
        flush_each = False
        passing = False

        async def wrapped_send(message: Message) -> None:
            nonlocal held, headers, encoder, flush_each, passing
            kind = message["type"]
            if kind == "http.response.start":
                if already_encoded(message["headers"]):  # e.g. a stored copy from the cache
                    passing = True
                    await send(message)
                    return
                headers = Headers.from_raw(message["headers"])
                if not is_encodable(method, message["status"], request_headers, headers, rules):
                    passing = True
                    await send(message)
                elif coding == IDENTITY:
                    passing = True
                    vary = with_vary_accept_encoding(headers)
                    await send({**message, "headers": vary.pairs})
                else:
                    held = message
                return
            if passing or kind != "http.response.body":
                await send(message)
                return
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if held is not None:
                start, held = held, None
                if not more:
                    await _send_whole(send, start, headers, body, coding, settings)
                    return
                encoder = make_encoder(coding, settings.quality(coding))
                ENCODINGS.add("stream", coding)
                content_type = headers.get(CONTENT_TYPE) or b""
                flush_each = CONTENT_LENGTH not in headers or content_type.startswith(EVENT_STREAM)
                out = encoded_headers(headers, coding, None)
                await send({**start, "headers": out.pairs})
            assert encoder is not None
            data = encoder.compress(body)
            if not more:
                data += encoder.finish()
            elif flush_each:
                data += encoder.flush()
            if data or not more:
                await send({"type": "http.response.body", "body": data, "more_body": more})

        await self.app(scope, receive, wrapped_send)


async def _send_whole(
    send: Send, start: Message, headers: Headers, body: bytes, coding: str, settings: Settings
) -> None:
    if len(body) < settings.compress_min_size:
        await send({**start, "headers": with_vary_accept_encoding(headers).pairs})
        await send({"type": "http.response.body", "body": body})
        return
    encoder = make_encoder(coding, settings.quality(coding))
    ENCODINGS.add("stream", coding)
    data = encoder.compress(body) + encoder.finish()
    if len(data) >= len(body):
        # Not worth it: send identity, but the answer still varies by Accept-Encoding.
        out, data = with_vary_accept_encoding(headers), body
    else:
        out = encoded_headers(headers, coding, len(data))
        BYTES_SAVED.inc(len(body) - len(data))
    await send({**start, "headers": out.pairs})
    await send({"type": "http.response.body", "body": data})
