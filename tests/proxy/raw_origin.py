"""A scripted origin on a raw socket, for answers no framework would send: it reads each
request head and hands the connection to the test's ``answer(conn, head)``."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

from tests.integration.servers import free_socket

Answer = Callable[[socket.socket, bytes], None]


class RawOrigin:
    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.sock = free_socket()
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.heads: list[bytes] = []
        self._open = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def open_connections(self) -> int:
        """Connections whose ``answer`` has not returned yet (the peer is still there)."""
        with self._lock:
            return self._open

    def _one(self, conn: socket.socket) -> None:
        with self._lock:
            self._open += 1
        try:
            self._serve_one(conn)
        finally:
            with self._lock:
                self._open -= 1

    def _serve_one(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(4096)
                if not data:
                    return
                head += data
            self.heads.append(head)
            self.answer(conn, head)

    def close(self) -> None:
        self.sock.close()
