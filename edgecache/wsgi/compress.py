"""WSGI CompressMiddleware: br / zstd / gzip negotiated from Accept-Encoding, streamed.

The server's ``start_response`` is called when the first body chunk is known: a body
given as one chunk is encoded whole with an exact Content-Length (or sent as is when
encoding does not make it smaller); a longer iterable is encoded chunk by chunk without
Content-Length, flushed per chunk when it has no length or is an event stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from edgecache.compression import ENCODINGS, Encoder, make_encoder
from edgecache.config import Settings
from edgecache.core.encoding import (
    encoded_headers,
    is_encodable,
    with_vary_accept_encoding,
)
from edgecache.core.headers import ACCEPT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, Headers
from edgecache.core.negotiation import IDENTITY, negotiator
from edgecache.wsgi.cache import (
    Environ,
    ExcInfo,
    StartResponse,
    WSGIApp,
    headers_from_environ,
    str_headers,
)

EVENT_STREAM = b"text/event-stream"


class CompressMiddleware:
    """Content-encodes compressible answers for clients that accept it."""

    def __init__(self, app: WSGIApp, settings: Settings | None = None, **options: Any):
        self.app = app
        self.settings = settings or Settings.from_env(**options)
        self.rules = self.settings.encoding_rules()
        self.choose = negotiator(self.rules.codings)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if not self.settings.compress:
            return self.app(environ, start_response)
        request_headers = headers_from_environ(environ)
        coding = self.choose(request_headers.get_joined(ACCEPT_ENCODING))
        method = environ["REQUEST_METHOD"]
        state: dict[str, Any] = {}

        def capture(
            status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> Callable[[bytes], object]:
            parsed = Headers.from_str_pairs(headers)
            code = int(status.split(" ", 1)[0])
            if not is_encodable(method, code, request_headers, parsed, self.rules):
                state["mode"] = "pass"
                return start_response(status, headers, exc_info)
            if coding == IDENTITY:
                state["mode"] = "pass"
                vary = with_vary_accept_encoding(parsed)
                return start_response(status, str_headers(vary), exc_info)
            state.update(mode="held", status=status, headers=parsed, exc_info=exc_info)
            return _no_write

        result = self.app(environ, capture)
        return self._body(result, state, start_response, coding)

    def _body(
        self,
        result: Iterable[bytes],
        state: dict[str, Any],
        start_response: StartResponse,
        coding: str,
    ) -> Iterator[bytes]:
        encoder: Encoder | None = None
        flush_each = False
        try:
            whole = isinstance(result, list | tuple) and len(result) == 1
            for chunk in result:
                if state.get("mode") == "held":
                    headers: Headers = state["headers"]
                    if whole:
                        yield self._whole(state, start_response, chunk, coding)
                        continue
                    encoder = make_encoder(coding, self.settings.quality(coding))
                    ENCODINGS.add("stream", coding)
                    content_type = headers.get(CONTENT_TYPE) or b""
                    flush_each = CONTENT_LENGTH not in headers or content_type.startswith(
                        EVENT_STREAM
                    )
                    out = encoded_headers(headers, coding, None)
                    start_response(state["status"], str_headers(out), state["exc_info"])
                    state["mode"] = "stream"
                if encoder is None:
                    yield chunk
                    continue
                data = encoder.compress(chunk)
                if flush_each:
                    data += encoder.flush()
                if data:
                    yield data
            if state.get("mode") == "held":  # an empty body: nothing to encode
                vary = with_vary_accept_encoding(state["headers"])
                start_response(state["status"], str_headers(vary), state["exc_info"])
            elif encoder is not None:
                yield encoder.finish()
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    def _whole(
        self, state: dict[str, Any], start_response: StartResponse, body: bytes, coding: str
    ) -> bytes:
        headers: Headers = state["headers"]
        state["mode"] = "done"
        if len(body) < self.settings.compress_min_size:
            start_response(
                state["status"], str_headers(with_vary_accept_encoding(headers)), state["exc_info"]
            )
            return body
        encoder = make_encoder(coding, self.settings.quality(coding))
        ENCODINGS.add("stream", coding)
        data = encoder.compress(body) + encoder.finish()
        if len(data) >= len(body):
            out, data = with_vary_accept_encoding(headers), body
        else:
            out = encoded_headers(headers, coding, len(data))
        start_response(state["status"], str_headers(out), state["exc_info"])
        return data


def _no_write(_data: bytes) -> object:
    raise RuntimeError(
        "edgecache: the legacy write() callable is not supported under compression; "
        "return the body as an iterable"
    )
