"""The upstream client against real servers on loopback sockets, under asyncio's own
loop and uvloop: keep-alive, the stale-connection race, 1xx, framing, failures,
timeouts, cancelling and back-pressure."""

from __future__ import annotations

import asyncio
import gc
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
import trustme
import uvloop

from edgecache.wire.upstream import (
    BodyTimeout,
    ConnectError,
    ConnectTimeout,
    IncompleteBody,
    Informational,
    ProtocolError,
    ReadTimeout,
    RequestBodyError,
    SendTimeout,
    UpstreamClosed,
    UpstreamPool,
)
from edgecache.wire.upstream_connection import HIGH_WATER
from tests.wire.raw_upstream import Request, answer, serving, serving_raw

Run = Callable[[Coroutine[Any, Any, None]], None]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Run:
    factory = uvloop.new_event_loop if request.param == "uvloop" else asyncio.new_event_loop

    def runner(coro: Coroutine[Any, Any, None]) -> None:
        with asyncio.Runner(loop_factory=factory) as r:
            r.run(asyncio.wait_for(coro, 30))
        gc.collect()  # a transport left open is reported by the test that left it

    return runner


async def ok(request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(answer(b"answer to " + request.line.split(b" ")[1]))


async def get(pool: UpstreamPool, target: str = "/", **kw: Any) -> tuple[int, bytes]:
    async with await pool.request("GET", target, **kw) as response:
        return response.status, await response.read()


def test_keep_alive_one_connection_for_sequential_requests(run: Run) -> None:
    async def main() -> None:
        async with serving(ok) as server:
            pool = UpstreamPool(server.origin)
            for i in range(10):
                assert await get(pool, f"/{i}") == (200, b"answer to /%d" % i)
            assert server.connections == 1 and pool.opened == 1 and pool.idle == 1
            assert server.requests[0].headers[b"host"] == f"127.0.0.1:{server.port}".encode()
            pool.close()

    run(main())


def test_concurrent_requests_and_the_idle_bound(run: Run) -> None:
    async def slow_ok(request: Request, reader: Any, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.05)
        writer.write(answer())

    async def main() -> None:
        async with serving(slow_ok) as server:
            pool = UpstreamPool(server.origin, max_idle=2)
            results = await asyncio.gather(*(get(pool) for _ in range(5)))
            assert results == [(200, b"ok")] * 5
            assert server.connections == 5 and pool.idle == 2
            pool.close()

    run(main())


@pytest.mark.parametrize("close", ["fin", "reset"])
def test_a_reused_connection_closed_unanswered_is_retried_on_a_fresh_one(
    run: Run, close: str
) -> None:
    """The race: the upstream closes an idle kept-alive connection just as a request
    goes out on it. The request, body and all, is sent again; none is lost."""

    async def close_second(request: Request, reader: Any, writer: asyncio.StreamWriter) -> bool:
        if request.connection == 0 and len(server.requests) > 1:
            if close == "reset":  # linger 0: the close sends RST, not FIN
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
            return False  # read the request, then close without a byte of answer
        writer.write(answer(b"got " + request.body))
        return True

    async def body() -> AsyncIterator[bytes]:
        yield b"part one, "
        yield b"part two"

    async def main() -> None:
        nonlocal server
        async with serving(close_second) as server:
            pool = UpstreamPool(server.origin)
            assert await get(pool) == (200, b"got ")
            async with await pool.request("POST", "/form", body=body()) as response:
                assert await response.read() == b"got part one, part two"
                assert not response.reused
            assert server.connections == 2
            lost, resent = server.requests[1:]
            assert lost.connection == 0 and resent.connection == 1
            assert lost.body == resent.body == b"part one, part two"
            pool.close()

    server: Any = None
    run(main())


def test_an_idle_connection_the_upstream_closed_is_not_used(run: Run) -> None:
    async def close_after(request: Request, reader: Any, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer())
        return False  # keep-alive said, then closed: the pool must notice

    async def main() -> None:
        async with serving(close_after) as server:
            pool = UpstreamPool(server.origin)
            assert await get(pool) == (200, b"ok")
            await server.closed_event.wait()
            for _ in range(500):  # until the FIN has arrived
                if pool.idle == 0:
                    break
                await asyncio.sleep(0.01)
            assert pool.idle == 0
            assert await get(pool) == (200, b"ok")
            assert server.connections == 2 and len(server.requests) == 2
            pool.close()

    run(main())


def test_no_retry_once_an_answer_byte_arrived(run: Run) -> None:
    async def half_head(request: Request, reader: Any, writer: asyncio.StreamWriter) -> bool:
        if len(server.requests) == 1:
            writer.write(answer())
            return True
        writer.write(b"HTTP/1.1 200 OK\r\nContent-")
        await writer.drain()
        return False

    async def main() -> None:
        nonlocal server
        async with serving(half_head) as server:
            pool = UpstreamPool(server.origin)
            await get(pool)
            with pytest.raises(UpstreamClosed):
                await get(pool)
            assert len(server.requests) == 2  # sent once, not again
            pool.close()

    server: Any = None
    run(main())


def test_a_fresh_connection_closed_unanswered_is_an_error(run: Run) -> None:
    async def close(request: Request, reader: Any, writer: Any) -> bool:
        return False

    async def main() -> None:
        async with serving(close) as server:
            with pytest.raises(UpstreamClosed):
                await get(UpstreamPool(server.origin))
            assert len(server.requests) == 1

    run(main())


def test_informational_answers_are_exposed_then_the_final_one(run: Run) -> None:
    async def hints(request: Request, reader: Any, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
        writer.write(
            b"HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload; as=style\r\n"
            b"Link: </app.js>; rel=preload; as=script\r\n\r\n"
        )
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(answer(b"page", b"200 OK", b"Link: </app.css>; rel=preload"))

    async def main() -> None:
        seen: list[Informational] = []

        async def relay(info: Informational) -> None:
            seen.append(info)

        async with serving(hints) as server:
            pool = UpstreamPool(server.origin)
            assert await get(pool, on_informational=relay) == (200, b"page")
            assert [(i.status, i.reason) for i in seen] == [
                (100, b"Continue"),
                (103, b"Early Hints"),
            ]
            assert seen[1].headers == [
                (b"Link", b"</app.css>; rel=preload; as=style"),
                (b"Link", b"</app.js>; rel=preload; as=script"),
            ]
            # A plain callback works too, and the connection is still good.
            statuses: list[int] = []
            await get(pool, on_informational=lambda i: statuses.append(i.status))
            assert statuses == [100, 103] and server.connections == 1
            pool.close()

    run(main())


def test_bytes_past_content_length_end_the_answer_and_the_connection(run: Run) -> None:
    async def overlong(request: Request, reader: Any, writer: asyncio.StreamWriter) -> None:
        if len(server.requests) == 1:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA BYTES")
        else:
            writer.write(answer())

    async def main() -> None:
        nonlocal server
        async with serving(overlong) as server:
            pool = UpstreamPool(server.origin)
            assert await get(pool) == (200, b"hello")
            assert pool.idle == 0
            assert await get(pool) == (200, b"ok")
            assert [r.connection for r in server.requests] == [0, 1]
            pool.close()

    server: Any = None
    run(main())


def test_an_answer_dying_mid_body_raises(run: Run) -> None:
    async def die(request: Request, reader: Any, writer: asyncio.StreamWriter) -> bool:
        if request.line.startswith(b"GET /chunked"):
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
        await writer.drain()
        return False

    async def main() -> None:
        async with serving(die) as server:
            pool = UpstreamPool(server.origin)
            for target, arrived in (("/length", 1000), ("/chunked", 5)):
                response = await pool.request("GET", target)
                received = 0
                with pytest.raises(IncompleteBody):
                    async for chunk in response:
                        received += len(chunk)
                assert received == arrived  # what came is delivered, then the error
                response.close()
            assert pool.idle == 0

    run(main())


def test_malformed_answer_is_a_protocol_error(run: Run) -> None:
    async def garbage(request: Request, reader: Any, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab")

    async def main() -> None:
        async with serving(garbage) as server:
            with pytest.raises(ProtocolError):
                await get(UpstreamPool(server.origin))

    run(main())


def test_connect_timeout_on_a_listener_that_does_not_accept(run: Run) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    held = []
    for _ in range(4):  # fill the accept queue: further SYNs are dropped
        probe = socket.socket()
        probe.settimeout(0.2)
        held.append(probe)
        try:
            probe.connect(("127.0.0.1", port))
        except TimeoutError:
            break

    async def main() -> None:
        pool = UpstreamPool(f"http://127.0.0.1:{port}", connect_timeout=0.2)
        with pytest.raises(ConnectTimeout):
            await get(pool)

    try:
        run(main())
    finally:
        for s in [*held, listener]:
            s.close()


def test_refused_connection_is_a_connect_error(run: Run) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))  # bound, never listening: refused

    async def main() -> None:
        with pytest.raises(ConnectError):
            await get(UpstreamPool(f"http://127.0.0.1:{holder.getsockname()[1]}"))

    try:
        run(main())
    finally:
        holder.close()


def test_read_timeouts_for_the_head_and_between_body_bytes(run: Run) -> None:
    async def stall(request: Request, reader: Any, writer: asyncio.StreamWriter) -> None:
        if request.line.startswith(b"GET /head"):
            writer.write(b"HTTP/1.1 200 OK\r\n")  # the rest of the head never comes
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()
        await asyncio.sleep(5)

    async def main() -> None:
        async with serving(stall) as server:
            pool = UpstreamPool(server.origin, read_timeout=0.2)
            with pytest.raises(ReadTimeout) as head:
                await get(pool, "/head")
            assert not isinstance(head.value, IncompleteBody)
            response = await pool.request("GET", "/body")
            assert await response.__anext__() == b"abc"
            with pytest.raises(BodyTimeout):
                await response.__anext__()
            assert isinstance(BodyTimeout("x"), IncompleteBody | TimeoutError)
            response.close()
            pool.close()

    run(main())


def test_send_timeout_when_the_upstream_takes_no_body(run: Run) -> None:
    async def main() -> None:
        async def never_reads(reader: Any, writer: asyncio.StreamWriter) -> None:
            await asyncio.sleep(10)

        async def endless() -> AsyncIterator[bytes]:
            block = b"u" * 65536
            while True:
                yield block

        async with serving_raw(never_reads) as server:
            pool = UpstreamPool(server.origin, send_timeout=0.3)
            with pytest.raises(SendTimeout):
                await pool.request("PUT", "/upload", body=endless())

    run(main())


def test_an_early_answer_stops_the_upload(run: Run) -> None:
    async def main() -> None:
        async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer(b"too big", b"413 Content Too Large", b"connection: close"))
            await writer.drain()
            await asyncio.sleep(10)

        async def endless() -> AsyncIterator[bytes]:
            block = b"u" * 65536
            while True:
                yield block

        async with serving_raw(refuse) as server:
            pool = UpstreamPool(server.origin, send_timeout=5)
            async with await pool.request("PUT", "/upload", body=endless()) as response:
                assert response.status == 413 and await response.read() == b"too big"
            assert pool.idle == 0

    run(main())


