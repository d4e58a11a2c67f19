"""WSGI CompressMiddleware: a face of the compression driver (``core.compressing``).

br / zstd / gzip negotiated from Accept-Encoding, streamed. The server's
``start_response`` is called when the first body chunk is known: a body given as one
chunk is encoded whole with an exact Content-Length (or sent as is when encoding is not
worth it); a longer iterable is encoded chunk by chunk without Content-Length, flushed
per chunk when it has no length or is an event stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any

from edgecache.compression import ENCODINGS, Encoder, encode, make_encoder
from edgecache.config import Settings
from edgecache.core.compressing import Compressing, Hold, Replace
from edgecache.core.headers import Headers
from edgecache.metrics import BYTES_SAVED
from edgecache.wsgi.cache import (
    Environ,
    ExcInfo,
    StartResponse,
    WSGIApp,
    headers_from_environ,
    str_headers,
)


class CompressMiddleware:
    """Content-encodes compressible answers for clients that accept it."""

    def __init__(self, app: WSGIApp, settings: Settings | None = None, **options: Any):
        self.app = app
        self.settings = settings or Settings.from_env(**options)
        self.rules = self.settings.encoding_rules()
        self.choose = self.settings.negotiator()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if not self.settings.compress:
            return self.app(environ, start_response)
        plan = Compressing(
            environ["REQUEST_METHOD"], headers_from_environ(environ), self.rules, self.choose
        )
        state: dict[str, Any] = {}

        def capture(
            status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> Callable[[bytes], object]:
            code = int(status.split(" ", 1)[0])
            raw = Headers.from_str_pairs(headers).pairs
            action = plan.on_head(code, raw)
            if isinstance(action, Hold):
                state.update(mode="held", status=status, exc_info=exc_info)
                return _no_write
            state["mode"] = "pass"
            if isinstance(action, Replace):
                return start_response(status, str_headers(action.headers), exc_info)
            return start_response(status, headers, exc_info)

        result = self.app(environ, capture)
        return self._body(result, state, start_response, plan)

    def _body(
        self,
        result: Iterable[bytes],
        state: dict[str, Any],
        start_response: StartResponse,
        plan: Compressing,
    ) -> Iterator[bytes]:
        encoder: Encoder | None = None
        flush_each = False
        coding = plan.coding
        try:
            whole = isinstance(result, list | tuple) and len(result) == 1
            for chunk in result:
                if state.get("mode") == "held":
                    state["mode"] = "done"
                    quality = self.settings.quality(coding)
                    ENCODINGS.add("stream", coding)
                    if whole:
                        settled = plan.whole(chunk, partial(encode, coding=coding, quality=quality))
                        if settled.saved:
                            BYTES_SAVED.inc(settled.saved)
                        start_response(
                            state["status"], str_headers(settled.headers), state["exc_info"]
                        )
                        yield settled.body
                        continue
                    encoder = make_encoder(coding, quality)
                    streaming = plan.streaming()
                    flush_each = streaming.flush_each
                    start_response(
                        state["status"], str_headers(streaming.headers), state["exc_info"]
                    )
                if encoder is None:
                    yield chunk
                    continue
                data = encoder.compress(chunk)
                if flush_each:
                    data += encoder.flush()
                if data:
                    yield data
            if state.get("mode") == "held":  # an empty body: nothing to encode
                start_response(state["status"], str_headers(plan.empty()), state["exc_info"])
            elif encoder is not None:
                yield encoder.finish()
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


def _no_write(_data: bytes) -> object:
    raise RuntimeError(
        "edgecache: the legacy write() callable is not supported under compression; "
        "return the body as an iterable"
    )
