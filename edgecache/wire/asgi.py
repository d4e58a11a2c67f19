"""An ASGI 3 app as a wire-layer Handler: the http scope and the lifespan protocol, so
today's whole ASGI chain runs on the wire layer unchanged.

Lean on purpose: one scope dict and one small cycle object per request; the request's
header list is passed as it is (it is already ASGI's: lowercased bytes names, in
order); the messages are the dicts ASGI requires, nothing more. What the access log
wants back comes from the ``edgecache.log`` note that the forwarder and auth write
into, and from the answer's Cache-Status (the wire layer reads that itself).

Websocket upgrades become ASGI websocket sessions (``edgecache.wire.websocket``), so
the forwarder's websocket tunnel works on the wire layer too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Literal

from edgecache.asgi.types import ASGIApp, Message
from edgecache.wire.types import BaseHandler, ClientGone, Reply, Request, decoded_path
from edgecache.wire.websocket import run_websocket

log = logging.getLogger("edgecache.wire")

LOG_KEY = "edgecache.log"
"""The scope key of a dict in which the chain notes facts for the access log."""
USER_KEY = "edgecache.user"
_ASGI = {"version": "3.0", "spec_version": "2.4"}


class _Cycle:
    """One request's receive and send."""

    __slots__ = ("body", "done", "gone", "note", "reply", "scope")

    def __init__(self, request: Request, reply: Reply, scope: dict[str, Any]) -> None:
        self.reply = reply
        self.scope = scope
        self.note: dict[str, Any] = scope[LOG_KEY]
        self.body = reply.body() if request.has_body else None
        self.gone: asyncio.Future[None] | None = None
        self.done = False

    async def receive(self) -> Message:
        body = self.body
        if body is None:
            return await self._disconnect()
        try:
            chunk = await body.__anext__()
        except StopAsyncIteration:
            self.body = None
            return {"type": "http.request", "body": b"", "more_body": False}
        except ClientGone:
            self.body = None
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def _disconnect(self) -> Message:
        # After the body, receive() waits for the client to leave; once the answer is
        # complete it says so at once (as uvicorn does), so no app waits forever.
        reply = self.reply
        if self.gone is None:
            if self.done or reply.gone:
                return {"type": "http.disconnect"}
            gone = self.gone = asyncio.get_running_loop().create_future()

            def left() -> None:
                if not gone.done():
                    gone.set_result(None)

            reply.on_gone(left)
        await self.gone
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        reply = self.reply
        if kind == "http.response.body":
            data = message.get("body", b"")
            if message.get("more_body", False):
                if data:
                    # As in uvicorn, a gone client is not an error here: the app
                    # learns it from receive().
                    with contextlib.suppress(ClientGone):
                        await reply.write(data)
                return
            self.read_back()
            reply.end(data)
            self.done = True
            if self.gone is not None and not self.gone.done():
                self.gone.set_result(None)
        elif kind == "http.response.start":
            reply.start(message["status"], message.get("headers") or [])

    def read_back(self) -> None:
        note, reply = self.note, self.reply
        if note:
            reply.upstream_time = note.get("upstream_time")
            reply.upstream_error = note.get("upstream_error", "")
            reply.user = note.get("user", "")
            reply.outcome = note.get("outcome")
        reply.user = reply.user or self.scope.get(USER_KEY) or ""


class ASGIHandler(BaseHandler):
    def __init__(
        self,
        app: ASGIApp,
        lifespan: Literal["on", "auto", "off"] = "auto",
        server: tuple[str, int] | None = None,
    ) -> None:
        self.app = app
        self.lifespan = lifespan
        self.server = server
        self.state: dict[str, Any] = {}
        self._messages: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._started: asyncio.Future[None] | None = None
        self._stopped: asyncio.Future[None] | None = None

    async def handle(self, request: Request, reply: Reply) -> None:
        path = request.path
        scope = {
            "type": "http",
            "asgi": _ASGI,
            "http_version": request.version,
            "method": request.method,
            "scheme": request.scheme,
            "path": decoded_path(path),
            "raw_path": path.encode("latin-1"),
            "query_string": request.query.encode("latin-1"),
            "root_path": "",
            "headers": request.headers,
            "client": request.client,
            "server": self.server,
            "state": self.state.copy(),
            LOG_KEY: {},
        }
        if request.upgrade == b"websocket" and request.method == "GET":
            await run_websocket(self.app, scope, request, reply)
            return
        # Any other upgrade (h2c, ...) is ignored: answered over HTTP/1.1, and then the
        # connection closes (the parser stopped at the upgrade request's head).
        cycle = _Cycle(request, reply, scope)
        if cycle.body is None:
            # No body: the first receive() answers at once, without waiting.
            cycle.body = _empty_body()
        try:
            await self.app(scope, cycle.receive, cycle.send)
        finally:
            cycle.read_back()
        if not reply.started:
            log.error("wire: the ASGI app returned without an answer for %r", request)
        # Returning without the last body message leaves the answer unfinished: the
        # wire layer then closes the connection, so nobody takes it for complete.

    # -- lifespan ------------------------------------------------------------------

    async def startup(self) -> None:
        if self.lifespan == "off":
            return
        loop = asyncio.get_running_loop()
        self._started, self._stopped = loop.create_future(), loop.create_future()
        self._task = loop.create_task(self._run_lifespan())
        self._messages.put_nowait({"type": "lifespan.startup"})
        await self._started

    async def shutdown(self) -> None:
        if self._task is None or self._task.done() or self._stopped is None:
            return
        self._messages.put_nowait({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(asyncio.shield(self._stopped), 30)
        finally:
            self._task.cancel()

    async def _run_lifespan(self) -> None:
        assert self._started is not None and self._stopped is not None
        scope = {"type": "lifespan", "asgi": _ASGI, "state": self.state}
        try:
            await self.app(scope, self._messages.get, self._lifespan_send)
        except BaseException as exc:
            if not self._started.done():
                if self.lifespan == "auto":
                    log.debug("wire: the app does not do lifespan (%r)", exc)
                    self._started.set_result(None)
                else:
                    self._started.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            for waiter in (self._started, self._stopped):
                if not waiter.done():
                    waiter.set_result(None)

    async def _lifespan_send(self, message: Message) -> None:
        assert self._started is not None and self._stopped is not None
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            self._started.set_result(None)
        elif kind == "lifespan.startup.failed":
            self._started.set_exception(RuntimeError(message.get("message", "startup failed")))
        elif kind == "lifespan.shutdown.complete":
            self._stopped.set_result(None)
        elif kind == "lifespan.shutdown.failed":
            log.error("wire: lifespan shutdown failed: %s", message.get("message", ""))
            self._stopped.set_result(None)


class _EmptyBody:
    """A body iterator that is already at its end (no coroutine, no waiting)."""

    __slots__ = ()

    def __aiter__(self) -> _EmptyBody:
        return self

    async def __anext__(self) -> bytes:
        raise StopAsyncIteration


def _empty_body() -> Any:
    return _EmptyBody()
