"""The handler interface, driven by a native handler on a real WireServer (uvloop, in a
thread of the test process) over raw sockets: the fast path, 1xx relay, framing,
abort, back-pressure, the client leaving, body limits, and the raw tunnel."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvloop

from edgecache.wire.config import WireConfig
from edgecache.wire.server import WireServer
from edgecache.wire.types import Answer, BaseHandler, Reply, Request
from tests.wire.raw import (
    connect,
    exchange_and_close,
    parse_responses,
    read_answers,
    read_until_closed,
)

HOST = b"Host: t.example\r\n"
BIG = 64 * 1024 * 1024


class Native(BaseHandler):
    def __init__(self) -> None:
        self.gone = threading.Event()
        self.written_before_read = 0
        self.reading = threading.Event()
        self.tasks = 0

    def answer_now(self, request: Request) -> Answer | None:
        if request.path != "/fast":
            return None
        body = b"fast " + request.authority.encode()
        head = (b"HTTP/1.1 200 OK\r\n", b"content-length: %d\r\n" % len(body))
        return Answer(200, head, (body,), has_date=False, cache_status="edgecache; hit")

    async def handle(self, request: Request, reply: Reply) -> None:
        self.tasks += 1
        path = request.path
        if path == "/early":
            reply.informational(103, [(b"link", b"</s.css>; rel=preload")])
            reply.start(200, [(b"content-length", b"2")])
            reply.end(b"ok")
        elif path == "/abort":
            reply.start(200, [(b"content-length", b"100")])
            await reply.write(b"x" * 10)
            reply.abort()
        elif path == "/short":
            reply.start(200, [(b"content-length", b"10")])
            reply.end(b"12345")
        elif path == "/stream":
            reply.start(200, [(b"content-type", b"text/plain"), (b"date", b"Thu, 01 Jan 2026 0")])
            for i in range(3):
                await reply.write(b"part%d;" % i)
            reply.end()
        elif path == "/big":
            reply.start(200, [(b"content-length", b"%d" % BIG)])
            block = b"b" * 65536
            for _ in range(BIG // len(block)):
                await reply.write(block)
                if not self.reading.is_set():
                    self.written_before_read += len(block)
            reply.end()
        elif path == "/gone":
            reply.on_gone(self.gone.set)
            reply.start(200, [])
            while not reply.gone:
                await reply.write(b"." * 1024)
                await asyncio.sleep(0.01)
        elif path == "/upload":
            size = 0
            async for chunk in reply.body():
                size += len(chunk)
            reply.start(200, [(b"content-length", b"%d" % len(str(size)))])
            reply.end(str(size).encode())
        elif path == "/raise-before":
            raise RuntimeError("boom")
        elif path == "/raise-after":
            reply.start(200, [(b"content-length", b"10")])
            await reply.write(b"12345")
            raise RuntimeError("boom")
        elif path == "/split":
            reply.start(200, [(b"x-a", b"a\r\nx-injected: 1"), (b"content-length", b"0")])
            reply.end()
        elif path == "/nothing":
            return
        elif path == "/tunnel" and request.upgrade == b"shout":
            reply.start(101, [(b"upgrade", b"shout")])
            tunnel = await reply.tunnel()
            while data := await tunnel.read():
                await tunnel.write(data.upper())
            tunnel.close()
        else:
            reply.start(404, [(b"content-length", b"0")])
            reply.end()


@contextmanager
def running(handler: BaseHandler, config: WireConfig) -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    loop = uvloop.new_event_loop()
    server = WireServer(handler, config)
    started = threading.Event()
    stop = asyncio.Event()

    async def main() -> None:
        await server.start()
        server.listen(sock)
        started.set()
        await stop.wait()
        await server.shutdown(timeout=5)

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
        sock.close()


@pytest.fixture(scope="module")
def native() -> Native:
    return Native()


@pytest.fixture(scope="module")
def port(native: Native) -> Iterator[int]:
    with running(native, WireConfig(max_body_size=1000, body_timeout=2)) as p:
        yield p


def test_fast_path_runs_no_task_and_gets_one_date(native: Native, port: int) -> None:
    before = native.tasks
    with connect(port) as sock:
        sock.sendall(b"GET /fast HTTP/1.1\r\nHost: A.Example\r\n\r\n" * 2)
        answers = read_answers(sock, 2)
        sock.sendall(b"HEAD /fast HTTP/1.1\r\n" + HOST + b"\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(65536)
    assert [a.body for a in answers] == [b"fast a.example"] * 2
    assert all(a.count(b"date") == 1 for a in answers)
    assert head.endswith(b"\r\n\r\n") and b"content-length: 14" in head
    assert native.tasks == before


def test_early_hints_are_relayed_to_1_1_not_1_0(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET /early HTTP/1.1\r\n" + HOST + b"\r\n")
        data = b""
        while not data.endswith(b"ok"):
            data += sock.recv(65536)
    early, final = parse_responses(data)
    assert early.status == 103 and early.header(b"link") == b"</s.css>; rel=preload"
    assert final.status == 200 and final.body == b"ok"
    answers, _ = exchange_and_close(port, b"GET /early HTTP/1.0\r\n" + HOST + b"\r\n")
    assert [a.status for a in answers] == [200]


def test_chunked_framing_and_the_handlers_own_date(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\n" + HOST + b"\r\n")
        (answer,) = read_answers(sock, 1)
    assert answer.header(b"transfer-encoding") == b"chunked"
    assert answer.body == b"part0;part1;part2;"
    assert answer.count(b"date") == 1 and answer.header(b"date") == b"Thu, 01 Jan 2026 0"


@pytest.mark.parametrize("path", [b"/abort", b"/short", b"/raise-after"])
def test_truncated_answers_close_the_connection(port: int, path: bytes) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET " + path + b" HTTP/1.1\r\n" + HOST + b"\r\n")
        data = read_until_closed(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and len(body) < 100


@pytest.mark.parametrize("path", [b"/raise-before", b"/nothing", b"/split"])
def test_no_answer_from_the_handler_is_500(port: int, path: bytes) -> None:
    answers, _ = exchange_and_close(port, b"GET " + path + b" HTTP/1.1\r\n" + HOST + b"\r\n")
    assert answers[0].status == 500


def test_writes_wait_for_a_slow_reader(native: Native, port: int) -> None:
    with connect(port) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(b"GET /big HTTP/1.1\r\n" + HOST + b"\r\n")
        threading.Event().wait(0.5)  # not reading: the handler must be held back
        native.reading.set()
        received = 0
        while received < BIG:
            chunk = sock.recv(1 << 20)
            assert chunk
            received += len(chunk)
    assert native.written_before_read < BIG // 2


def test_the_handler_learns_the_client_left(native: Native, port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"GET /gone HTTP/1.1\r\n" + HOST + b"\r\n")
        assert sock.recv(65536)
    assert native.gone.wait(10)


def test_request_body_limit_and_deadline(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\n\r\nhello")
        assert read_answers(sock, 1)[0].body == b"5"
    answers, _ = exchange_and_close(
        port, b"POST /upload HTTP/1.1\r\n" + HOST + b"Content-Length: 5000\r\n\r\n" + b"x" * 5000
    )
    assert answers[0].status == 413
    chunked = b"".join(b"100\r\n" + b"y" * 256 + b"\r\n" for _ in range(8)) + b"0\r\n\r\n"
    answers, _ = exchange_and_close(
        port, b"POST /upload HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n" + chunked
    )
    assert answers[0].status == 413
    answers, _ = exchange_and_close(
        port, b"POST /upload HTTP/1.1\r\n" + HOST + b"Content-Length: 50\r\n\r\nabc"
    )
    assert answers[0].status == 408  # body_timeout of 2 s between body bytes


def test_expect_100_continue_not_sent_when_over_the_limit(port: int) -> None:
    answers, data = exchange_and_close(
        port,
        b"POST /upload HTTP/1.1\r\n"
        + HOST
        + b"Content-Length: 5000\r\nExpect: 100-continue\r\n\r\n",
    )
    assert [a.status for a in answers] == [413] and b" 100 " not in data


def test_upgrade_hands_over_a_raw_tunnel(port: int) -> None:
    with connect(port) as sock:
        sock.sendall(
            b"GET /tunnel HTTP/1.1\r\n" + HOST + b"Connection: upgrade\r\nUpgrade: shout\r\n\r\n"
            b"early;"
        )
        data = b""
        while b"EARLY;" not in data:
            data += sock.recv(65536)
        assert data.startswith(b"HTTP/1.1 101 ") and b"connection: upgrade" in data
        sock.sendall(b"more")
        echoed = b""
        while echoed != b"MORE":
            echoed += sock.recv(65536)
        sock.shutdown(socket.SHUT_WR)
        assert read_until_closed(sock) == b""


def test_an_upgrade_not_taken_closes_after_the_answer(port: int) -> None:
    answers, _ = exchange_and_close(
        port,
        b"GET /elsewhere HTTP/1.1\r\n" + HOST + b"Connection: upgrade\r\nUpgrade: shout\r\n\r\n",
    )
    assert answers[0].status == 404


def test_graceful_shutdown_lets_the_answer_finish() -> None:
    class Slow(BaseHandler):
        async def handle(self, request: Request, reply: Reply) -> None:
            await asyncio.sleep(0.5)
            reply.start(200, [(b"content-length", b"4")])
            reply.end(b"done")

    with running(Slow(), WireConfig()) as p:
        sock = connect(p)
        sock.sendall(b"GET / HTTP/1.1\r\n" + HOST + b"\r\n")
        threading.Event().wait(0.1)
    # running() has shut the server down: the answer under way was finished first.
    data = read_until_closed(sock)
    sock.close()
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"done")
    assert b"connection: close" in data
