"""WSGI CacheMiddleware: a face of the exchange driver (``core.exchange``).

It translates environ and start_response for the driver and does what the driver
answers; no rule lives here. Headers are converted from environ (latin-1, PEP 3333)
once per request, and back to str only at ``start_response``. Bodies stream through
the returned iterable; the driver keeps a copy only while it means to store it.
"""

from __future__ import annotations

import io
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any
from urllib.parse import quote

from edgecache.coalesce import ThreadCoalescer
from edgecache.config import Settings
from edgecache.core.exchange import Answer, Exchange, Respond, Upstream
from edgecache.core.headers import Headers
from edgecache.core.model import RequestHead
from edgecache.engine import engine_for
from edgecache.metrics import note_outcome
from edgecache.refreshing import ThreadRefresher
from edgecache.storage import Store

Environ = dict[str, Any]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

log = logging.getLogger("edgecache")
ASGI_SCOPE = "asgi.scope"
"""a2wsgi's environ key for the ASGI scope (``edgecache serve`` of a WSGI app): the
access log's note, which ``note_outcome`` fills, is in it."""
_SPECIAL = {"CONTENT_TYPE": b"content-type", "CONTENT_LENGTH": b"content-length"}


def headers_from_environ(environ: Environ) -> Headers:
    pairs = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").lower().encode("latin-1")
            pairs.append((name, value.encode("latin-1")))
        elif key in _SPECIAL and value:
            pairs.append((_SPECIAL[key], value.encode("latin-1")))
    return Headers(pairs)


def request_from_environ(environ: Environ) -> RequestHead:
    headers = headers_from_environ(environ)
    host = environ.get("HTTP_HOST")
    if not host:
        host = environ.get("SERVER_NAME", "localhost")
        port = environ.get("SERVER_PORT")
        if port and port not in ("80", "443"):
            host = f"{host}:{port}"
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    target = quote(path.encode("latin-1"), safe="/;:@&=+$,!~*'()%")
    if environ.get("QUERY_STRING"):
        target += "?" + environ["QUERY_STRING"]
    scheme = environ.get("wsgi.url_scheme", "http")
    return RequestHead(environ["REQUEST_METHOD"], scheme, host.lower(), target, headers)


def environ_with_headers(environ: Environ, headers: Headers) -> Environ:
    """A copy of ``environ`` whose HTTP_* keys are exactly ``headers``."""
    out = {k: v for k, v in environ.items() if not k.startswith("HTTP_")}
    for name, value in headers:
        if name in (b"content-type", b"content-length"):
            continue
        key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
        text = value.decode("latin-1")
        out[key] = f"{out[key]},{text}" if key in out else text
    return out


def str_headers(pairs: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in pairs]


def status_line(status: int) -> str:
    from http import HTTPStatus

    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


class _ThenRun:
    """A response body that runs ``after`` once the server closed it: the client's
    answer is on its way before any background work is queued (PEP 3333 close())."""

    def __init__(self, body: list[bytes], after: Callable[[], None]) -> None:
        self._body = body
        self._after = after

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        self._after()


