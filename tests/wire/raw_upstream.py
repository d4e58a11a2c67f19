"""Scripted HTTP/1.1 servers for the upstream client's tests: asyncio servers on free
loopback ports that read requests with a few lines of code and answer whatever bytes
the test says, malformed or not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class Request:
    line: bytes
    headers: dict[bytes, bytes]
    body: bytes
    connection: int
    """Which connection (0, 1, ...) of the server it came on."""

    @property
    def method(self) -> bytes:
        return self.line.split(b" ", 1)[0]


async def read_request(reader: asyncio.StreamReader, connection: int) -> Request | None:
    """One request off the stream (Content-Length or chunked body), None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    line, *fields = head[:-4].split(b"\r\n")
    headers: dict[bytes, bytes] = {}
    for text in fields:
        name, _, value = text.partition(b":")
        headers[name.strip().lower()] = value.strip()
    body = b""
    if headers.get(b"transfer-encoding") == b"chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
            body += (await reader.readexactly(size + 2))[:-2]
            if size == 0:
                break
    elif b"content-length" in headers:
        body = await reader.readexactly(int(headers[b"content-length"]))
    return Request(line, headers, body, connection)


Handler = Callable[[Request, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool | None]]
"""Answers one request; returns False to close the connection (after the answer)."""

ConnectionHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Server:
    port: int
    origin: str
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    closed: int = 0
    """Connections whose client side ended (EOF or reset)."""
    closed_event: asyncio.Event = field(default_factory=asyncio.Event)


@asynccontextmanager
async def serving_raw(handler: ConnectionHandler) -> AsyncIterator[Server]:
    """A server that hands each connection to ``handler``. On exit every connection
    is closed and every handler finished, so no transport outlives the test's loop."""
    server: Server | None = None
    tasks: set[asyncio.Task[None]] = set()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert server is not None
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        server.connections += 1
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            server.closed += 1
            server.closed_event.set()
            writer.transport.abort()

    transports: list[asyncio.BaseTransport] = []
    loop = asyncio.get_running_loop()

    class Tracked(asyncio.StreamReaderProtocol):
        # Every accepted transport is known at once, even one whose handler never ran.
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            transports.append(transport)
            super().connection_made(transport)

    def factory() -> Tracked:
        return Tracked(asyncio.StreamReader(limit=2**20), connection)

    listener = await loop.create_server(factory, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    server = Server(port, f"http://127.0.0.1:{port}")
    try:
        yield server
    finally:
        # Connections still being accepted must finish that first: asyncio fails to
        # make a transport for a socket it accepted after its server closed.
        await asyncio.sleep(0.01)
        listener.close()
        for transport in transports:
            transport.abort()  # type: ignore[attr-defined]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)  # let the aborted transports finish closing


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[Server]:
    """A server that reads requests one after the other and lets ``handler`` answer."""
    holder: list[Server] = []

    async def each_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server = holder[0]
        number = server.connections - 1
        while (request := await read_request(reader, number)) is not None:
            server.requests.append(request)
            if await handler(request, reader, writer) is False:
                await writer.drain()
                break
            await writer.drain()

    async with serving_raw(each_request) as server:
        holder.append(server)
        yield server


def answer(body: bytes = b"ok", status: bytes = b"200 OK", *fields: bytes) -> bytes:
    head = b"HTTP/1.1 " + status + b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\n"
    return head + b"".join(f + b"\r\n" for f in fields) + b"\r\n" + body
