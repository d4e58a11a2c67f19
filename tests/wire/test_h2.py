"""The HTTP/2 connection in this process, under a handler the test holds back: the
request body's flow control (only what the handler consumed is acknowledged), and
the conversions of ``h2_fields``."""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
import uvloop
from h2.errors import ErrorCodes
from h2.events import DataReceived, RemoteSettingsChanged, StreamEnded, WindowUpdated
from hpack import Decoder
from hyperframe.frame import DataFrame

from edgecache.proxy.tls import harden
from edgecache.wire.config import WireConfig
from edgecache.wire.h2_fields import (
    AnswerFields,
    PreparingEncoder,
    build_request,
    response_fields,
)
from edgecache.wire.rules import Refusal
from edgecache.wire.server import WireServer
from edgecache.wire.types import Answer, BaseHandler, Reply, Request
from tests.integration.servers import free_socket
from tests.proxy.h2_client import RawH2, of


class Holding(BaseHandler):
    """Reads no body until ``release`` is set, then answers with the bytes it read."""

    def __init__(self) -> None:
        self.release = threading.Event()

    async def handle(self, request: Request, reply: Reply) -> None:
        while not self.release.is_set():
            await asyncio.sleep(0.01)
        read = 0
        async for chunk in reply.body():
            read += len(chunk)
        body = b"%d" % read
        reply.start(200, [(b"content-length", b"%d" % len(body))])
        reply.end(body)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, Holding]]:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    certfile, keyfile = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    context = harden(ssl.create_default_context(ssl.Purpose.CLIENT_AUTH), ("h2", "http/1.1"))
    context.load_cert_chain(str(certfile), str(keyfile))
    handler = Holding()
    sock = free_socket()
    sock.listen(64)
    loop = uvloop.new_event_loop()
    server = WireServer(handler, WireConfig(http2=True))
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        server.listen(sock, context)
        ready.set()
        loop.run_forever()
        loop.run_until_complete(server.shutdown(1))
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(5)
    try:
        yield int(sock.getsockname()[1]), handler
    finally:
        handler.release.set()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        sock.close()


def _post(h2: RawH2) -> int:
    h2.until(lambda e: isinstance(e, RemoteSettingsChanged) and 4 in e.changed_settings)
    stream_id = h2.conn.get_next_available_stream_id()
    h2.conn.send_headers(stream_id, h2.fields("/", "POST"))
    return stream_id


def test_only_consumed_body_bytes_are_acknowledged(served: tuple[int, Holding]) -> None:
    port, handler = served
    with RawH2(port) as h2:
        h2.conn.increment_flow_control_window(2**20)
        stream_id = _post(h2)
        window = h2.conn.local_flow_control_window(stream_id)
        assert window == 256 * 1024  # our SETTINGS_INITIAL_WINDOW_SIZE
        for _ in range(window // 16384):
            h2.conn.send_data(stream_id, b"a" * 16384)
        h2.send()
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            h2.read(0.1)
        assert not any(of(WindowUpdated, stream_id)(e) for e in h2.events)
        handler.release.set()  # the handler reads: the window comes back
        h2.until(of(WindowUpdated, stream_id))
        h2.conn.send_data(stream_id, b"b" * 1000, end_stream=True)
        h2.send()
        h2.until(of(StreamEnded, stream_id))
        body = b"".join(
            e.data for e in h2.events if isinstance(e, DataReceived) and e.stream_id == stream_id
        )
        assert body == b"%d" % (window + 1000)


def test_a_client_past_our_window_gets_goaway(served: tuple[int, Holding]) -> None:
    port, _ = served
    with RawH2(port) as h2:
        stream_id = _post(h2)
        h2.send()
        raw = b""
        for _ in range(17):  # 17 x 16 KiB: one frame past the 256 KiB window
            frame = DataFrame(stream_id)
            frame.data = b"a" * 16384
            raw += frame.serialize()
        h2.send(raw)
        assert h2.goaway().error_code == ErrorCodes.FLOW_CONTROL_ERROR


# -- h2_fields: pure conversions ------------------------------------------------------


def _fields(*pairs: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    base = [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/a?b=1")]
    return base + list(pairs)


def test_request_from_pseudo_fields() -> None:
    request, length = build_request(
        _fields((b":authority", b"Example.COM"), (b"cookie", b"a=1"), (b"cookie", b"b=2")),
        True,
        "https",
        ("1.2.3.4", 5),
        100,
        8192,
    )
    assert (request.method, request.target, request.path, request.query) == (
        "GET",
        "/a?b=1",
        "/a",
        "b=1",
    )
    assert request.authority == "example.com" and request.version == "2"
    assert request.headers == [(b"host", b"example.com"), (b"cookie", b"a=1; b=2")]
    assert not request.has_body and length is None


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        pytest.param([], 400, id="9113-8.3.1-no-authority"),
        pytest.param([(b":authority", b"a"), (b"host", b"b")], 400, id="9113-8.3.1-host-differs"),
        pytest.param([(b":authority", b"a b")], 400, id="invalid-authority"),
        pytest.param([(b":authority", b"a")] + [(b"x", b"y")] * 101, 431, id="too-many-fields"),
    ],
)
def test_request_refusals(extra: list[tuple[bytes, bytes]], status: int) -> None:
    with pytest.raises(Refusal) as refused:
        build_request(_fields(*extra), True, "https", None, 100, 8192)
    assert refused.value.status == status


def test_response_fields_drop_connection_fields_and_refuse_crlf() -> None:
    fields, length, cache, dated = response_fields(
        200,
        [(b"Content-Length", b"3"), (b"connection", b"close"), (b"cache-status", b"x; hit")],
    )
    assert fields == [(b":status", b"200"), (b"content-length", b"3"), (b"cache-status", b"x; hit")]
    assert (length, cache, dated) == (3, "x; hit", False)
    with pytest.raises(ValueError):
        response_fields(200, [(b"x-a", b"v\r\nset-cookie: evil")])


def test_answer_fields_encode_the_stored_head_once() -> None:
    memo = AnswerFields()
    stored = b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 2\r\n"
    encoder, decoder = PreparingEncoder(), Decoder()
    for age in (b"1", b"2"):
        fields = memo.fields(Answer(200, (stored, b"age: " + age + b"\r\n"), (b"hi",)))
        decoded = decoder.decode(encoder.encode(fields), raw=True)
        assert decoded == [
            (b":status", b"200"),
            (b"content-type", b"text/html"),
            (b"content-length", b"2"),
            (b"age", age),
        ]
    assert list(memo._parts) == [stored]  # the per-hit part is not kept
    # The block touches no dynamic table: another connection's decoder reads it too.
    other = Decoder()
    assert other.decode(PreparingEncoder().encode(fields), raw=True) == decoded
