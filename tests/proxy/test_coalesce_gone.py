"""A coalesced miss whose client leaves while it waits for its leader ends there: its
task does not sit out the leader's fetch (or ``coalesce_timeout``) for nobody."""

from __future__ import annotations

import socket
import struct
import threading
import time
from pathlib import Path

from tests.proxy.conftest import start_proxy
from tests.proxy.raw_origin import RawOrigin

SLOW = 3.0


def test_a_waiting_follower_whose_client_left_is_done_at_once(tmp_path: Path) -> None:
    release = threading.Event()

    def answer(conn: socket.socket, head: bytes) -> None:
        release.wait(SLOW)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 2\r\n\r\nok"
        )

    origin = RawOrigin(answer)
    args = ("--upstream", origin.url, "--access-log", "combined")
    try:
        with start_proxy(tmp_path, *args) as proxy:
            request = b"GET /slow HTTP/1.1\r\nHost: example.test\r\n\r\n"
            before = len(origin.heads)  # the start-up's own probe
            leader = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
            leader.sendall(request)
            deadline = time.monotonic() + 5
            while len(origin.heads) == before and time.monotonic() < deadline:
                time.sleep(0.02)
            assert len(origin.heads) == before + 1  # the leader's fetch is under way
            follower = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
            follower.sendall(request)
            time.sleep(0.3)  # it waits for the leader now
            # Gone for good (a reset): a FIN alone may be a half-close, after which
            # the client still reads its answer.
            follower.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            follower.close()
            left = time.monotonic()
            # The follower's line is written when its task ends: long before the
            # leader's answer comes (the origin holds it for SLOW seconds).
            line = proxy.wait_for_log('"GET /slow HTTP/1.1"', timeout=SLOW - 1)
            assert time.monotonic() - left < SLOW - 1, line
            release.set()
            data = b""
            while b"\r\n\r\nok" not in data:
                chunk = leader.recv(4096)
                assert chunk, data
                data += chunk
            assert data.startswith(b"HTTP/1.1 200 ")
            leader.close()
        assert len(origin.heads) == before + 1  # the follower never fetched for itself
    finally:
        release.set()
        origin.close()
