"""A raw HTTP/2 client for the tests: h2's client connection over a blocking TLS socket
(ALPN h2), plus raw frames (hyperframe) for what a well-behaved client would never
send: the floods."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import ConnectionTerminated, Event


class RawH2:
    def __init__(self, port: int, window: int | None = None) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["h2"])
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock = context.wrap_socket(raw, server_hostname="localhost")
        assert self.sock.selected_alpn_protocol() == "h2"
        self.port = port
        self.conn = H2Connection(H2Configuration(client_side=True, header_encoding=None))
        self.conn.initiate_connection()
        if window is not None:
            self.conn.update_settings({0x4: window})  # SETTINGS_INITIAL_WINDOW_SIZE
        self.events: list[Event] = []
        self.closed = False
        self.send()

    def send(self, raw: bytes = b"") -> None:
        self.sock.sendall(self.conn.data_to_send() + raw)

    def request(
        self,
        path: str,
        method: str = "GET",
        body: bytes | None = None,
        extra: list[tuple[bytes, bytes]] | None = None,
        send: bool = True,
    ) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        headers = [*self.fields(path, method), *(extra or [])]
        self.conn.send_headers(stream_id, headers, end_stream=body is None)
        if body is not None:
            self.conn.send_data(stream_id, body, end_stream=True)
        if send:
            self.send()
        return stream_id

    def fields(self, path: str, method: str = "GET") -> list[tuple[bytes, bytes]]:
        """The pseudo-header fields of a request for ``path``."""
        return [
            (b":method", method.encode()),
            (b":scheme", b"https"),
            (b":authority", b"127.0.0.1:%d" % self.port),
            (b":path", path.encode()),
        ]

    def read(self, timeout: float = 5.0) -> list[Event]:
        """The events of the next bytes from the server; [] once it has closed."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return []
        except (ConnectionResetError, ssl.SSLError):
            data = b""
        if not data:
            self.closed = True
            return []
        events = self.conn.receive_data(data)
        self.events += events
        pending = self.conn.data_to_send()
        if pending and not self.closed:
            try:
                self.sock.sendall(pending)
            except OSError:
                self.closed = True
        return events

    def until(self, done: Callable[[Event], bool], timeout: float = 10.0) -> Event:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if done(event):
                return event
        while time.monotonic() < deadline:
            events = self.read(deadline - time.monotonic())
            for event in events:
                if done(event):
                    return event
            if self.closed:
                break
        raise AssertionError(f"not seen; events: {self.events[-10:]}")

    def goaway(self, timeout: float = 10.0) -> ConnectionTerminated:
        """The server's GOAWAY (and then the close), reading whatever comes before."""
        event = self.until(lambda e: isinstance(e, ConnectionTerminated), timeout)
        assert isinstance(event, ConnectionTerminated)
        return event

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawH2:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def of(kind: type[Any], stream_id: int) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, kind) and getattr(e, "stream_id", None) == stream_id