def test_cancelling_closes_the_upstream_connection(run: Run) -> None:
    async def forever(request: Request, reader: Any, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        while True:
            writer.write(b"10000\r\n" + b"y" * 65536 + b"\r\n")
            await writer.drain()
            await asyncio.sleep(0.005)

    async def main() -> None:
        async with serving(forever) as server:
            pool = UpstreamPool(server.origin)
            first = asyncio.Event()

            async def consume() -> None:
                async with await pool.request("GET", "/forever") as response:
                    async for _ in response:
                        first.set()

            task = asyncio.ensure_future(consume())
            await first.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.wait_for(server.closed_event.wait(), 5)  # the upstream saw it
            assert pool.idle == 0

            # Cancelled while waiting for the head: closed too.
            server.closed_event.clear()
            waiting = asyncio.ensure_future(get(pool, "/forever"))
            await asyncio.sleep(0)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            assert pool.idle == 0

    run(main())


def test_chunked_both_ways_and_close_delimited(run: Run) -> None:
    async def echo(request: Request, reader: Any, writer: asyncio.StreamWriter) -> bool:
        if request.line.startswith(b"GET /close"):
            writer.write(b"HTTP/1.1 200 OK\r\n\r\nuntil the end")
            return False
        assert request.headers[b"transfer-encoding"] == b"chunked"
        assert b"content-length" not in request.headers
        body = request.body
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(0, len(body), 7):
            part = body[i : i + 7]
            writer.write(b"%x\r\n%b\r\n" % (len(part), part))
        writer.write(b"0\r\n\r\n")
        return True

    async def upload() -> AsyncIterator[bytes]:
        for word in (b"streamed ", b"", b"request ", b"body"):
            yield word  # the empty chunk must not end the body

    async def main() -> None:
        async with serving(echo) as server:
            pool = UpstreamPool(server.origin)
            response = await pool.request(
                "POST", "/echo", [(b"Transfer-Encoding", b"chunked")], body=upload()
            )
            assert response.content_length is None
            assert await response.read() == b"streamed request body"
            response.close()
            assert pool.idle == 1
            assert await get(pool, "/close") == (200, b"until the end")
            assert pool.idle == 0
            pool.close()

    run(main())


def test_request_body_framing_by_content_length(run: Run) -> None:
    async def echo(request: Request, reader: Any, writer: asyncio.StreamWriter) -> None:
        writer.write(answer(request.headers.get(b"content-length", b"-") + b":" + request.body))

    async def parts(*chunks: bytes) -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    async def main() -> None:
        async with serving(echo) as server:
            pool = UpstreamPool(server.origin)
            async with await pool.request("PUT", "/", body=b"whole") as response:
                assert await response.read() == b"5:whole"
            declared = [(b"content-length", b"6")]
            async with await pool.request("PUT", "/", declared, parts(b"abc", b"def")) as r:
                assert await r.read() == b"6:abcdef"
            with pytest.raises(RequestBodyError):
                await pool.request("PUT", "/", declared, parts(b"abc"))
            with pytest.raises(RequestBodyError):
                await pool.request("PUT", "/", declared, parts(b"abcdefg"))
            with pytest.raises(RequestBodyError):
                await pool.request("PUT", "/", declared, b"abc")
            with pytest.raises(RequestBodyError):
                await pool.request("PUT", "/", declared)
            with pytest.raises(ValueError):
                await pool.request("GET", "/", [(b"x-evil", b"a\r\nx-smuggled: 1")])
            pool.close()

    run(main())


def test_head_204_and_304_have_no_body(run: Run) -> None:
    async def bodiless(request: Request, reader: Any, writer: asyncio.StreamWriter) -> None:
        target = request.line.split(b" ")[1]
        if request.method == b"HEAD":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n")
        elif target == b"/204":
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        elif target == b"/304":
            writer.write(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5000\r\n\r\n")
        else:
            writer.write(answer())

    async def main() -> None:
        async with serving(bodiless) as server:
            pool = UpstreamPool(server.origin)
            async with await pool.request("HEAD", "/big") as response:
                assert response.status == 200 and response.content_length == 5000
                assert await response.read() == b""
            assert await get(pool, "/204") == (204, b"")
            assert await get(pool, "/304") == (304, b"")
            assert await get(pool, "/") == (200, b"ok")
            assert server.connections == 1  # each left the connection in shape
            pool.close()

    run(main())


def test_idle_connections_expire(run: Run) -> None:
    async def main() -> None:
        async with serving(ok) as server:
            pool = UpstreamPool(server.origin, idle_timeout=0.05)
            await get(pool)
            assert pool.idle == 1
            await asyncio.wait_for(server.closed_event.wait(), 5)
            assert pool.idle == 0
            await get(pool)
            assert server.connections == 2

    run(main())


def test_a_large_body_streams_with_bounded_buffering(run: Run) -> None:
    size = 100 * 1024 * 1024

    async def big(request: Request, reader: Any, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        block = b"z" * 65536
        for _ in range(size // len(block)):
            writer.write(block)
            await writer.drain()

    async def main() -> None:
        async with serving(big) as server:
            pool = UpstreamPool(server.origin)
            received = 0
            async with await pool.request("GET", "/big") as response:
                async for chunk in response:
                    received += len(chunk)
                    if received % (4 * 1024 * 1024) < len(chunk):
                        await asyncio.sleep(0.001)  # a consumer that lags now and then
                peak = response.peak_buffered
            assert received == size
            # Reading paused at the high-water mark: at most one more socket read.
            assert peak <= HIGH_WATER + 1024 * 1024, peak
            assert pool.idle == 1
            pool.close()

    run(main())


def test_https_origin(run: Run) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    async def main() -> None:
        async def tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            for _ in range(3):
                await reader.readuntil(b"\r\n\r\n")
                writer.write(answer(b"secret"))
                await writer.drain()

        listener = await asyncio.start_server(tls, "127.0.0.1", 0, ssl=server_ctx)
        port = listener.sockets[0].getsockname()[1]
        pool = UpstreamPool(f"https://127.0.0.1:{port}", ssl_context=client_ctx)
        for _ in range(3):
            assert await get(pool) == (200, b"secret")
        assert pool.opened == 1
        pool.close()
        listener.close()
        await asyncio.sleep(0.05)

    run(main())
