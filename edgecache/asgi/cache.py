"""ASGI CacheMiddleware: translates scope/messages for the core and does the I/O.

Pure ASGI: it wraps ``send``; per-request state lives in locals. Bodies stream to the
client as they arrive; a copy is kept only while the policy wants to store the answer
and it stays under ``max_entry_bytes``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from edgecache.asgi.types import ASGIApp, Message, Receive, Scope, Send
from edgecache.coalesce import AsyncCoalescer
from edgecache.config import Settings
from edgecache.core import policy
from edgecache.core.headers import CACHE_STATUS, HOST, Headers
from edgecache.core.model import RequestHead
from edgecache.core.surrogate import without_surrogates
from edgecache.core.upstream import ASGI_KEY as UPSTREAM_ERROR
from edgecache.engine import Lookup, engine_for
from edgecache.storage import Store

log = logging.getLogger("edgecache")
LOOKUP_KEY = "edgecache.lookup"


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


async def send_answer(send: Send, answer: policy.Answer) -> None:
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
        """``encoded_copies``: keep content-encoded copies of stored bodies; set by
        EdgeCache when a CompressMiddleware sits above this cache."""
        self.app = app
        self.engine = engine_for(settings, store, clock, encoded_copies, options)
        self.settings = self.engine.settings
        self.coalescer = AsyncCoalescer()
        self._prefetch = getattr(self.engine.store, "prefetch", None)
        self._background: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = scope.pop(LOOKUP_KEY, None) or await self._lookup(request_from_scope(scope))
        await self._dispatch(scope, receive, send, found, coalesce=self.settings.coalesce)

    async def _lookup(self, request: RequestHead) -> Lookup:
        if self._prefetch is not None and request.method in ("GET", "HEAD"):
            await self._prefetch(request.primary_key)  # the shared tier, without blocking
        return self.engine.lookup(request)

    async def send_final_hit(self, scope: Scope, send: Send, headers: Headers) -> bool:
        """Answer a hit that needs no encoding on the way out (a stored encoded copy,
        identity, or a body that is not encodable) and return True; otherwise leave the
        lookup in the scope for ``__call__`` and return False.

        CompressMiddleware calls it first, so the common compressed hit skips the
        compression layer's wrapping altogether.
        """
        request = request_from_scope(scope, headers)
        found = await self._lookup(request) if self._prefetch else self.engine.lookup(request)
        decision = found.decision
        if isinstance(decision, policy.Serve):
            answer = self.engine.answer(
                found.request, decision.entry, decision.cache_status, decision.age
            )
            if answer.final:
                await send_answer(send, answer)
                if decision.refresh:
                    self._refresh_in_background(scope, found)
                return True
        scope[LOOKUP_KEY] = found
        return False

    async def _dispatch(
        self, scope: Scope, receive: Receive, send: Send, found: Lookup, coalesce: bool
    ) -> None:
        decision = found.decision
        if isinstance(decision, policy.Serve):
            await send_answer(
                send,
                self.engine.answer(
                    found.request, decision.entry, decision.cache_status, decision.age
                ),
            )
            if decision.refresh:
                self._refresh_in_background(scope, found)
        elif isinstance(decision, policy.GatewayTimeout):
            await send_answer(send, policy.gateway_timeout(decision.cache_status))
        elif isinstance(decision, policy.Bypass):
            await self._forward(scope, receive, send, found, decision)
        elif coalesce and self.engine.may_coalesce(found.request):
            await self._coalesced(scope, receive, send, found, decision)
        else:
            await self._forward(scope, receive, send, found, decision)

    async def _coalesced(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        found: Lookup,
        decision: policy.Forward,
    ) -> None:
        key = found.request.primary_key
        event = self.coalescer.begin(key)
        if event is None:
            try:
                await self._forward(scope, receive, send, found, decision)
            finally:
                self.coalescer.end(key)
            return
        await self.coalescer.wait(key, event, self.settings.coalesce_timeout)
        again = self.engine.lookup(found.request)
        # Shared answer when the leader stored one; otherwise this request goes alone.
        await self._dispatch(scope, receive, send, again, coalesce=False)

    def _refresh_in_background(self, scope: Scope, found: Lookup) -> None:
        key = found.request.primary_key
        if self.coalescer.in_flight(key):
            return  # a refresh or a fetch for this URI is already on its way
        self.coalescer.begin(key)
        stale = found.decision
        assert isinstance(stale, policy.Serve)
        revalidate = policy.background_revalidation(found.request, stale.entry)

        async def discard(_message: Message) -> None:
            return None

        async def run() -> None:
            try:
                await self._forward(dict(scope), empty_body(), discard, found, revalidate)
            except Exception:
                log.exception("background revalidation of %s failed", key)
            finally:
                self.coalescer.end(key)

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        found: Lookup,
        decision: policy.Forward | policy.Bypass,
    ) -> None:
        engine = self.engine
        limit = self.settings.max_entry_bytes
        request_time = engine.clock()
        if isinstance(decision, policy.Forward) and decision.upstream_headers is not (
            found.request.headers
        ):
            scope = dict(scope, headers=decision.upstream_headers.pairs)
        state: dict[str, Any] = {"outcome": None, "done": False}
        chunks: list[bytes] | None = None
        size = 0

        async def wrapped_send(message: Message) -> None:
            nonlocal chunks, size
            if message["type"] == "http.response.start":
                headers = Headers.from_raw(message["headers"])
                status = message["status"]
                error = message.get(UPSTREAM_ERROR)  # the forwarder's own 502/504
                outcome = engine.on_response(found, decision, status, headers, request_time, error)
                state.update(
                    outcome=outcome, status=status, headers=headers, response_time=engine.clock()
                )
                if isinstance(outcome, policy.Refreshed | policy.Serve):
                    await send_answer(
                        send, engine.answer(found.request, outcome.entry, outcome.cache_status)
                    )
                    return
                if engine.wants_copy(outcome, headers):
                    chunks = []
                out = [
                    *without_surrogates(list(message["headers"])),
                    (CACHE_STATUS, outcome.cache_status),
                ]
                await send({**message, "headers": out})
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            if isinstance(state["outcome"], policy.Refreshed | policy.Serve):
                return  # the upstream's body for a 304 or an error we replaced
            body = message.get("body", b"")
            if chunks is not None:
                size += len(body)
                if size > limit:
                    chunks = None  # too large to store: stream on, keep nothing
                else:
                    chunks.append(body)
            await send(message)
            if not message.get("more_body", False):
                state["done"] = True
                if chunks is not None and isinstance(state["outcome"], policy.Store):
                    engine.store_response(
                        found,
                        state["outcome"],
                        state["status"],
                        state["headers"],
                        b"".join(chunks),
                        request_time,
                        state["response_time"],
                    )

        try:
            await self.app(scope, receive, wrapped_send)
        except Exception:
            if isinstance(state["outcome"], policy.Refreshed | policy.Serve):
                # The client already has a complete answer from the cache; an app that
                # raises after its error response (Starlette does) changes nothing.
                log.warning(
                    "app raised after its answer was replaced from the cache for %s",
                    found.request.primary_key,
                    exc_info=True,
                )
                return
            if state["outcome"] is not None or not isinstance(decision, policy.Forward):
                raise
            stale = engine.on_failure(found, decision)
            if stale is None:
                raise
            log.warning(
                "app failed for %s; answered stale (stale-if-error)",
                found.request.primary_key,
                exc_info=True,
            )
            await send_answer(send, engine.answer(found.request, stale.entry, stale.cache_status))
