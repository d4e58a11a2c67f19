"""ASGI CacheMiddleware: a face of the exchange driver (``core.exchange``).

It translates scope and messages for the driver and does what the driver answers; no
rule lives here. Bodies stream to the client as they arrive; the driver keeps a copy
only while it means to store the answer and the copy fits ``max_entry_bytes``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from edgecache.asgi.types import ASGIApp, Message, Receive, Scope, Send
from edgecache.config import Settings
from edgecache.core.exchange import Answer, Exchange, Outcome, Respond, Upstream
from edgecache.core.headers import AGE, CACHE_STATUS, HOST, Headers
from edgecache.core.model import RequestHead
from edgecache.core.upstream import ASGI_KEY as UPSTREAM_ERROR
from edgecache.engine import engine_for
from edgecache.metrics import note_outcome
from edgecache.shared_coalesce import coalescer_for
from edgecache.storage import Store, Variants

log = logging.getLogger("edgecache")


def request_from_scope(scope: Scope, headers: Headers | None = None) -> RequestHead:
    """The core's request head; ``headers`` when a layer above already wrapped them."""
    if headers is None:
        raw = scope["headers"]
        headers = Headers(raw if isinstance(raw, list) else list(raw))
    host = headers.get(HOST)
    if host is None:
        server = scope.get("server") or ("localhost", None)
        authority = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
    else:
        authority = host.decode("latin-1").lower()
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
    target = raw_path.decode("latin-1")
    if scope.get("query_string"):
        target += "?" + scope["query_string"].decode("latin-1")
    return RequestHead(scope["method"], scope.get("scheme", "http"), authority, target, headers)


async def send_answer(send: Send, answer: Answer) -> None:
    await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
    await send({"type": "http.response.body", "body": answer.body})


