"""ASGI CompressMiddleware: a face of the compression driver (``core.compressing``).

br / zstd / gzip negotiated from Accept-Encoding, streamed. The start message is held
until the first body message: a body that arrives whole is encoded whole and gets an
exact Content-Length (or is sent as is when encoding is not worth it); a streamed body is
encoded chunk by chunk without Content-Length, and flushed per chunk when it has no
length or is an event stream, so events are not held back. A cache below that answers
hits in the client's coding (``AnswersHits``) is asked first.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from edgecache.asgi.types import AnswersHits, ASGIApp, Message, Receive, Scope, Send
from edgecache.compression import ENCODINGS, Encoder, encode, make_encoder
from edgecache.config import Settings
from edgecache.core.compressing import Compressing, Hold, Replace, Unchanged
from edgecache.core.headers import Headers
from edgecache.metrics import BYTES_SAVED


class CompressMiddleware:
    """Content-encodes compressible answers for clients that accept it."""

    def __init__(self, app: ASGIApp, settings: Settings | None = None, **options: Any):
        self.app = app
        self.settings = settings or Settings.from_env(**options)
        self.rules = self.settings.encoding_rules()
        self.choose = self.settings.negotiator()
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
        plan = Compressing(scope["method"], request_headers, self.rules, self.choose)
        settings = self.settings
        held: Message | None = None
        encoder: Encoder | None = None
        flush_each = False
        passing = False

        async def wrapped_send(message: Message) -> None:
            nonlocal held, encoder, flush_each, passing
            kind = message["type"]
            if kind == "http.response.start":
                action = plan.on_head(message["status"], message["headers"])
                if isinstance(action, Hold):
                    held = message
                    return
                passing = True
                if isinstance(action, Replace):
                    message = {**message, "headers": action.headers}
                else:
                    assert isinstance(action, Unchanged)
                await send(message)
                return
            if passing or kind != "http.response.body":
                await send(message)
                return
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if held is not None:
                start, held = held, None
                quality = settings.quality(plan.coding)
                if not more:
                    ENCODINGS.add("stream", plan.coding)
                    whole = plan.whole(body, partial(encode, coding=plan.coding, quality=quality))
                    if whole.saved:
                        BYTES_SAVED.inc(whole.saved)
                    await send({**start, "headers": whole.headers})
                    await send({"type": "http.response.body", "body": whole.body})
                    return
                encoder = make_encoder(plan.coding, quality)
                ENCODINGS.add("stream", plan.coding)
                streaming = plan.streaming()
                flush_each = streaming.flush_each
                await send({**start, "headers": streaming.headers})
            assert encoder is not None
            data = encoder.compress(body)
            if not more:
                data += encoder.finish()
            elif flush_each:
                data += encoder.flush()
            if data or not more:
                await send({"type": "http.response.body", "body": data, "more_body": more})

        await self.app(scope, receive, wrapped_send)
