"""ASGI websocket sessions on the wire layer: the handshake and the frames are done by
the ``websockets`` library's sans-I/O ServerProtocol, the bytes travel through the
connection's raw tunnel after our 101. This lets the ASGI chain's websocket tunnel (the
proxy's forwarder) run unchanged on ``--server wire``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from websockets.frames import Frame, Opcode
from websockets.http11 import Request as WSRequest
from websockets.protocol import State
from websockets.server import ServerProtocol

from edgecache.asgi.types import ASGIApp, Message
from edgecache.wire.types import ClientGone, Reply, Request, Tunnel

MAX_MESSAGE = 16 * 1024 * 1024
"""Largest message taken from a client, bytes."""
_log = logging.getLogger("edgecache.wire.websocket")
_log.setLevel(logging.WARNING)  # the library says "connection open" at INFO, per session


class _Session:
    def __init__(self, request: Request, reply: Reply) -> None:
        self.request = request
        self.reply = reply
        self.protocol: ServerProtocol | None = None
        self.tunnel: Tunnel | None = None
        self.incoming: asyncio.Queue[Message] = asyncio.Queue()
        self.connected = False
        self.closed = False
        self.pump: asyncio.Task[None] | None = None
        self._parts: list[bytes] = []
        self._text = False

    async def receive(self) -> Message:
        if not self.connected:
            self.connected = True
            return {"type": "websocket.connect"}
        if self.tunnel is None:  # refused or never accepted: nothing will come
            return {"type": "websocket.disconnect", "code": 1006}
        return await self.incoming.get()

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "websocket.accept" and self.protocol is None:
            await self._accept(message)
        elif kind == "websocket.close" and self.protocol is None:
            self.protocol = ServerProtocol()  # refused before the handshake: HTTP 403
            body = b"403 Forbidden\n"
            self.reply.start(403, [(b"content-length", b"%d" % len(body))])
            self.reply.end(body)
        elif self.protocol is None or self.tunnel is None or self.closed:
            return
        elif kind == "websocket.send":
            if message.get("text") is not None:
                self.protocol.send_text(message["text"].encode())
            else:
                self.protocol.send_binary(message.get("bytes") or b"")
            await self._flush()
        elif kind == "websocket.close":
            self.closed = True
            self.protocol.send_close(message.get("code", 1000), message.get("reason") or "")
            await self._flush()

    async def _accept(self, message: Message) -> None:
        request = self.request
        chosen = message.get("subprotocol")
        protocol = self.protocol = ServerProtocol(
            subprotocols=[chosen] if chosen else None, max_size=MAX_MESSAGE, logger=_log
        )
        # The protocol parses the handshake itself (its parser must be past it before
        # frames come): give it the head again, as it came.
        head = [b"GET ", request.target.encode("latin-1"), b" HTTP/1.1\r\n"]
        for name, value in request.headers:
            head += (name, b": ", value, b"\r\n")
        protocol.receive_data(b"".join(head) + b"\r\n")
        (handshake,) = protocol.events_received()
        assert isinstance(handshake, WSRequest)
        response = protocol.accept(handshake)
        extra = [(bytes(n).lower(), bytes(v)) for n, v in message.get("headers") or []]
        fields = [
            (k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in response.headers.raw_items()
            if k.lower() != "connection"
        ]
        if response.status_code != 101:  # a broken handshake: websockets says why
            body = bytes(response.body or b"")
            self.reply.start(
                response.status_code,
                [f for f in fields if f[0] != b"content-length"]
                + [(b"content-length", b"%d" % len(body))],
            )
            self.reply.end(body)
            return
        protocol.send_response(response)
        protocol.data_to_send()  # the head is ours to write: the 101 below
        self.reply.start(101, fields + extra)
        self.tunnel = await self.reply.tunnel()
        self.pump = asyncio.get_running_loop().create_task(self._read_client())

    async def _flush(self) -> None:
        assert self.protocol is not None and self.tunnel is not None
        for data in self.protocol.data_to_send():
            if data:
                with contextlib.suppress(ClientGone):
                    await self.tunnel.write(data)

    async def _read_client(self) -> None:
        assert self.protocol is not None and self.tunnel is not None
        protocol = self.protocol
        while True:
            data = await self.tunnel.read()
            if data:
                protocol.receive_data(data)
            else:
                protocol.receive_eof()
            for event in protocol.events_received():
                if isinstance(event, Frame):
                    self._frame(event)
            await self._flush()  # pongs, the close handshake
            if not data or protocol.state is State.CLOSED:
                self.closed = True
                code = (protocol.close_code if protocol.state is State.CLOSED else None) or 1006
                self.incoming.put_nowait({"type": "websocket.disconnect", "code": code})
                return

    def _frame(self, frame: Frame) -> None:
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            self._text = frame.opcode == Opcode.TEXT
            self._parts = [bytes(frame.data)]
        elif frame.opcode == Opcode.CONT:
            self._parts.append(bytes(frame.data))
        else:
            return  # ping, pong, close: the protocol handles them
        if frame.fin:
            data = b"".join(self._parts)
            self._parts = []
            if self._text:
                self.incoming.put_nowait({"type": "websocket.receive", "text": data.decode()})
            else:
                self.incoming.put_nowait({"type": "websocket.receive", "bytes": data})


async def run_websocket(
    app: ASGIApp, scope: dict[str, Any], request: Request, reply: Reply
) -> None:
    offered = [
        p.strip()
        for name, value in request.headers
        if name == b"sec-websocket-protocol"
        for p in value.decode("latin-1").split(",")
        if p.strip()
    ]
    scope.update(
        type="websocket",
        scheme="wss" if request.scheme == "https" else "ws",
        subprotocols=offered,
    )
    session = _Session(request, reply)
    try:
        await app(scope, session.receive, session.send)
    finally:
        if session.pump is not None:
            session.pump.cancel()
            await asyncio.gather(session.pump, return_exceptions=True)
        if session.tunnel is not None:
            session.tunnel.close()
        elif not reply.started:  # the app neither accepted nor refused
            body = b"403 Forbidden\n"
            reply.start(403, [(b"content-length", b"%d" % len(body))])
            reply.end(body)