def empty_body() -> Receive:
    """``receive`` for a request the cache makes itself: an empty body, then silence, as a
    server gives while the client stays connected (never a busy loop of messages)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # no disconnect ever comes
        raise AssertionError("unreachable")

    return receive


class CacheMiddleware:
    """RFC 9111 shared cache in front of an ASGI app."""

    def __init__(
        self,
        app: ASGIApp,
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
        # One fetch per cold key in the process, or on the machine with a shared store.
        self.coalescer = coalescer_for(self.engine.store, self.settings.coalesce_timeout)
        self._background: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        memo = self._memo(scope)
        if memo is not None and await self._replay(scope, memo, send):
            return
        exchange, variants = await self._begin(request_from_scope(scope))
        first = exchange.first
        if isinstance(first, Respond):
            await self._respond(scope, send, exchange, first, (memo, variants))
            return
        await self._run(scope, receive, send, exchange)

    async def answer_hit(self, scope: Scope, send: Send, headers: Headers) -> bool:
        """Answer from the cache and return True, or return False and send nothing (the
        ``AnswersHits`` contract): a layer above calls it first, so a hit skips that
        layer's wrapping; ``headers`` are the request's, already parsed there."""
        memo = self._memo(scope, headers)
        if memo is not None and await self._replay(scope, memo, send):
            return True
        exchange, variants = await self._begin(request_from_scope(scope, headers))
        first = exchange.first
        if isinstance(first, Respond):
            await self._respond(scope, send, exchange, first, (memo, variants))
            return True
        return False

    def _memo(self, scope: Scope, headers: Headers | None = None) -> tuple[Any, ...] | None:
        """The request's shape for replaying a fresh hit (``Engine.replayed``); None
        for methods never looked up and for requests that need the exchange.
        ``headers``: the request's, when a layer above has indexed them already."""
        if scope["method"] not in ("GET", "HEAD") or self.engine.prefetch is not None:
            return None
        shape = self.engine.shape(scope["headers"])
        if shape is None:
            return None
        if headers is not None:
            host = headers.get(HOST)
        else:
            host = next((v for n, v in scope["headers"] if n == HOST), None)
        where = host if host is not None else scope.get("server")
        target = scope.get("raw_path") or scope["path"]
        return (scope["method"], scope.get("scheme"), where, target, scope["query_string"], shape)

    async def _replay(self, scope: Scope, memo: tuple[Any, ...], send: Send) -> bool:
        replayed = self.engine.replayed(memo)
        if replayed is None:
            return False
        note_outcome(scope, Outcome.HIT)  # only fresh hits are replayed (core.replay)
        replay = replayed.replay
        headers = [*replay.stored, (AGE, replayed.age), (CACHE_STATUS, replayed.cache_status)]
        await send_answer(send, Answer(replay.status, headers, replay.body))
        return True

    async def _begin(self, request: RequestHead) -> tuple[Exchange, Variants]:
        """The exchange, and what the store held for it (for ``Engine.remember``)."""
        engine = self.engine
        if request.method not in ("GET", "HEAD"):
            return engine.begin(request, ()), ()
        if engine.prefetch is not None:
            await engine.prefetch(request.primary_key)  # the shared tier, without blocking
        variants = engine.lookup(request.primary_key)
        return engine.begin(request, variants), variants

    async def _run(self, scope: Scope, receive: Receive, send: Send, exchange: Exchange) -> None:
        first = exchange.first
        if isinstance(first, Respond):
            await self._respond(scope, send, exchange, first)
        elif first.coalesce:
            await self._coalesced(scope, receive, send, exchange)
        else:
            await self._forward(scope, receive, send, exchange, first)

    async def _respond(
        self,
        scope: Scope,
        send: Send,
        exchange: Exchange,
        respond: Respond,
        replayable: tuple[tuple[Any, ...] | None, Variants] | None = None,
    ) -> None:
        """``replayable``: the request's shape and what the store held, to remember
        a fresh hit for replay."""
        answer = self.engine.answer(respond)
        if replayable is not None and replayable[0] is not None:
            memo, variants = replayable
            self.engine.remember(memo, exchange.request.primary_key, respond, answer, variants)
        note_outcome(scope, respond.outcome)
        await send_answer(send, answer)
        if respond.refresh is not None:
            self._refresh_in_background(scope, self.engine.revalidation(exchange, respond.refresh))

    async def _coalesced(
        self, scope: Scope, receive: Receive, send: Send, exchange: Exchange
    ) -> None:
        key = exchange.request.primary_key
        event = self.coalescer.begin(key)
        first = exchange.first
        assert isinstance(first, Upstream)
        if event is None:
            try:
                await self._forward(scope, receive, send, exchange, first)
            finally:
                self.coalescer.end(key)
            return
        await self.coalescer.wait(key, event, self.settings.coalesce_timeout)
        # Shared answer when the leader stored one; otherwise this request goes alone.
        again, _ = await self._begin(exchange.request)
        if isinstance(again.first, Respond):
            await self._respond(scope, send, again, again.first)
        else:
            await self._forward(scope, receive, send, again, again.first)

    def _refresh_in_background(self, scope: Scope, exchange: Exchange) -> None:
        key = exchange.request.primary_key
        if self.coalescer.in_flight(key):
            return  # a refresh or a fetch for this URI is already on its way
        self.coalescer.begin(key)
        first = exchange.first
        assert isinstance(first, Upstream)

        async def discard(_message: Message) -> None:
            return None

        async def run() -> None:
            try:
                await self._forward(dict(scope), empty_body(), discard, exchange, first)
            except Exception:
                log.exception("background revalidation of %s failed", key)
            finally:
                self.coalescer.end(key)

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _forward(
        self, scope: Scope, receive: Receive, send: Send, exchange: Exchange, up: Upstream
    ) -> None:
        engine = self.engine
        if up.headers is not exchange.request.headers:
            scope = dict(scope, headers=up.headers.pairs)
        keep = False
        replaced = False

        async def wrapped_send(message: Message) -> None:
            nonlocal keep, replaced
            kind = message["type"]
            if kind == "http.response.start":
                headers = Headers.from_raw(message["headers"])
                error = message.get(UPSTREAM_ERROR)  # the forwarder's own 502/504
                action = exchange.on_head(message["status"], headers, engine.clock(), error)
                engine.apply(exchange)
                note_outcome(scope, action.outcome)
                if isinstance(action, Respond):
                    replaced = True  # a 304 that refreshed the entry, or stale-if-error
                    await send_answer(send, engine.answer(action))
                    return
                keep = action.keep_copy
                await send({**message, "headers": action.headers})
            elif kind != "http.response.body":
                await send(message)
            elif not replaced:
                if keep:
                    exchange.on_body(message.get("body", b""))
                await send(message)
                if keep and not message.get("more_body", False):
                    exchange.on_end(engine.clock())
                    engine.apply(exchange)

        try:
            await self.app(scope, receive, wrapped_send)
            if keep:  # returned before its body's end (a broken upstream body): not stored
                exchange.on_abort()
                engine.apply(exchange)
        except Exception:
            exchange.on_abort()
            engine.apply(exchange)
            if replaced:
                # The client already has a complete answer from the cache; an app that
                # raises after its error response (Starlette does) changes nothing.
                log.warning(
                    "app raised after its answer was replaced from the cache for %s",
                    exchange.request.primary_key,
                    exc_info=True,
                )
                return
            stale = exchange.on_failure(engine.clock())
            if stale is None:
                raise
            log.warning(
                "app failed for %s; answered stale (stale-if-error)",
                exchange.request.primary_key,
                exc_info=True,
            )
            note_outcome(scope, stale.outcome)
            await send_answer(send, engine.answer(stale))
