"""The proxy as a wire-layer Handler: cache hits, misses and passes with no ASGI between.

Theory of operation
-------------------
``build_app`` still builds the chain (routes, auth, compression, cache, forwarder), and
``Lanes`` reads it back as objects. This handler then drives them itself:

- ``answer_now`` (no task, no coroutine): find the lane, look the request up in the
  cache, and return a fresh hit as pre-serialised bytes (``proxy.hits``). A miss keeps
  its exchange in ``request.context`` for ``handle``, so the lookup is done once.
- ``handle``: the auth gate, then the cache exchange (coalescing misses), the forward
  through the pool (``Forwarder.open``), 1xx relayed, and the answer streamed to the
  client through the compression driver while the exchange keeps its copy.
  A client that leaves cancels the upstream request; an upstream that breaks off
  mid-body closes the client's connection and nothing is stored.

What it does not run itself goes to the chain as it is, through the ASGI bridge: admin
endpoints, static files, redirects, apps under ``serve`` (whose hits are still answered
here), websockets, and the shared tier's hits (which need an await before the lookup).
Every rule stays in the core: this module only moves bytes between the drivers and I/O.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, Callable
from functools import partial
from typing import Any, Literal

from edgecache.auth import X_REMOTE_USER, Allowed, Challenge, denial
from edgecache.compression import ENCODINGS, encode
from edgecache.core.compressing import Compressing, Hold, Replace, Unchanged
from edgecache.core.exchange import Exchange, Outcome, Respond
from edgecache.core.forwarded import downstream_response_headers, upstream_request_headers
from edgecache.core.headers import AUTHORIZATION, Headers
from edgecache.core.model import RequestHead
from edgecache.core.replay import replay_key
from edgecache.engine import Engine
from edgecache.metrics import BYTES_SAVED, UPSTREAM_BYTES
from edgecache.proxy.forward import SMALL_BODY, Failure, Opened, _plain
from edgecache.proxy.hits import Pairs, wire_answer
from edgecache.proxy.lanes import Lane, Lanes, header_updates, store_ended, with_updates
from edgecache.proxy.revalidate import Revalidations
from edgecache.proxy.streaming import stream_body
from edgecache.proxy.tunnel import tunnel_upgrade
from edgecache.wire.asgi import ASGIHandler
from edgecache.wire.types import Answer as WireAnswer
from edgecache.wire.types import BaseHandler, ClientGone, Reply, Request, decoded_path
from edgecache.wire.upstream import Informational
from edgecache.wire.upstream import UpstreamError as ClientError

log = logging.getLogger("edgecache.proxy")

_LOOKED_UP = ("GET", "HEAD")
REPLAYS = 10_000
"""Request shapes kept for replay (``core.replay``), per process."""

_Memo = tuple[str, str, str, str, str, bytes]
"""Method, scheme, authority, path, query and ``replay_key``: a request's shape."""


def _origin_form(request: Request) -> str:
    return request.path + "?" + request.query if request.query else request.path


