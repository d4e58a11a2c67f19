"""1xx answers from the upstream reach the client (RFC 9110 §15.2: a proxy MUST forward
them), except to an HTTP/1.0 client, which cannot take one, and except 100 Continue,
which the edge answers itself when it reads the client's body."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.proxy.conftest import Proxy, start_proxy
from tests.proxy.raw_origin import RawOrigin

FINAL = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nCache-Control: no-store\r\n\r\nok"


def _answer(conn: socket.socket, head: bytes) -> None:
    if b"content-length: 4" in head.lower():
        have = len(head.partition(b"\r\n\r\n")[2])
        while have < 4:  # the body, sent once the edge said 100 Continue itself
            have += len(conn.recv(4096))
    conn.sendall(
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload; as=style\r\n\r\n" + FINAL
    )


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[Proxy]:
    origin = RawOrigin(_answer)
    with start_proxy(tmp_path, "--upstream", origin.url) as proxy:
        yield proxy
    origin.close()


def _exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while not data.endswith(b"ok"):
            chunk = sock.recv(4096)
            assert chunk, data
            data += chunk
    return data


def test_early_hints_are_relayed_before_the_answer(edge: Proxy) -> None:
    data = _exchange(edge.port, b"GET /page HTTP/1.1\r\nHost: t.example\r\n\r\n")
    hints, _, final = data.partition(b"\r\n\r\n")
    assert hints.startswith(b"HTTP/1.1 103 ")
    assert b"link: </s.css>; rel=preload; as=style" in hints.lower()
    assert final.startswith(b"HTTP/1.1 200 ") and final.endswith(b"\r\n\r\nok")
    assert b"100 Continue" not in data  # the upstream's 100 is not the client's


def test_an_http10_client_gets_no_1xx(edge: Proxy) -> None:
    data = _exchange(edge.port, b"GET /page HTTP/1.0\r\nHost: t.example\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 ") and b" 103 " not in data


def test_expect_100_continue_gets_one_100_then_the_hints(edge: Proxy) -> None:
    request = (
        b"POST /form HTTP/1.1\r\nHost: t.example\r\nContent-Length: 4\r\n"
        b"Expect: 100-continue\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", edge.port), timeout=5) as sock:
        sock.sendall(request)
        first = sock.recv(4096)
        assert first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"data")
        data = first
        while not data.endswith(b"ok"):
            chunk = sock.recv(4096)
            assert chunk, data
            data += chunk
    assert data.count(b" 100 Continue") == 1
    assert b"HTTP/1.1 103 " in data and data.endswith(b"\r\n\r\nok")


def test_an_unasked_101_from_the_upstream_is_a_502(tmp_path: Path) -> None:
    def switch(conn: socket.socket, head: bytes) -> None:
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")

    origin = RawOrigin(switch)
    with start_proxy(tmp_path, "--upstream", origin.url) as proxy:
        answer = httpx.get(proxy.url + "/plain", timeout=10)
        log = proxy.log()
    origin.close()
    assert answer.status_code == 502
    assert "Traceback" not in log
