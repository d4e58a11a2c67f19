"""Upgrades through the proxy as a raw byte tunnel (``proxy.tunnel``): whatever the
two ends speak after the 101 passes untouched, and a refused upgrade is an answer."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.servers import free_socket
from tests.proxy.conftest import Proxy, start_proxy
from tests.proxy.raw_origin import RawOrigin

UPGRADE = (
    b"GET /%s HTTP/1.1\r\nHost: example.test\r\nConnection: Upgrade\r\n"
    b"Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)


def _answer(conn: socket.socket, head: bytes) -> None:
    """101 and then an echo of bytes upper-cased (no websocket framing at all);
    ``/refuse`` gets a 403 with a body."""
    if head.startswith(b"GET /refuse"):
        conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\n\r\nno way")
        return
    conn.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\n\r\nhello"
    )
    while data := conn.recv(4096):
        conn.sendall(data.upper())


@pytest.fixture
def upstream() -> Iterator[RawOrigin]:
    server = RawOrigin(_answer)
    yield server
    server.close()


@pytest.fixture
def edge(upstream: RawOrigin, tmp_path: Path) -> Iterator[Proxy]:
    with start_proxy(tmp_path, "--upstream", f"http://127.0.0.1:{upstream.port}") as proxy:
        yield proxy


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"closed before a head: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def test_bytes_flow_both_ways_after_the_101(edge: Proxy, upstream: RawOrigin) -> None:
    with socket.create_connection(("127.0.0.1", edge.port), timeout=5) as sock:
        sock.sendall(UPGRADE % b"chat")
        head, rest = _read_head(sock)
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"upgrade: websocket" in head.lower() and b"connection: upgrade" in head.lower()
        while len(rest) < 5:
            rest += sock.recv(4096)
        assert rest == b"hello"  # what the member sent right after its 101
        sock.sendall(b"not a websocket frame\x00\xff")
        echoed = b""
        while len(echoed) < 23:
            echoed += sock.recv(4096)
        assert echoed == b"NOT A WEBSOCKET FRAME\x00\xff"
    sent = upstream.heads[-1].lower()
    assert b"upgrade: websocket" in sent and b"connection: upgrade" in sent
    assert b"sec-websocket-key: dghlihnhbxbszsbub25jzq==" in sent
    assert b"x-forwarded-for: 127.0.0.1" in sent


def test_a_refused_upgrade_is_relayed_as_an_answer(edge: Proxy) -> None:
    with socket.create_connection(("127.0.0.1", edge.port), timeout=5) as sock:
        sock.sendall(UPGRADE % b"refuse")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 403 ")
    assert data.endswith(b"\r\n\r\nno way")  # and the connection closed after it


def test_an_unreachable_member_gets_502(tmp_path: Path) -> None:
    dead = free_socket()
    port = dead.getsockname()[1]
    dead.close()
    with start_proxy(tmp_path, "--upstream", f"http://127.0.0.1:{port}") as proxy:
        sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        with sock:
            sock.sendall(UPGRADE % b"chat")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
    assert data.startswith(b"HTTP/1.1 502 ")


def test_an_upgrade_to_a_static_route_is_refused_not_a_500(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("hi")
    config = tmp_path / "static.toml"
    config.write_text(f'[[route]]\npath = "/"\nstatic = "{tmp_path}"\n')
    with start_proxy(tmp_path, "--config", str(config)) as proxy:
        sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        with sock:
            sock.sendall(UPGRADE % b"ws")
            head, _ = _read_head(sock)
        log = proxy.log()
    assert head.startswith(b"HTTP/1.1 403 ")
    assert "Traceback" not in log


def _open_tunnel(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(UPGRADE % b"chat")
    head, rest = _read_head(sock)
    assert head.startswith(b"HTTP/1.1 101 ")
    while len(rest) < 5:
        rest += sock.recv(4096)
    assert rest == b"hello"
    return sock


def test_an_idle_tunnel_is_closed_on_both_sides(upstream: RawOrigin, tmp_path: Path) -> None:
    args = ("--upstream", upstream.url, "--tunnel-idle-timeout", "0.5")
    with start_proxy(tmp_path, *args) as proxy, _open_tunnel(proxy.port) as sock:
        # Bytes every 0.2 s keep it open well past the timeout...
        for _ in range(6):
            time.sleep(0.2)
            sock.sendall(b"ping")
            echoed = b""
            while len(echoed) < 4:
                echoed += sock.recv(4096)
            assert echoed == b"PING"
        # ...and silence closes it: the client reads its end (no reset, no wait for
        # the socket timeout), and the member's connection is closed too.
        started = time.monotonic()
        sock.settimeout(5)
        assert sock.recv(4096) == b""
        assert time.monotonic() - started < 3
        deadline = time.monotonic() + 3
        while upstream.open_connections() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert upstream.open_connections() == 0
        proxy.wait_for_log("tunnel_idle_timeout")


def test_a_bad_tunnel_idle_timeout_fails_at_start(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "edgecache", "check-config", "--tunnel-idle-timeout", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert "tunnel_idle_timeout" in done.stderr or "tunnel-idle-timeout" in done.stderr