class EdgeHandler(BaseHandler):
    def __init__(
        self,
        app: Any,
        lifespan: Literal["on", "auto", "off"] = "auto",
        server: tuple[str, int] | None = None,
    ) -> None:
        self.chain = ASGIHandler(app, lifespan=lifespan, server=server)
        self.lanes = Lanes(app)
        self._revalidations = Revalidations()
        self._replays: dict[_Memo, tuple[Engine, bytes, str]] = {}
        """Request shapes whose fresh hit the engine replays, with the serialised head
        and the route's name."""

    async def startup(self) -> None:
        await self.chain.startup()

    async def shutdown(self) -> None:
        await self.chain.shutdown()

    # -- hits, at once -------------------------------------------------------------

    def answer_now(self, request: Request) -> WireAnswer | None:
        if request.method not in _LOOKED_UP or request.upgrade is not None:
            return None  # any other upgrade (h2c, ...) is answered as plain HTTP/1.1
        memo: _Memo | None = None
        shape = replay_key(request.headers)
        if shape is not None:
            memo = (
                request.method,
                request.scheme,
                request.authority,
                request.path,
                request.query,
                shape,
            )
            replayed = self._replayed(memo)
            if replayed is not None:
                return replayed
        path = decoded_path(request.path)
        lane = self.lanes.find(request.authority, path)
        if lane is None or lane.cache is None:
            return None
        engine = lane.cache.engine
        if engine.prefetch is not None:
            return None  # the shared tier is read ahead with an await: in ``handle``
        if lane.auth is not None and lane.auth.gate.rule_for(path) is not None:
            return None  # the password check may need a thread: in ``handle``
        head = self._head(request, request.headers)
        variants = engine.lookup(head.primary_key)
        exchange = engine.begin(head, variants)
        first = exchange.first
        if not isinstance(first, Respond):
            request.context = exchange
            return None
        if first.refresh is not None:
            if lane.forwarder is None:
                return None  # the chain refreshes an app's entries: it answers too
            client = request.client[0] if request.client else None
            self._revalidations.start(lane, exchange, first, "", client)
        answer = engine.answer(first)
        updates = header_updates(lane, path)
        wire = wire_answer(first, answer, request.method, updates, lane.name)
        if (
            memo is not None
            and not updates
            and len(wire.head) == 2
            and engine.remember(memo, head.primary_key, first, answer, variants)
        ):
            if len(self._replays) >= REPLAYS:
                self._replays.clear()
            self._replays[memo] = (engine, wire.head[0], lane.name)
        return wire

    def _replayed(self, memo: _Memo) -> WireAnswer | None:
        """The replay of an earlier fresh hit of the same request shape, with the
        serialised head it had (``Engine.replayed`` says whether it still holds)."""
        known = self._replays.get(memo)
        if known is None:
            return None
        engine, block, route = known
        replayed = engine.replayed(memo)
        if replayed is None:
            del self._replays[memo]
            return None
        replay, status = replayed.replay, replayed.cache_status
        tail = b"age: " + replayed.age + b"\r\ncache-status: " + status + b"\r\n"
        return WireAnswer(
            replay.status,
            (block, tail),
            (replay.body,),
            True,
            status.decode("latin-1"),
            outcome=Outcome.HIT,  # only fresh hits are replayed (core.replay)
            route=route,
        )

    @staticmethod
    def _head(request: Request, headers: Pairs) -> RequestHead:
        return RequestHead(
            request.method,
            request.scheme,
            request.authority,
            _origin_form(request),
            Headers(headers),
        )

    # -- everything else, in a task ------------------------------------------------

    async def handle(self, request: Request, reply: Reply) -> None:
        path = decoded_path(request.path)
        lane = self.lanes.find(request.authority, path)
        if lane is not None:
            reply.route = lane.name
        if lane is None or lane.forwarder is None:
            await self.chain.handle(request, reply)
            return
        task = asyncio.current_task()
        if task is not None:
            # A client that leaves ends its task wherever it waits: the auth check, a
            # coalesced miss's wait for its leader, or the upstream request.
            def cancel() -> None:
                task.cancel()

            reply.on_gone(cancel)
        headers = request.headers
        if lane.auth is not None:
            allowed = await self._gate(lane, request, reply, path)
            if allowed is None:
                return
            headers = allowed
        if request.upgrade == b"websocket":
            fields = self._fields(lane, request, headers, reply.user)
            updates = header_updates(lane, path)
            target = _origin_form(request)
            await tunnel_upgrade(lane.forwarder, request, reply, fields, target, updates)
            return
        exchange = request.context if isinstance(request.context, Exchange) else None
        request.context = None
        earlier = exchange is not None
        if exchange is None and lane.cache is not None:
            exchange = await self._begin(lane, self._head(request, headers))
        if exchange is None:
            await self._forward(lane, request, reply, None, headers, path)
            return
        await self._cached(lane, request, reply, exchange, path, earlier)

    async def _gate(self, lane: Lane, request: Request, reply: Reply, path: str) -> Pairs | None:
        """The request's fields once the auth gate lets it through, or None once it
        has answered the refusal itself."""
        auth = lane.auth
        assert auth is not None
        headers = request.headers
        rule = auth.gate.rule_for(path)
        if rule is None:
            if any(name == X_REMOTE_USER for name, _ in headers):
                return [h for h in headers if h[0] != X_REMOTE_USER]
            return headers
        address = request.client[0] if request.client else "unknown"
        decision = await auth.gate.check_async(rule, request.header(AUTHORIZATION), address)
        if isinstance(decision, Allowed):
            reply.user = decision.user
            kept = [h for h in headers if h[0] not in auth.dropped]
            kept.append((X_REMOTE_USER, decision.user.encode("utf-8")))
            return kept
        assert not isinstance(decision, Allowed)
        if isinstance(decision, Challenge) and decision.delay:
            await asyncio.sleep(decision.delay)
        status, out, body = denial(decision)  # type: ignore[arg-type]
        reply.start(status, with_updates(out, header_updates(lane, path)))
        reply.end(body)
        return None

    async def _begin(self, lane: Lane, head: RequestHead) -> Exchange:
        assert lane.cache is not None
        engine = lane.cache.engine
        if engine.prefetch is not None and head.method in _LOOKED_UP:
            await engine.prefetch(head.primary_key)  # the shared tier, without blocking
        return engine.begin(head)

    async def _cached(
        self,
        lane: Lane,
        request: Request,
        reply: Reply,
        exchange: Exchange,
        path: str,
        earlier: bool = False,
    ) -> None:
        """``earlier``: the exchange was begun in ``answer_now``, before this task ran,
        so another request may have stored the answer since."""
        assert lane.cache is not None
        first = exchange.first
        if isinstance(first, Respond):
            self._respond(lane, request, reply, exchange, first, path)
            return
        if not first.coalesce:
            await self._forward(lane, request, reply, exchange, first.headers.pairs, path)
            return
        coalescer = lane.cache.coalescer
        key = exchange.request.primary_key
        event = coalescer.begin(key)
        if event is None:  # the first for this URL: the others wait for its answer
            try:
                if earlier:
                    # Looked up before this task ran: a leader may have stored the
                    # answer and left meanwhile, and a second fetch would follow.
                    exchange = lane.cache.engine.begin(exchange.request)
                    if isinstance(exchange.first, Respond):
                        self._respond(lane, request, reply, exchange, exchange.first, path)
                        return
                    first = exchange.first
                await self._forward(lane, request, reply, exchange, first.headers.pairs, path)
            finally:
                coalescer.end(key)
            return
        await coalescer.wait(key, event, lane.cache.settings.coalesce_timeout)
        # The leader's stored answer when there is one; otherwise this one goes alone.
        again = lane.cache.engine.begin(exchange.request)
        if isinstance(again.first, Respond):
            self._respond(lane, request, reply, again, again.first, path)
        else:
            await self._forward(lane, request, reply, again, again.first.headers.pairs, path)

    def _respond(
        self,
        lane: Lane,
        request: Request,
        reply: Reply,
        exchange: Exchange,
        respond: Respond,
        path: str,
    ) -> None:
        assert lane.cache is not None
        answer = lane.cache.engine.answer(respond)
        reply.outcome = respond.outcome
        reply.start(answer.status, with_updates(answer.headers, header_updates(lane, path)))
        reply.end(answer.body)
        if respond.refresh is not None:
            client = request.client[0] if request.client else None
            self._revalidations.start(lane, exchange, respond, reply.user, client)

    # -- the upstream --------------------------------------------------------------

    def _fields(
        self, lane: Lane, request: Request, headers: Pairs, user: str
    ) -> Callable[[Any], Pairs]:
        forwarder = lane.forwarder
        assert forwarder is not None
        client = request.client[0] if request.client else None
        wrapped = Headers(headers)

        def fields(place: Any) -> Pairs:
            return upstream_request_headers(
                wrapped,
                client,
                user or None,
                request.scheme,
                request.version,
                place.host,
                forwarder.options,
            )

        return fields

    async def _forward(
        self,
        lane: Lane,
        request: Request,
        reply: Reply,
        exchange: Exchange | None,
        headers: Pairs,
        path: str,
    ) -> None:
        forwarder = lane.forwarder
        assert forwarder is not None
        def informational(info: Informational) -> None:
            if info.status == 100:
                return  # the wire layer says 100 Continue itself when it reads the body
            fields = downstream_response_headers(info.headers, "1.1", forwarder.options.via_name)
            reply.informational(info.status, fields)

        body: AsyncIterable[bytes] | None = reply.body() if request.has_body else None
        opened = await forwarder.open(
            request.method,
            _origin_form(request),
            self._fields(lane, request, headers, reply.user),
            body,
            informational,
            lane.read_timeout,
        )
        plan = None
        if lane.compress is not None:
            compress = lane.compress
            plan = Compressing(request.method, Headers(headers), compress.rules, compress.choose)
        if isinstance(opened, Failure):
            self._failed(lane, reply, exchange, opened, plan, path)
            return
        try:
            await self._relay(lane, request, reply, exchange, opened, plan, path)
        finally:
            forwarder.finished(opened)

    def _failed(
        self,
        lane: Lane,
        reply: Reply,
        exchange: Exchange | None,
        failure: Failure,
        plan: Compressing | None,
        path: str,
    ) -> None:
        if failure.status == 0:
            raise ClientGone("the client left while sending its body")
        reply.upstream_error = failure.note
        status, headers, body = _plain(failure.status, failure.text)
        if exchange is not None:
            assert lane.cache is not None
            engine = lane.cache.engine
            # The cache hears of the edge's own 502/504 as the ASGI face tells it: a
            # stale entry may answer instead (stale-on-error).
            action = exchange.on_head(status, Headers(headers), engine.clock(), failure.error)
            engine.apply(exchange)
            reply.outcome = action.outcome
            if isinstance(action, Respond):
                answer = engine.answer(action)
                status, headers, body = answer.status, answer.headers, answer.body
            else:
                headers = action.headers
        reply.start(status, with_updates(headers, header_updates(lane, path)))
        reply.end(body)

    async def _relay(
        self,
        lane: Lane,
        request: Request,
        reply: Reply,
        exchange: Exchange | None,
        opened: Opened,
        plan: Compressing | None,
        path: str,
    ) -> None:
        response = opened.response
        reply.upstream_time = opened.elapsed
        status = response.status
        headers = downstream_response_headers(
            response.headers,
            response.http_version,
            lane.forwarder.options.via_name,  # type: ignore[union-attr]
        )
        keep = False
        if exchange is not None:
            assert lane.cache is not None
            engine = lane.cache.engine
            action = exchange.on_head(status, Headers(headers), engine.clock())
            engine.apply(exchange)
            reply.outcome = action.outcome
            if isinstance(action, Respond):  # a 304 that refreshed the entry
                self._respond(lane, request, reply, exchange, action, path)
                return
            headers, keep = action.headers, action.keep_copy
        updates = header_updates(lane, path)
        bodyless = request.method == "HEAD" or status in (204, 304)
        step = plan.on_head(status, headers) if plan is not None else Unchanged()
        if isinstance(step, Replace):
            headers = step.headers
        if bodyless:
            if isinstance(step, Hold) and plan is not None:
                headers = plan.empty()
            reply.start(status, with_updates(headers, updates))
            reply.end()
            return
        length = response.content_length
        try:
            if length is not None and length <= SMALL_BODY:
                whole = await response.read()  # raises when short: httptools counts
                UPSTREAM_BYTES.inc(len(whole))
                if keep and exchange is not None:
                    exchange.on_body(whole)
                    store_ended(lane, exchange)
                if isinstance(step, Hold):
                    assert plan is not None
                    assert lane.compress is not None
                    quality = lane.compress.settings.quality(plan.coding)
                    ENCODINGS.add("stream", plan.coding)
                    done = plan.whole(whole, partial(encode, coding=plan.coding, quality=quality))
                    if done.saved:
                        BYTES_SAVED.inc(done.saved)
                    headers, whole = done.headers, done.body
                reply.start(status, with_updates(headers, updates))
                reply.end(whole)
                return
            copy = exchange if keep else None
            await stream_body(lane, reply, copy, opened, plan, step, status, headers, updates)
        except ClientGone:
            if exchange is not None:
                exchange.on_abort()
            raise
        except (ClientError, OSError) as exc:  # IncompleteBody, BodyTimeout, reset
            if exchange is not None:
                exchange.on_abort()
                assert lane.cache is not None
                lane.cache.engine.apply(exchange)
            reply.upstream_error = f"broken body: {type(exc).__name__}"
            log.warning("upstream %s broke off: %s", opened.place.origin, exc or type(exc).__name__)
            if reply.started:
                reply.abort()  # the client sees a truncated answer, never a whole one
                return
            status, out, body = _plain(502, "Bad Gateway")
            reply.start(status, with_updates(out, header_updates(lane, path)))
            reply.end(body)
