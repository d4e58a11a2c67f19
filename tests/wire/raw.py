"""Raw-socket clients for the wire tests: what was answered, and whether the server
closed the connection (EOF asserted, never a timeout taken for it)."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

import httptools


@dataclass
class Response:
    status: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: bytes) -> bytes | None:
        return next((v for n, v in self.headers if n == name), None)

    def count(self, name: bytes) -> int:
        return sum(1 for n, _ in self.headers if n == name)


class _Collector:
    def __init__(self, head_only: bool) -> None:
        self.responses: list[Response] = []
        self.head_only = head_only
        self.parser = httptools.HttpResponseParser(self)

    def on_message_begin(self) -> None:
        self.responses.append(Response(0))

    def on_header(self, name: bytes, value: bytes) -> None:
        self.responses[-1].headers.append((name.lower(), value))

    def on_headers_complete(self) -> bool | None:
        self.responses[-1].status = self.parser.get_status_code()
        return None

    def on_body(self, body: bytes) -> None:
        self.responses[-1].body += body


def parse_responses(data: bytes) -> list[Response]:
    """Every complete (or started) answer in ``data``, in order; 1xx ones included."""
    collector = _Collector(head_only=False)
    collector.parser.feed_data(data)
    return collector.responses


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything until the server closes; a timeout fails the test (the server was
    supposed to close). A reset after our answer arrived counts as closed."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise AssertionError(f"the server did not close; got {data[:200]!r}") from None
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def read_answers(sock: socket.socket, count: int) -> list[Response]:
    """Read until ``count`` final answers (status >= 200) have arrived, complete."""
    data = b""
    while True:
        responses = [r for r in parse_responses(data) if r.status >= 200]
        if len(responses) >= count and _complete(data, count):
            return responses
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data[:300]!r}"
        data += chunk


def _complete(data: bytes, count: int) -> bool:
    done = 0

    class Counter(_Collector):
        def on_message_complete(self) -> None:
            nonlocal done
            if self.responses[-1].status >= 200:
                done += 1

    counter = Counter(head_only=False)
    try:
        counter.parser.feed_data(data)
    except httptools.HttpParserError:
        return False
    return done >= count


def exchange_and_close(port: int, payload: bytes) -> tuple[list[Response], bytes]:
    """Send ``payload``, read until the server closes (asserted), parse the answers."""
    with connect(port) as sock:
        sock.sendall(payload)
        data = read_until_closed(sock)
    return parse_responses(data), data
