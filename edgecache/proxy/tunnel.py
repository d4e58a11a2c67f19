"""Websocket upgrades to a pool, as a raw byte tunnel: the wire layer's own handler.

The client's upgrade request goes to a pool member on a connection of its own (never
a pooled one: after a 101 it is no longer HTTP), with the request fields the forwarder
sends any request plus ``Connection: upgrade`` and ``Upgrade``. httptools parses the
member's answer head. A 101 is relayed and then bytes flow both ways until either side
closes; anything else is relayed as an ordinary answer (bounded) and the connection
ends. No frame is parsed: whatever the two ends speak after the 101 is theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import httptools

from edgecache.core.forwarded import downstream_response_headers
from edgecache.core.headers import Headers
from edgecache.proxy.forward import Forwarder, _plain
from edgecache.proxy.lanes import with_updates
from edgecache.wire.types import Reply, Request, Tunnel

log = logging.getLogger("edgecache.proxy")

MAX_REFUSAL = 1024 * 1024
"""The most body bytes kept of an answer that refuses the upgrade."""
CHUNK = 65536
CLOSING_GRACE = 5.0
"""Seconds the member's side may go on after the client closed its own."""


class _Head:
    """httptools callbacks: the member's answer head (and a refusal's body)."""

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.complete = False
        self.done = False
        self.body = bytearray()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.complete = True

    def on_body(self, body: bytes) -> None:
        if len(self.body) < MAX_REFUSAL:
            self.body += body

    def on_message_complete(self) -> None:
        self.done = True


async def tunnel_upgrade(
    forwarder: Forwarder,
    request: Request,
    reply: Reply,
    fields: Callable[[Any], list[tuple[bytes, bytes]]],
    target: str,
    updates: list[tuple[bytes, bytes]] = [],  # noqa: B006 - read only
) -> None:
    """``updates``: the route's header rules, set on every answer given here."""

    def start(status: int, headers: list[tuple[bytes, bytes]]) -> None:
        reply.start(status, with_updates(headers, updates))

    member = forwarder.balancer.pick(time.monotonic())
    if member is None:
        status, headers, body = _plain(502, "Bad Gateway")
        start(status, headers)
        reply.end(body)
        return
    place = forwarder.places[member]
    pool = place.pool
    settings = forwarder.settings
    try:
        async with asyncio.timeout(settings.connect_timeout):
            reader, writer = await asyncio.open_connection(
                pool.host,
                pool.port,
                ssl=pool.ssl,
                server_hostname=pool.host if pool.ssl else None,
            )
    except (OSError, TimeoutError) as exc:
        forwarder.balancer.failed(member, time.monotonic())
        log.warning("upstream %s refused an upgrade: %s", place.origin, exc)
        reply.upstream_error = type(exc).__name__
        status, headers, body = _plain(502, "Bad Gateway")
        start(status, headers)
        reply.end(body)
        return
    upgrade = request.upgrade or b"websocket"
    try:
        sent = [*fields(place), (b"connection", b"upgrade"), (b"upgrade", upgrade)]
        head = [f"{request.method} {place.base_path}{target} HTTP/1.1\r\n".encode("latin-1")]
        head += [name + b": " + value + b"\r\n" for name, value in sent]
        writer.writelines([*head, b"\r\n"])
        parsed = _Head()
        parser = httptools.HttpResponseParser(parsed)
        rest = b""
        async with asyncio.timeout(settings.read_timeout):
            while not (parsed.complete and (parsed.done or parser.get_status_code() == 101)):
                data = await reader.read(CHUNK)
                if not data:
                    break
                try:
                    parser.feed_data(data)
                except httptools.HttpParserUpgrade as upgraded:
                    rest = data[upgraded.args[0] :]
                    break
        status = parser.get_status_code() if parsed.complete else 0
        if status == 0:
            raise ConnectionError("no answer head to the upgrade")
        headers = downstream_response_headers(parsed.headers, "1.1", forwarder.options.via_name)
        if status != 101:
            body = bytes(parsed.body)
            kept = [h for h in headers if h[0] != b"content-length"]
            start(status, [*kept, (b"content-length", b"%d" % len(body))])
            reply.end(body)
            return
        accepted = Headers.from_raw(parsed.headers).get(b"upgrade") or upgrade
        start(101, [*headers, (b"upgrade", accepted)])
        client = await reply.tunnel()
        if rest:
            await client.write(rest)
        await _pump(client, reader, writer, settings.tunnel_idle_timeout)
    except (OSError, TimeoutError, httptools.HttpParserError) as exc:
        log.warning("upgrade through %s failed: %s", place.origin, exc or type(exc).__name__)
        reply.upstream_error = type(exc).__name__
        if not reply.started:
            status, headers, body = _plain(502, "Bad Gateway")
            start(status, headers)
            reply.end(body)
    finally:
        writer.close()


async def _pump(
    client: Tunnel, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, idle: float
) -> None:
    """Bytes both ways until one side closes, or until ``idle`` seconds pass with no
    byte either way (a peer that vanished without a FIN would hold the tunnel, its
    socket and its task forever); then the other side is closed too."""
    loop = asyncio.get_running_loop()
    last = loop.time()

    async def up() -> None:
        nonlocal last
        while data := await client.read():
            last = loop.time()
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()

    async def down() -> None:
        nonlocal last
        while data := await reader.read(CHUNK):
            last = loop.time()
            await client.write(data)

    async def watch() -> None:
        # One timer per tunnel, re-armed from the last byte, not one per read.
        while (left := last + idle - loop.time()) > 0:
            await asyncio.sleep(left)
        log.info("tunnel idle for %.0f s (tunnel_idle_timeout): closing both sides", idle)

    sending, receiving = asyncio.ensure_future(up()), asyncio.ensure_future(down())
    watching = asyncio.ensure_future(watch())
    tasks = [sending, receiving, watching]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if sending in done and not receiving.done():
            # The client closed its side: the member may still have its last words
            # (a websocket close frame) to say.
            await asyncio.wait(
                [receiving, watching], timeout=CLOSING_GRACE, return_when=asyncio.FIRST_COMPLETED
            )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        client.close()
