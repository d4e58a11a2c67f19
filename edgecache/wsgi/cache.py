"""WSGI CacheMiddleware: translates environ/start_response for the core and does the I/O.

Headers are converted from environ (latin-1, PEP 3333) once per request, and back to
str only at ``start_response``. Bodies stream through the returned iterable; a copy is
kept only while the policy wants to store the answer and it fits ``max_entry_bytes``.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any
from urllib.parse import quote

from edgecache.coalesce import ThreadCoalescer
from edgecache.config import Settings
from edgecache.core import policy
from edgecache.core.headers import Headers
from edgecache.core.model import RequestHead
from edgecache.engine import Lookup, engine_for
from edgecache.storage import Store

Environ = dict[str, Any]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

log = logging.getLogger("edgecache")
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
        """``encoded_copies``: keep content-encoded copies of stored bodies; set by
        EdgeCache when a CompressMiddleware sits above this cache."""
        self.app = app
        self.engine = engine_for(settings, store, clock, encoded_copies, options)
        self.settings = self.engine.settings
        self.coalescer = ThreadCoalescer()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        found = self.engine.lookup(request_from_environ(environ))
        return self._dispatch(environ, start_response, found, self.settings.coalesce)

    def _dispatch(
        self, environ: Environ, start_response: StartResponse, found: Lookup, coalesce: bool
    ) -> Iterable[bytes]:
        decision = found.decision
        if isinstance(decision, policy.Serve):
            if decision.refresh:
                self._refresh_in_background(environ, found, decision)
            answer = self.engine.answer(
                found.request, decision.entry, decision.cache_status, decision.age
            )
            return self._send(start_response, answer)
        if isinstance(decision, policy.GatewayTimeout):
            return self._send(start_response, policy.gateway_timeout(decision.cache_status))
        if (
            isinstance(decision, policy.Bypass)
            or not coalesce
            or not self.engine.may_coalesce(found.request)
        ):
            return self._forward(environ, start_response, found, decision, on_end=None)
        key = found.request.primary_key
        event = self.coalescer.begin(key)
        if event is None:
            return self._forward(
                environ, start_response, found, decision, on_end=lambda: self.coalescer.end(key)
            )
        self.coalescer.wait(key, event, self.settings.coalesce_timeout)
        again = self.engine.lookup(found.request)
        return self._dispatch(environ, start_response, again, coalesce=False)

    @staticmethod
    def _send(start_response: StartResponse, answer: policy.Answer) -> list[bytes]:
        start_response(status_line(answer.status), str_headers(answer.headers))
        return [answer.body] if answer.body else []

    def _refresh_in_background(self, environ: Environ, found: Lookup, stale: policy.Serve) -> None:
        key = found.request.primary_key
        if self.coalescer.in_flight(key) or self.coalescer.begin(key) is not None:
            return
        revalidate = policy.background_revalidation(found.request, stale.entry)
        copy = dict(environ, **{"wsgi.input": io.BytesIO(b""), "CONTENT_LENGTH": "0"})

        def run() -> None:
            try:
                body = self._forward(
                    copy,
                    lambda *a: lambda b: None,
                    found,
                    revalidate,
                    on_end=lambda: self.coalescer.end(key),
                )
                for _ in body:
                    pass
                close = getattr(body, "close", None)
                if close is not None:
                    close()
            except Exception:
                self.coalescer.end(key)
                log.exception("background revalidation of %s failed", key)

        threading.Thread(target=run, name="edgecache-refresh", daemon=True).start()

    def _forward(
        self,
        environ: Environ,
        start_response: StartResponse,
        found: Lookup,
        decision: policy.Forward | policy.Bypass,
        on_end: Callable[[], None] | None,
    ) -> Iterable[bytes]:
        engine = self.engine
        request_time = engine.clock()
        if isinstance(decision, policy.Forward) and decision.upstream_headers is not (
            found.request.headers
        ):
            environ = environ_with_headers(environ, decision.upstream_headers)
        state: dict[str, Any] = {"outcome": None}

        def capture(
            status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> Callable[[bytes], object]:
            if exc_info is not None and state["outcome"] is not None:
                raise exc_info[1].with_traceback(exc_info[2])
            code = int(status.split(" ", 1)[0])
            parsed = Headers.from_str_pairs(headers)
            outcome = engine.on_response(found, decision, code, parsed, request_time)
            state.update(outcome=outcome, status=code, headers=parsed, response_time=engine.clock())
            if isinstance(outcome, policy.Refreshed | policy.Serve):
                answer = engine.answer(found.request, outcome.entry, outcome.cache_status)
                state["answer"] = answer
                return start_response(
                    status_line(answer.status), str_headers(answer.headers), exc_info
                )
            member = outcome.cache_status.decode("latin-1")
            kept = [(n, v) for n, v in headers if n.lower() not in ("surrogate-key", "cache-tag")]
            return start_response(status, [*kept, ("Cache-Status", member)], exc_info)

        try:
            body = self.app(environ, capture)
        except Exception:
            if on_end is not None:
                on_end()
            stale = None
            if state["outcome"] is None and isinstance(decision, policy.Forward):
                stale = engine.on_failure(found, decision)
            if stale is None:
                raise
            log.warning(
                "app failed for %s; answered stale (stale-if-error)",
                found.request.primary_key,
                exc_info=sys.exc_info(),
            )
            return self._send(
                start_response, engine.answer(found.request, stale.entry, stale.cache_status)
            )
        return self._stream(body, state, found, request_time, on_end)

    def _stream(
        self,
        body: Iterable[bytes],
        state: dict[str, Any],
        found: Lookup,
        request_time: float,
        on_end: Callable[[], None] | None,
    ) -> Iterator[bytes]:
        limit = self.settings.max_entry_bytes
        chunks: list[bytes] | None = None
        keeping = None  # decided at the first chunk: start_response may come late
        size = 0
        complete = False
        try:
            for chunk in body:
                if "answer" in state:
                    continue  # upstream body of a 304 or an error we replaced
                if keeping is None:
                    keeping = self.engine.wants_copy(state["outcome"], state["headers"])
                    chunks = [] if keeping else None
                if chunks is not None:
                    size += len(chunk)
                    if size > limit:
                        chunks = None  # too large to store: stream on, keep nothing
                    else:
                        chunks.append(chunk)
                yield chunk
            complete = True
            if "answer" in state:
                yield state["answer"].body
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
            try:
                if complete and keeping is None:  # an empty body: no chunk came
                    wants = self.engine.wants_copy(state["outcome"], state["headers"])
                    chunks = [] if wants else None
                if complete and chunks is not None:
                    self.engine.store_response(
                        found,
                        state["outcome"],
                        state["status"],
                        state["headers"],
                        b"".join(chunks),
                        request_time,
                        state["response_time"],
                    )
            finally:
                if on_end is not None:
                    on_end()
