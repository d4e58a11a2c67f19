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
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
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