class CacheMiddleware:
    """RFC 9111 shared cache in front of a WSGI app."""

    def __init__(
        self,
        app: WSGIApp,
        settings: Settings | None = None,
        *,
        store: Store | str | None = None,
        clock: Callable[[], float] = time.time,
        encoded_copies: bool = False,
        **options: Any,
    ) -> None:
        """``encoded_copies``: answer hits in the client's coding, keeping encoded copies
        of stored bodies; set by EdgeCache when a CompressMiddleware sits above."""
        self.app = app
        self.engine = engine_for(settings, store, clock, encoded_copies, options)
        self.settings = self.engine.settings
        self.coalescer = ThreadCoalescer()
        self.refresher = ThreadRefresher(self.coalescer)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        exchange = self.engine.begin(request_from_environ(environ))
        first = exchange.first
        if isinstance(first, Respond):
            return self._respond(environ, start_response, exchange, first)
        if not first.coalesce:
            return self._forward(environ, start_response, exchange, first, on_end=None)
        key = exchange.request.primary_key
        event = self.coalescer.begin(key)
        if event is None:
            return self._forward(
                environ, start_response, exchange, first, on_end=lambda: self.coalescer.end(key)
            )
        self.coalescer.wait(key, event, self.settings.coalesce_timeout)
        # Shared answer when the leader stored one; otherwise this request goes alone.
        again = self.engine.begin(exchange.request)
        if isinstance(again.first, Respond):
            return self._respond(environ, start_response, again, again.first)
        return self._forward(environ, start_response, again, again.first, on_end=None)

    def _respond(
        self, environ: Environ, start_response: StartResponse, exchange: Exchange, respond: Respond
    ) -> Iterable[bytes]:
        note_outcome(environ.get(ASGI_SCOPE), respond.outcome)
        body = self._send(start_response, self.engine.answer(respond))
        refresh = respond.refresh
        if refresh is None:
            return body
        revalidation = self.engine.revalidation(exchange, refresh)
        return _ThenRun(body, lambda: self._refresh_in_background(environ, revalidation))

    @staticmethod
    def _send(start_response: StartResponse, answer: Answer) -> list[bytes]:
        start_response(status_line(answer.status), str_headers(answer.headers))
        return [answer.body] if answer.body else []

    def _refresh_in_background(self, environ: Environ, exchange: Exchange) -> None:
        first = exchange.first
        assert isinstance(first, Upstream)
        copy = dict(environ, **{"wsgi.input": io.BytesIO(b""), "CONTENT_LENGTH": "0"})

        def run(done: Callable[[], None]) -> None:
            body = self._forward(copy, lambda *a: lambda b: None, exchange, first, on_end=done)
            for _ in body:
                pass
            close = getattr(body, "close", None)
            if close is not None:
                close()

        self.refresher.start(exchange.request.primary_key, run)

    def _forward(
        self,
        environ: Environ,
        start_response: StartResponse,
        exchange: Exchange,
        up: Upstream,
        on_end: Callable[[], None] | None,
    ) -> Iterable[bytes]:
        engine = self.engine
        if up.headers is not exchange.request.headers:
            environ = environ_with_headers(environ, up.headers)
        state: dict[str, Any] = {}

        def capture(
            status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> Callable[[bytes], object]:
            if exc_info is not None and exchange.outcome is not None:
                raise exc_info[1].with_traceback(exc_info[2])
            code = int(status.split(" ", 1)[0])
            action = exchange.on_head(code, Headers.from_str_pairs(headers), engine.clock())
            engine.apply(exchange)
            note_outcome(environ.get(ASGI_SCOPE), action.outcome)
            if isinstance(action, Respond):  # a 304 that refreshed the entry, or stale
                answer = engine.answer(action)
                state["answer"] = answer
                return start_response(
                    status_line(answer.status), str_headers(answer.headers), exc_info
                )
            state["keep"] = action.keep_copy
            return start_response(status, str_headers(action.headers), exc_info)

        try:
            body = self.app(environ, capture)
        except Exception:
            if on_end is not None:
                on_end()
            stale = exchange.on_failure(engine.clock())
            if stale is None:
                raise
            log.warning(
                "app failed for %s; answered stale (stale-if-error)",
                exchange.request.primary_key,
                exc_info=sys.exc_info(),
            )
            note_outcome(environ.get(ASGI_SCOPE), stale.outcome)
            return self._send(start_response, engine.answer(stale))
        return self._stream(body, state, exchange, on_end)

    def _stream(
        self,
        body: Iterable[bytes],
        state: dict[str, Any],
        exchange: Exchange,
        on_end: Callable[[], None] | None,
    ) -> Iterator[bytes]:
        complete = False
        try:
            for chunk in body:
                if "answer" in state:
                    continue  # upstream body of a 304 or an error we replaced
                if state.get("keep"):
                    exchange.on_body(chunk)
                yield chunk
            complete = True
            if "answer" in state:
                yield state["answer"].body
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
            try:
                if complete and state.get("keep"):
                    exchange.on_end(self.engine.clock())
                else:
                    exchange.on_abort()
                self.engine.apply(exchange)
            finally:
                if on_end is not None:
                    on_end()
