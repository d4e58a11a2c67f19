"""``edgecache proxy`` over its own upstream client, against a raw origin that counts
connections and can answer with bytes past the end of an answer."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.servers import free_socket
from tests.proxy.conftest import start_proxy


class RawOrigin:
    """A thread per connection; requests have no body; each answer is ``answer``."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.connections = 0
        self.requests = 0
        self.sock = free_socket()
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                data += chunk
                while b"\r\n\r\n" in data:
                    _, data = data.split(b"\r\n\r\n", 1)
                    self.requests += 1
                    conn.sendall(self.answer)

    def close(self) -> None:
        self._stop = True
        self.sock.close()


@pytest.fixture
def overlong() -> Iterator[RawOrigin]:
    origin = RawOrigin(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA")
    yield origin
    origin.close()


@pytest.fixture
def plain() -> Iterator[RawOrigin]:
    origin = RawOrigin(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    yield origin
    origin.close()


def test_bytes_past_content_length_end_the_answer_not_in_a_502(
    overlong: RawOrigin, tmp_path: Path
) -> None:
    with start_proxy(tmp_path, "--upstream", overlong.url, "--no-cache") as p:
        before = overlong.connections  # the readiness ping's
        for _ in range(3):
            resp = httpx.get(p.url + "/x")
            assert resp.status_code == 200 and resp.content == b"hello"
        # Each such answer cost its connection: the next request took a fresh one.
        assert overlong.connections - before == 3


def test_upstream_connections_are_kept_alive(plain: RawOrigin, tmp_path: Path) -> None:
    with start_proxy(tmp_path, "--upstream", plain.url, "--no-cache") as p:
        with httpx.Client(base_url=p.url) as client:
            for _ in range(20):
                assert client.get("/x").content == b"hello"
        assert plain.requests == 21  # with the readiness ping
        assert plain.connections == 1
