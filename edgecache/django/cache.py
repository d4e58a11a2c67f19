"""Django CacheMiddleware: a face of the exchange driver (``core.exchange``), as a
``MIDDLEWARE`` entry. It translates HttpRequest and HttpResponse for the driver and
does what the driver answers; no rule lives here.

A hit is answered without calling the views. On a miss the views run
(``get_response``) and their answer is fed to the driver: an HttpResponse's content at
once, a StreamingHttpResponse chunk by chunk as the server sends it, the copy kept only
while the driver means to store it. Sync under WSGI, async under ASGI (``Middleware``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponseBase

from edgecache.coalesce import AsyncCoalescer, ThreadCoalescer
from edgecache.config import Settings
from edgecache.core.exchange import Exchange, Respond, Upstream
from edgecache.core.model import RequestHead
from edgecache.django.convert import (
    GetResponse,
    Middleware,
    django_response,
    forward_with,
    request_copy,
    request_head,
    response_headers,
    set_headers,
    settings_from_django,
)
from edgecache.engine import engine_for
from edgecache.refreshing import ThreadRefresher
from edgecache.storage import Store

log = logging.getLogger("edgecache")


class CacheMiddleware(Middleware):
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
        super().__init__(get_response)
        if settings is None:
            settings, extra = settings_from_django()
            store, clock = extra.get("store", store), extra.get("clock", clock)
        copies = settings.compress if encoded_copies is None else encoded_copies
        self.engine = engine_for(settings, store, clock, copies, {})
        self.settings = settings
        self.coalescer = ThreadCoalescer()
        self.refresher = ThreadRefresher(self.coalescer)
        self.async_coalescer = AsyncCoalescer()
        self._background: set[asyncio.Task[None]] = set()

    def call(self, request: HttpRequest) -> HttpResponseBase:
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

    async def acall(self, request: HttpRequest) -> HttpResponseBase:
        exchange = await self._begin(request_head(request))
        first = exchange.first
        if isinstance(first, Respond):
            return self._respond(request, exchange, first)
        if not first.coalesce:
            return await self._aforward(request, exchange, first, on_end=_nothing)
        key = exchange.request.primary_key
        coalescer = self.async_coalescer
        event = coalescer.begin(key)
        if event is None:
            return await self._aforward(request, exchange, first, lambda: coalescer.end(key))
        await coalescer.wait(key, event, self.settings.coalesce_timeout)
        again = await self._begin(exchange.request)
        if isinstance(again.first, Respond):
            return self._respond(request, again, again.first)
        return await self._aforward(request, again, again.first, on_end=_nothing)

    async def _begin(self, head: RequestHead) -> Exchange:
        if self.engine.prefetch is not None and head.method in ("GET", "HEAD"):
            await self.engine.prefetch(head.primary_key)  # the shared tier, without blocking
        return self.engine.begin(head)

    def _respond(self, request: HttpRequest, exchange: Exchange, respond: Respond) -> Any:
        response = django_response(self.engine.answer(respond))
        if respond.refresh is None:
            return response
        revalidation = self.engine.revalidation(exchange, respond.refresh)
        if self.is_async:
            self._refresh_async(request, revalidation)
        else:
            # Queued once the answer is sent: the server closes a response after sending
            # it, and Django runs these then (its own FileResponse registers so too).
            response._resource_closers.append(lambda: self._refresh(request, revalidation))
        return response

    def _forward(
        self, request: HttpRequest, exchange: Exchange, up: Upstream, on_end: Callable[[], None]
    ) -> HttpResponseBase:
        forward_with(request, exchange.request, up.headers)
        try:
            response = self.get_response(request)
        except Exception:  # Django turns a view's exception into a 500 before here
            stale = self._stale(exchange, on_end)
            if stale is None:
                raise
            return stale
        return self._relay(response, exchange, on_end)

    async def _aforward(
        self, request: HttpRequest, exchange: Exchange, up: Upstream, on_end: Callable[[], None]
    ) -> HttpResponseBase:
        forward_with(request, exchange.request, up.headers)
        try:
            response = await self.get_response(request)
        except Exception:
            stale = self._stale(exchange, on_end)
            if stale is None:
                raise
            return stale
        return self._relay(response, exchange, on_end)

    def _stale(self, exchange: Exchange, on_end: Callable[[], None]) -> HttpResponseBase | None:
        """The views raised: a stale answer where the driver allows one."""
        on_end()
        stale = exchange.on_failure(self.engine.clock())
        if stale is None:
            return None
        log.warning("views failed for %s; answered stale", exchange.request.primary_key)
        return django_response(self.engine.answer(stale))

    def _relay(
        self, response: HttpResponseBase, exchange: Exchange, on_end: Callable[[], None]
    ) -> HttpResponseBase:
        """The views' answer through the driver: relayed (a copy fed to it while it
        wants one), or replaced by the cache's."""
        engine = self.engine
        action = exchange.on_head(response.status_code, response_headers(response), engine.clock())
        engine.apply(exchange)
        if isinstance(action, Respond):  # a 304 that refreshed the entry, or stale
            response.close()
            on_end()
            return django_response(engine.answer(action))
        set_headers(response, action.headers)
        if not action.keep_copy:
            on_end()
        elif response.streaming:
            content = response.streaming_content
            response.streaming_content = (
                self._acopying(content, exchange, on_end)
                if response.is_async
                else self._copying(content, exchange, on_end)
            )
        else:
            exchange.on_body(response.content)
            self._ended(exchange, True, on_end)
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
            self._ended(exchange, complete, on_end)

    async def _acopying(
        self, chunks: AsyncIterator[bytes], exchange: Exchange, on_end: Callable[[], None]
    ) -> AsyncIterator[bytes]:
        complete = False
        try:
            async for chunk in chunks:
                exchange.on_body(chunk)
                yield chunk
            complete = True
        finally:
            self._ended(exchange, complete, on_end)

    def _ended(self, exchange: Exchange, complete: bool, on_end: Callable[[], None]) -> None:
        try:
            if complete:
                exchange.on_end(self.engine.clock())
            else:
                exchange.on_abort()
            self.engine.apply(exchange)
        finally:
            on_end()

    def _refresh(self, request: HttpRequest, exchange: Exchange) -> None:
        """Revalidate in the background (stale-while-revalidate) on the refresher's
        threads, with a copy of the request: the client's is finished with by then."""
        copy = request_copy(request)
        first = exchange.first
        if copy is None or not isinstance(first, Upstream):
            return

        def run(done: Callable[[], None]) -> None:
            response = self._forward(copy, exchange, first, done)
            for _ in response if response.streaming else ():
                pass
            response.close()  # Django's request_finished: database connections close

        self.refresher.start(exchange.request.primary_key, run)

    def _refresh_async(self, request: HttpRequest, exchange: Exchange) -> None:
        """The same, as a task on the event loop."""
        key = exchange.request.primary_key
        copy = request_copy(request)
        first = exchange.first
        coalescer = self.async_coalescer
        if copy is None or not isinstance(first, Upstream) or coalescer.in_flight(key):
            return
        coalescer.begin(key)

        async def run() -> None:
            try:
                response = await self._aforward(copy, exchange, first, _nothing)
                if response.streaming:
                    async for _ in _chunks(response):
                        pass
                await sync_to_async(response.close)()  # as Django's ASGI handler does
            except Exception:
                log.exception("background revalidation of %s failed", key)
            finally:
                coalescer.end(key)

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)


async def _chunks(response: Any) -> AsyncIterator[bytes]:
    """A streamed body, whichever kind of iterator it holds."""
    if response.is_async:
        async for chunk in response.streaming_content:
            yield chunk
    else:
        for chunk in response.streaming_content:
            yield chunk


def _nothing() -> None:
    return None
