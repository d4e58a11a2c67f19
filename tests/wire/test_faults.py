"""Faults the wire layer must survive, bounded in count and time: thousands of idle
or half-sent connections, huge heads, many clients, more connections than allowed."""

from __future__ import annotations

import asyncio
import selectors
import socket
import time
from pathlib import Path

import httpx

from tests.proxy.conftest import Proxy, start_proxy
from tests.proxy.origin import Origin
from tests.wire.raw import connect, exchange_and_close, read_answers

HOST = b"Host: t.example\r\n"


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_two_thousand_idle_connections_are_closed_while_others_are_served(
    hasty_proxy: Proxy,
) -> None:
    silent, partial = [], []
    try:
        for i in range(2000):
            sock = socket.create_connection(("127.0.0.1", hasty_proxy.port), timeout=10)
            if i % 2:
                sock.sendall(b"GET /echo HTTP/1.1\r\nHost: t")  # half a head
                partial.append(sock)
            else:
                silent.append(sock)
        # All 2,000 are open (or being closed by their deadline): a new client is served.
        assert httpx.get(hasty_proxy.url + "/echo", timeout=10).status_code == 200
        received = _read_all_until_closed([*silent, *partial], limit=60)
        assert all(received[s] == b"" for s in silent)
        assert all(received[s].startswith(b"HTTP/1.1 408 ") for s in partial)
    finally:
        for sock in (*silent, *partial):
            sock.close()
    assert httpx.get(hasty_proxy.url + "/echo", timeout=10).status_code == 200


def _read_all_until_closed(socks: list[socket.socket], limit: float) -> dict[socket.socket, bytes]:
    """Read every socket until the server closes it; fails if any is still open after
    ``limit`` seconds (a bound on the test, not a measurement)."""
    received = {s: b"" for s in socks}
    selector = selectors.DefaultSelector()
    for sock in socks:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    open_ = set(socks)
    deadline = time.monotonic() + limit
    while open_:
        assert time.monotonic() < deadline, f"{len(open_)} connection(s) never closed"
        for key, _ in selector.select(timeout=1):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if chunk:
                received[sock] += chunk
            else:
                selector.unregister(sock)
                open_.discard(sock)
    selector.close()
    return received


def test_huge_heads_get_431_and_memory_comes_back(proxy: Proxy, origin: Origin) -> None:
    payload = b"GET /echo HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"
    before_requests = len(origin.requests)
    for _ in range(10):  # warm up: allocator arenas, buffers
        answers, _ = exchange_and_close(proxy.port, payload)
        assert answers[0].status == 431
    before = rss_bytes(proxy.proc.pid)
    for _ in range(100):
        answers, _ = exchange_and_close(proxy.port, payload)
        assert answers[0].status == 431
    after = rss_bytes(proxy.proc.pid)
    assert after - before < 10 * 1024 * 1024, (before, after)
    assert len(origin.requests) == before_requests


def test_ten_thousand_requests_on_256_connections_without_an_error(proxy: Proxy) -> None:
    assert httpx.get(proxy.url + "/cached").status_code == 200  # stored: the rest are hits
    statuses = asyncio.run(_load(proxy.port, connections=256, total=10_000))
    assert len(statuses) == 10_000
    assert set(statuses) == {200}


async def _load(port: int, connections: int, total: int) -> list[int]:
    statuses: list[int] = []
    request = b"GET /cached HTTP/1.1\r\n" + HOST + b"\r\n"

    async def one(count: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for _ in range(count):
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                statuses.append(status)
        finally:
            writer.close()

    per, extra = divmod(total, connections)
    await asyncio.wait_for(
        asyncio.gather(*(one(per + (i < extra)) for i in range(connections))), 120
    )
    return statuses


def test_past_max_connections_new_ones_wait_in_the_backlog(origin: Origin, tmp_path: Path) -> None:
    with start_proxy(
        tmp_path, "--upstream", origin.url, "--max-connections", "20"
    ) as p:
        held = [connect(p.port) for _ in range(20)]
        try:
            waiting = connect(p.port, timeout=0.5)  # the kernel takes it into the backlog
            waiting.sendall(b"GET /echo HTTP/1.1\r\n" + HOST + b"\r\n")
            try:
                early = waiting.recv(65536)
            except TimeoutError:
                early = b""
            assert early == b"", "served beyond max_connections"
            for sock in held[:5]:
                sock.close()
            waiting.settimeout(10)
            assert read_answers(waiting, 1)[0].status == 200  # accepted once room was made
            waiting.close()
        finally:
            for sock in held:
                sock.close()
        assert "Traceback" not in p.log()
