"""Websocket tunnelling: an ``Upgrade: websocket`` request is opened to an upstream and
messages flow both ways until either side closes. Cache and compression never see it.

This is the last user of aiohttp's client: under the uvicorn runner the tunnel relays
ASGI websocket messages. The wire layer will tunnel raw bytes after the 101 instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol

import aiohttp

from edgecache.asgi.types import Receive, Scope, Send
from edgecache.config import Settings
from edgecache.core.balancing import Balancer, Member
from edgecache.core.headers import Headers


class Forwarder(Protocol):
    """What the tunnel needs of the forwarder (``proxy.forward`` imports this module,
    so it names the forwarder by what it offers instead of importing it)."""

    websocket_session: aiohttp.ClientSession | None
    settings: Settings
    balancer: Balancer

    @property
    def places(self) -> Mapping[Member, Any]: ...

    def target(self, scope: Scope, place: Any) -> str: ...

    def upstream_headers(
        self, scope: Scope, headers: Headers, place: Any
    ) -> list[tuple[str, str]]: ...


log = logging.getLogger("edgecache.proxy")
HANDSHAKE = {
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
}


def _client(forwarder: Forwarder) -> aiohttp.ClientSession:
    session = forwarder.websocket_session
    if session is None or session.closed:
        settings = forwarder.settings
        session = aiohttp.ClientSession(
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(
                total=None, connect=settings.connect_timeout, sock_read=settings.read_timeout
            ),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
        )
        forwarder.websocket_session = session
    return session


async def close_websocket_client(forwarder: Forwarder) -> None:
    session, forwarder.websocket_session = forwarder.websocket_session, None
    if session is not None:
        await session.close()


async def tunnel_websocket(
    forwarder: Forwarder, scope: Scope, receive: Receive, send: Send
) -> None:
    if (await receive())["type"] != "websocket.connect":
        return
    member = forwarder.balancer.pick(time.monotonic())
    if member is None:
        await send({"type": "websocket.close", "code": 1011})
        return
    place = forwarder.places[member]
    target = forwarder.target(scope, place)
    url = place.origin.replace("http", "ws", 1) + target
    headers = Headers(scope["headers"])
    protocols = [
        p.strip()
        for p in (headers.get(b"sec-websocket-protocol") or b"").decode("latin-1").split(",")
        if p.strip()
    ]
    forwarded = [
        (n, v)
        for n, v in forwarder.upstream_headers(scope, headers, place)
        if n.lower() not in HANDSHAKE
    ]
    try:
        upstream = await _client(forwarder).ws_connect(
            url,
            headers=forwarded,
            protocols=protocols,
            autoclose=False,
            autoping=True,
            timeout=aiohttp.ClientWSTimeout(ws_close=forwarder.settings.read_timeout),
        )
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        forwarder.balancer.failed(member, time.monotonic())
        log.warning("websocket to %s failed: %s", url, exc)
        await send({"type": "websocket.close", "code": 1011})
        return
    await send({"type": "websocket.accept", "subprotocol": upstream.protocol})
    try:
        await _pump(upstream, receive, send)
    finally:
        await upstream.close()


async def _pump(upstream: aiohttp.ClientWebSocketResponse, receive: Receive, send: Send) -> None:
    async def client_to_upstream() -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.receive":
                if message.get("text") is not None:
                    await upstream.send_str(message["text"])
                else:
                    await upstream.send_bytes(message.get("bytes") or b"")
            elif message["type"] == "websocket.disconnect":
                await upstream.close(code=message.get("code", 1000))
                return

    async def upstream_to_client() -> None:
        async for message in upstream:
            if message.type == aiohttp.WSMsgType.TEXT:
                await send({"type": "websocket.send", "text": message.data})
            elif message.type == aiohttp.WSMsgType.BINARY:
                await send({"type": "websocket.send", "bytes": message.data})
            else:
                break
        await send({"type": "websocket.close", "code": upstream.close_code or 1000})

    tasks = [
        asyncio.ensure_future(client_to_upstream()),
        asyncio.ensure_future(upstream_to_client()),
    ]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        if task.exception() is not None and not isinstance(
            task.exception(), aiohttp.ClientError | OSError
        ):
            raise task.exception()  # type: ignore[misc]
