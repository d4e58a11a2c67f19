"""Django CompressMiddleware: a face of the compression driver (``core.compressing``).

br / zstd / gzip negotiated from Accept-Encoding. An HttpResponse's content is encoded
whole with an exact Content-Length (or left as it is when encoding is not worth it); a
StreamingHttpResponse is encoded chunk by chunk, flushed per chunk when it has no length
or is an event stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from django.http import HttpRequest, HttpResponseBase

from edgecache.compression import ENCODINGS, Encoder, encode, make_encoder
from edgecache.config import Settings
from edgecache.core.compressing import Compressing, Replace, Unchanged
from edgecache.django.cache import GetResponse
from edgecache.django.convert import (
    SyncMiddleware,
    response_headers,
    set_headers,
    settings_from_django,
)
from edgecache.metrics import BYTES_SAVED
from edgecache.wsgi.cache import headers_from_environ


class CompressMiddleware(SyncMiddleware):
    """Content-encodes compressible answers for clients that accept it."""

    def __init__(self, get_response: GetResponse, settings: Settings | None = None) -> None:
        self.get_response = get_response
        self.settings = settings if settings is not None else settings_from_django()[0]
        self.rules = self.settings.encoding_rules()
        self.choose = self.settings.negotiator()

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not self.settings.compress:
            return self.get_response(request)
        headers = headers_from_environ(request.META)  # before a layer below changes them
        plan = Compressing(request.method or "GET", headers, self.rules, self.choose)
        response = self.get_response(request)
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
        response.streaming_content = _encoded(iter(response), encoder, streaming.flush_each)
        return response


def _encoded(chunks: Iterator[bytes], encoder: Encoder, flush_each: bool) -> Iterator[bytes]:
    for chunk in chunks:
        data = encoder.compress(chunk)
        if flush_each:
            data += encoder.flush()
        if data:
            yield data
    yield encoder.finish()
