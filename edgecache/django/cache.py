"""Django CacheMiddleware: a face of the exchange driver (``core.exchange``), as a
``MIDDLEWARE`` entry. It translates HttpRequest and HttpResponse for the driver and
does what the driver answers; no rule lives here.

A hit is answered without calling the views. On a miss the views run
(``get_response``) and their answer is fed to the driver: an HttpResponse's content at
once, a StreamingHttpResponse chunk by chunk as the server sends it, the copy kept only
while the driver means to store it. Sync only: under ASGI, Django runs it in a thread.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpRequest, HttpResponseBase

from edgecache.coalesce import ThreadCoalescer
from edgecache.config import Settings
from edgecache.core.exchange import Exchange, Respond, Upstream
from edgecache.django.convert import (
    SyncMiddleware,
    django_response,
    forward_with,
    request_head,
    response_headers,
    set_headers,
    settings_from_django,
)
from edgecache.engine import engine_for
from edgecache.refreshing import ThreadRefresher
from edgecache.storage import Store

GetResponse = Callable[[HttpRequest], HttpResponseBase]
log = logging.getLogger("edgecache")


class CacheMiddleware(SyncMiddleware):
    """RFC 9111 shared cache in front of Django's views, from ``settings.EDGECACHE``."""

    def __init__(
        self,
        get_response: GetResponse,
        settings: Settings | None = None,
        *,
        store: Store | None = None,
        clock: Callable[[], float] = time.time,
        encoded_copies: bool | None = None,
    ) -> None:
        """``settings``: given by EdgeCacheMiddleware, else read from Django's (a Store
        object and a clock may be named there too). ``encoded_copies``: answer hits in
        the client's coding (a compression layer sits above); by default when
        compression is on."""
        self.get_response = get_response
        if settings is None:
            settings, extra = settings_from_django()
            store, clock = extra.get("store", store), extra.get("clock", clock)
        copies = settings.compress if encoded_copies is None else encoded_copies
        self.engine = engine_for(settings, store, clock, copies, {})
        self.settings = settings
        self.coalescer = ThreadCoalescer()
        self.refresher = ThreadRefresher(self.coalescer)

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        exchange = self.engine.begin(request_head(request))
        first = exchange.first
        if isinstance(first, Respond):
            return self._respond(request, exchange, first)
        if not first.coalesce:
            return self._forward(request, exchange, first, on_end=_nothing)
        key = exchange.request.primary_key
        event = self.coalescer.begin(key)
        if event is None:
            return self._forward(request, exchange, first, lambda: self.coalescer.end(key))
        self.coalescer.wait(key, event, self.settings.coalesce_timeout)
        # Shared answer when the leader stored one; otherwise this request goes alone.
        again = self.engine.begin(exchange.request)
        if isinstance(again.first, Respond):
            return self._respond(request, again, again.first)
        return self._forward(request, again, again.first, on_end=_nothing)

    def _respond(self, request: HttpRequest, exchange: Exchange, respond: Respond) -> Any:
        response = django_response(self.engine.answer(respond))
        if respond.refresh is not None:
            revalidation = self.engine.revalidation(exchange, respond.refresh)
            # Queued once the answer is sent: the server closes a response after sending
            # it, and Django runs these then (its own FileResponse registers so too).
            response._resource_closers.append(lambda: self._refresh(request, revalidation))
        return response

    def _forward(
        self, request: HttpRequest, exchange: Exchange, up: Upstream, on_end: Callable[[], None]
    ) -> HttpResponseBase:
        engine = self.engine
        forward_with(request, exchange.request, up.headers)
        try:
            response = self.get_response(request)
        except Exception:  # Django turns a view's exception into a 500 before here
            on_end()
            stale = exchange.on_failure(engine.clock())
            if stale is None:
                raise
            log.warning("views failed for %s; answered stale", exchange.request.primary_key)
            return django_response(engine.answer(stale))
        headers = response_headers(response)
        action = exchange.on_head(response.status_code, headers, engine.clock())
        engine.apply(exchange)
        if isinstance(action, Respond):  # a 304 that refreshed the entry, or stale
            response.close()
            on_end()
            return django_response(engine.answer(action))
        set_headers(response, action.headers)
        if not action.keep_copy:
            on_end()
        elif response.streaming:
            response.streaming_content = self._copying(iter(response), exchange, on_end)
        else:
            exchange.on_body(response.content)
            exchange.on_end(engine.clock())
            engine.apply(exchange)
            on_end()
        return response

    def _copying(
        self, chunks: Iterator[bytes], exchange: Exchange, on_end: Callable[[], None]
    ) -> Iterator[bytes]:
        """The streamed body, fed to the driver on its way; Django closes this
        generator with the response, so a body the client broke off is not stored."""
        complete = False
        try:
            for chunk in chunks:
                exchange.on_body(chunk)
                yield chunk
            complete = True
        finally:
            try:
                if complete:
                    exchange.on_end(self.engine.clock())
                else:
                    exchange.on_abort()
                self.engine.apply(exchange)
            finally:
                on_end()

    def _refresh(self, request: HttpRequest, exchange: Exchange) -> None:
        """Revalidate in the background (stale-while-revalidate) with a copy of the
        request: the client's own request is finished with by then."""
        if not isinstance(request, WSGIRequest):
            return  # an ASGI request cannot be made again here; the next request revalidates
        first = exchange.first
        assert isinstance(first, Upstream)
        meta = {**request.META, "wsgi.input": io.BytesIO(b""), "CONTENT_LENGTH": "0"}

        def run(done: Callable[[], None]) -> None:
            response = self._forward(WSGIRequest(meta), exchange, first, done)
            for _ in response if response.streaming else ():
                pass
            response.close()  # Django's request_finished: database connections close

        self.refresher.start(exchange.request.primary_key, run)


def _nothing() -> None:
    return None
