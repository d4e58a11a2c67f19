"""Django CompressMiddleware: a face of the compression driver (``core.compressing``).

br / zstd / gzip negotiated from Accept-Encoding. An HttpResponse's content is encoded
whole with an exact Content-Length (or left as it is when encoding is not worth it); a
StreamingHttpResponse is encoded chunk by chunk, flushed per chunk when it has no length
or is an event stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from functools import partial

from django.http import HttpRequest, HttpResponseBase

from edgecache.compression import ENCODINGS, Encoder, encode, make_encoder
from edgecache.config import Settings
from edgecache.core.compressing import Compressing, Replace, Unchanged
from edgecache.django.convert import (
    GetResponse,
    Middleware,
    response_headers,
    set_headers,
    settings_from_django,
)
from edgecache.metrics import BYTES_SAVED
from edgecache.wsgi.cache import headers_from_environ


class CompressMiddleware(Middleware):
    """Content-encodes compressible answers for clients that accept it."""

    def __init__(self, get_response: GetResponse, settings: Settings | None = None) -> None:
        super().__init__(get_response)
        self.settings = settings if settings is not None else settings_from_django()[0]
        self.rules = self.settings.encoding_rules()
        self.choose = self.settings.negotiator()

    def call(self, request: HttpRequest) -> HttpResponseBase:
        if not self.settings.compress:
            return self.get_response(request)
        plan = self._plan(request)
        return self._encoded(plan, self.get_response(request))

    async def acall(self, request: HttpRequest) -> HttpResponseBase:
        if not self.settings.compress:
            return await self.get_response(request)
        plan = self._plan(request)
        return self._encoded(plan, await self.get_response(request))

    def _plan(self, request: HttpRequest) -> Compressing:
        headers = headers_from_environ(request.META)  # before a layer below changes them
        return Compressing(request.method or "GET", headers, self.rules, self.choose)

    def _encoded(self, plan: Compressing, response: HttpResponseBase) -> HttpResponseBase:
        action = plan.on_head(response.status_code, response_headers(response).pairs)
        if isinstance(action, Unchanged):
            return response
        if isinstance(action, Replace):
            set_headers(response, action.headers)
            return response
        coding = plan.coding
        quality = self.settings.quality(coding)
        ENCODINGS.add("stream", coding)
        if not response.streaming:
            settled = plan.whole(response.content, partial(encode, coding=coding, quality=quality))
            if settled.saved:
                BYTES_SAVED.inc(settled.saved)
            set_headers(response, settled.headers)
            response.content = settled.body
            return response
        streaming = plan.streaming()
        set_headers(response, streaming.headers)
        encoder = make_encoder(coding, quality)
        content = response.streaming_content
        response.streaming_content = (
            _aencoding(content, encoder, streaming.flush_each)
            if response.is_async
            else _encoding(content, encoder, streaming.flush_each)
        )
        return response


def _encoding(chunks: Iterator[bytes], encoder: Encoder, flush_each: bool) -> Iterator[bytes]:
    for chunk in chunks:
        if data := _step(encoder, chunk, flush_each):
            yield data
    yield encoder.finish()


async def _aencoding(
    chunks: AsyncIterator[bytes], encoder: Encoder, flush_each: bool
) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        if data := _step(encoder, chunk, flush_each):
            yield data
    yield encoder.finish()


def _step(encoder: Encoder, chunk: bytes, flush_each: bool) -> bytes:
    data = encoder.compress(chunk)
    return data + encoder.flush() if flush_each else data
