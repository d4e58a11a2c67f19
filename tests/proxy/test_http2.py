"""HTTP/2 to clients (issue 15) through a real ``edgecache proxy`` with TLS (ALPN h2) in
front of a real origin: many streams on one connection (hits, misses, a 10 MB streamed
body, an upload), flow control both ways, a reset stream cancelling its upstream
request, the limits, and each flood answered with GOAWAY while others are served."""

from __future__ import annotations

import asyncio
import functools
import gc
import http.server
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from h2.errors import ErrorCodes
from h2.events import (
    DataReceived,
    RemoteSettingsChanged,
    ResponseReceived,
    StreamEnded,
    StreamReset,
)
from h2.settings import SettingCodes
from hyperframe.frame import (
    ContinuationFrame,
    HeadersFrame,
    PingFrame,
    SettingsFrame,
)

from tests.proxy.conftest import Proxy, free_port, start_proxy
from tests.proxy.h2_client import RawH2, of
from tests.proxy.origin import Origin, json_body

TEN_MB = 10 * 1024 * 1024


@pytest.fixture(scope="module")
def h2proxy(origin: Origin, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    with start_proxy(
        tmp_path_factory.mktemp("h2proxy"),
        "--upstream",
        origin.url,
        "--self-signed",
        "--http2",
        "--max-body-size",
        "20M",
        "--read-timeout",
        "10",
        scheme="https",
    ) as p:
        yield p
        assert "Traceback" not in p.log(), p.log()[-3000:]


def served(proxy: Proxy) -> None:
    """Another client on another connection is answered over HTTP/2."""
    with httpx.Client(http2=True, verify=False, timeout=10) as client:
        resp = client.get(proxy.url + "/cached")
    assert resp.status_code == 200 and resp.http_version == "HTTP/2"


def test_many_streams_on_one_connection(h2proxy: Proxy, origin: Origin) -> None:
    upload = bytes(range(256)) * 8192  # 2 MiB

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(http2=True, verify=False, timeout=30) as client:
            await client.get(h2proxy.url + "/cached")  # stored: what follows are hits
            jobs = [client.get(h2proxy.url + "/cached") for _ in range(40)]
            jobs += [client.get(h2proxy.url + f"/miss/{i}/echo") for i in range(20)]
            jobs.append(client.get(h2proxy.url + f"/big?size={TEN_MB}"))
            jobs.append(client.post(h2proxy.url + "/up/echo", content=upload))
            answers = list(await asyncio.gather(*jobs))
        # Closed transports finish closing on the loop's next turns: before it ends.
        await asyncio.sleep(0.1)
        return answers

    before = len(origin.requests)
    answers = asyncio.run(run())
    gc.collect()  # a transport left open would warn here, in this test, not a later one
    assert {r.http_version for r in answers} == {"HTTP/2"}
    assert all(r.status_code == 200 for r in answers)
    hits = answers[:40]
    assert all(r.content == b"cached body " * 50 for r in hits)
    assert all("hit" in r.headers["cache-status"] for r in hits)
    assert [json_body(r.content)["path"] for r in answers[40:60]] == [
        f"/miss/{i}/echo" for i in range(20)
    ]
    assert len(answers[60].content) == TEN_MB
    assert json_body(answers[61].content)["body_size"] == len(upload)
    assert len(origin.requests) - before == 1 + 20 + 2  # the hits stayed in the proxy
    # One access-log line per stream, as for HTTP/1.1.
    log = h2proxy.wait_for_log('"POST /up/echo HTTP/2" 200')
    assert log.count('"GET /cached HTTP/2" 200') >= 41


def test_alpn_still_serves_http1(h2proxy: Proxy) -> None:
    with httpx.Client(verify=False) as client:  # offers http/1.1 only
        resp = client.get(h2proxy.url + "/cached")
    assert resp.http_version == "HTTP/1.1" and resp.status_code == 200


def test_settings_name_the_limits(h2proxy: Proxy) -> None:
    with RawH2(h2proxy.port) as h2:
        # h2's initial SETTINGS, then ours: the second one names our limits.
        seen: list[RemoteSettingsChanged] = []
        h2.until(
            lambda e: isinstance(e, RemoteSettingsChanged) and not seen.append(e) and len(seen) == 2
        )
        got = {c: s.new_value for e in seen for c, s in e.changed_settings.items()}
        assert got[SettingCodes.MAX_CONCURRENT_STREAMS] == 100
        assert got[SettingCodes.MAX_HEADER_LIST_SIZE] == 32 * 1024
        assert got[SettingCodes.HEADER_TABLE_SIZE] == 4096
        assert got[SettingCodes.INITIAL_WINDOW_SIZE] == 256 * 1024


def test_too_many_fields_is_431_on_that_stream_only(h2proxy: Proxy) -> None:
    with RawH2(h2proxy.port) as h2:
        many = [(b"x-f%d" % i, b"v") for i in range(150)]
        refused = h2.request("/cached", extra=many)
        fine = h2.request("/cached")
        head = h2.until(of(ResponseReceived, refused))
        assert isinstance(head, ResponseReceived)
        assert dict(head.headers)[b":status"] == b"431"
        ok = h2.until(of(ResponseReceived, fine))
        assert isinstance(ok, ResponseReceived)
        assert dict(ok.headers)[b":status"] == b"200"


def test_slow_reader_of_one_stream_does_not_stall_the_others(h2proxy: Proxy) -> None:
    # The client's window is 64 KiB a stream (the default) and it acknowledges nothing
    # of the big one: the proxy must hold that stream back and answer the small one.
    with RawH2(h2proxy.port) as h2:
        h2.conn.increment_flow_control_window(2**30)  # the connection's window is wide
        h2.send()
        big = h2.request(f"/big?size={TEN_MB}")
        h2.until(of(DataReceived, big))
        small = h2.request("/cached")
        h2.until(of(StreamEnded, small))
        got = sum(
            len(e.data) for e in h2.events if isinstance(e, DataReceived) and e.stream_id == big
        )
        assert got <= 65535
        # Now read it all, giving the windows back as we go.
        h2.conn.acknowledge_received_data(got, big)
        h2.send()
        deadline = time.monotonic() + 30
        while not any(of(StreamEnded, big)(e) for e in h2.events):
            assert time.monotonic() < deadline
            for e in h2.read():
                if isinstance(e, DataReceived) and e.stream_id == big:
                    got += len(e.data)
                    h2.conn.acknowledge_received_data(e.flow_controlled_length, big)
            h2.send()
        assert got == TEN_MB


def test_reset_mid_body_cancels_the_upstream_request(h2proxy: Proxy, origin: Origin) -> None:
    origin.cancelled.clear()
    with RawH2(h2proxy.port) as h2:
        endless = h2.request("/forever")
        h2.until(of(DataReceived, endless))
        h2.conn.reset_stream(endless, ErrorCodes.CANCEL)
        h2.send()
        assert origin.cancelled.wait(10), "the origin never saw the disconnect"
        # The connection goes on: another stream on it is answered.
        after = h2.request("/cached")
        h2.until(of(StreamEnded, after))


# -- floods: each one gets GOAWAY, and the process goes on serving others ---------------


def _rapid_reset(h2: RawH2) -> None:
    for _ in range(400):
        stream_id = h2.request("/slow?s=2", send=False)
        h2.conn.reset_stream(stream_id, ErrorCodes.CANCEL)
    h2.send()


def _settings_flood(h2: RawH2) -> None:
    h2.send(SettingsFrame(0, settings={SettingCodes.ENABLE_PUSH: 0}).serialize() * 200)


def _ping_flood(h2: RawH2) -> None:
    h2.send(PingFrame(0, opaque_data=b"12345678").serialize() * 200)


def _continuation_flood(h2: RawH2) -> None:
    headers = HeadersFrame(1)
    headers.data = b""
    raw = headers.serialize()
    for _ in range(20):  # 20 x 16 KiB: past max_header_bytes (32 KiB)
        frame = ContinuationFrame(1)
        frame.data = b"\x00" * 16384
        raw += frame.serialize()
    h2.send(raw)


def _empty_continuation_flood(h2: RawH2) -> None:
    headers = HeadersFrame(1)
    headers.data = b""
    h2.send(headers.serialize() + ContinuationFrame(1).serialize() * 1000)


@pytest.mark.parametrize(
    "flood",
    [
        pytest.param(_rapid_reset, id="rapid-reset-CVE-2023-44487"),
        pytest.param(_continuation_flood, id="continuation-bytes-CVE-2024-27316"),
        pytest.param(_empty_continuation_flood, id="continuation-frames-CVE-2024-27316"),
        pytest.param(_settings_flood, id="settings-flood"),
        pytest.param(_ping_flood, id="ping-flood"),
    ],
)
def test_flood_gets_goaway_and_others_are_served(h2proxy: Proxy, flood: Any) -> None:
    with RawH2(h2proxy.port) as h2:
        flood(h2)
        event = h2.goaway()
        assert event.error_code in (ErrorCodes.ENHANCE_YOUR_CALM, ErrorCodes.PROTOCOL_ERROR)
        deadline = time.monotonic() + 5
        while not h2.closed:  # and then the connection is closed
            assert time.monotonic() < deadline
            h2.read(1)
    served(h2proxy)
    assert h2proxy.proc.poll() is None


def test_rapid_reset_keeps_the_handlers_in_check(h2proxy: Proxy, origin: Origin) -> None:
    # Cancelled streams free no work: under the flood, at most the concurrent-stream
    # cap of requests reached the origin, not one per cancelled stream.
    before = len(origin.requests)
    with RawH2(h2proxy.port) as h2:
        _rapid_reset(h2)
        h2.goaway()
    time.sleep(2.5)  # the /slow requests that did go out have answered by now
    assert len(origin.requests) - before <= 200


@pytest.mark.skipif(shutil.which("h2load") is None, reason="needs nghttp2-client")
def test_h2load_many_streams(h2proxy: Proxy) -> None:
    out = subprocess.run(
        ["h2load", "-n", "2000", "-c", "4", "-m", "10", h2proxy.url + "/cached"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "2000 succeeded, 0 failed, 0 errored" in out, out
    assert "h2" in out  # the negotiated protocol


def test_no_http2_offers_http1_only(origin: Origin, tmp_path: Any) -> None:
    with start_proxy(
        tmp_path, "--upstream", origin.url, "--self-signed", "--no-http2", scheme="https"
    ) as p:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["h2", "http/1.1"])
        with (
            socket.create_connection(("127.0.0.1", p.port)) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            assert tls.selected_alpn_protocol() == "http/1.1"


_PROTOCOL_PAGE = b"""<!doctype html><html><body><p id="p">?</p><script>
const entry = performance.getEntriesByType("navigation")[0];
document.getElementById("p").textContent = "protocol=" + entry.nextHopProtocol;
</script></body></html>"""


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium")
def test_a_real_browser_loads_the_page_over_h2(tmp_path: Any) -> None:
    # The page says what window.performance saw; the access log says it too.
    (tmp_path / "page.html").write_bytes(_PROTOCOL_PAGE)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        upstream = f"http://127.0.0.1:{site.server_address[1]}"
        with start_proxy(tmp_path, "--upstream", upstream, "--self-signed", scheme="https") as p:
            dom = subprocess.run(
                [
                    "chromium",
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--ignore-certificate-errors",
                    f"--user-data-dir={tmp_path / 'profile'}",
                    "--dump-dom",
                    p.url + "/page.html",
                ],
                capture_output=True,
                text=True,
                timeout=60,
            ).stdout
            assert "protocol=h2" in dom, dom
            assert "HeadlessChrome" in p.wait_for_log('"GET /page.html HTTP/2" 200')
    finally:
        site.shutdown()
        site.server_close()


@pytest.mark.skipif(shutil.which("nghttp") is None, reason="needs nghttp2-client")
def test_sigterm_sends_goaway_and_lets_the_stream_finish(origin: Origin, tmp_path: Any) -> None:
    with start_proxy(
        tmp_path, "--upstream", origin.url, "--self-signed", "--read-timeout", "10", scheme="https"
    ) as p:
        path = "/slow?s=1&x=goaway"
        client = subprocess.Popen(
            ["nghttp", "-nv", p.url + path], stdout=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 10
        while not any(r["path"] == path for r in origin.requests[-3:]):
            assert time.monotonic() < deadline, "the request never reached the origin"
            time.sleep(0.02)
        p.proc.send_signal(signal.SIGTERM)
        out, _ = client.communicate(timeout=20)
        assert client.returncode == 0, out
        assert "recv GOAWAY" in out and "error_code=NO_ERROR" in out, out
        assert ":status: 200" in out, out
        assert p.proc.wait(10) == 0


# -- deadlines: the same settings as HTTP/1.1 ---------------------------------------------


@pytest.fixture(scope="module")
def hasty(origin: Origin, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    with start_proxy(
        tmp_path_factory.mktemp("h2hasty"),
        "--upstream",
        origin.url,
        "--self-signed",
        "--header-timeout",
        "1",
        "--keepalive-timeout",
        "1",
        "--send-timeout",
        "1",
        "--write-timeout",
        "1",
        scheme="https",
    ) as p:
        yield p
        assert "Traceback" not in p.log(), p.log()[-3000:]


def _closed_within(h2: RawH2, seconds: float) -> float:
    started = time.monotonic()
    event = h2.goaway(seconds)
    assert event.error_code == ErrorCodes.NO_ERROR
    while not h2.closed:
        assert time.monotonic() - started < seconds
        h2.read(0.5)
    return time.monotonic() - started


def test_silent_connection_is_closed_after_header_timeout(hasty: Proxy) -> None:
    with RawH2(hasty.port) as h2:
        assert _closed_within(h2, 5) >= 0.5


def test_idle_connection_is_closed_after_keepalive_timeout(hasty: Proxy) -> None:
    with RawH2(hasty.port) as h2:
        stream_id = h2.request("/cached")
        h2.until(of(StreamEnded, stream_id))
        assert _closed_within(h2, 5) >= 0.5


def test_unfinished_header_block_is_closed_after_header_timeout(hasty: Proxy) -> None:
    with RawH2(hasty.port) as h2:
        h2.until(lambda e: isinstance(e, RemoteSettingsChanged))
        headers = HeadersFrame(1)
        headers.data = b""
        h2.send(headers.serialize() + ContinuationFrame(1).serialize())  # never ended
        assert _closed_within(h2, 5) >= 0.5


def test_body_that_stops_arriving_gets_408_on_its_stream(hasty: Proxy) -> None:
    with RawH2(hasty.port) as h2:
        stream_id = h2.conn.get_next_available_stream_id()
        h2.conn.send_headers(stream_id, h2.fields("/late/echo", "POST"))
        h2.conn.send_data(stream_id, b"a little")  # and then nothing
        h2.send()
        head = h2.until(of(ResponseReceived, stream_id), 10)
        assert isinstance(head, ResponseReceived)
        assert dict(head.headers)[b":status"] == b"408"


def test_stream_without_window_is_reset_after_write_timeout(hasty: Proxy) -> None:
    # The client gives no window at all: the answer cannot move, so after
    # write_timeout the stream is reset (its upstream request cancelled) rather
    # than held forever.
    with RawH2(hasty.port, window=0) as h2:
        h2.until(lambda e: isinstance(e, RemoteSettingsChanged))
        stream_id = h2.request(f"/big?size={TEN_MB}")
        reset = h2.until(of(StreamReset, stream_id), 10)
        assert isinstance(reset, StreamReset)
        assert not any(of(DataReceived, stream_id)(e) for e in h2.events)


def test_priority_in_requests_is_no_flood(h2proxy: Proxy) -> None:
    # As browsers send them: 600 requests, each HEADERS frame with priority.
    with RawH2(h2proxy.port) as h2:
        h2.conn.increment_flow_control_window(2**30)  # it reads no DATA back: room
        last = 0
        for _ in range(6):
            ids = []
            for _ in range(100):
                stream_id = h2.conn.get_next_available_stream_id()
                h2.conn.send_headers(
                    stream_id,
                    h2.fields("/cached"),
                    end_stream=True,
                    priority_weight=220,
                    priority_depends_on=last,
                    priority_exclusive=True,
                )
                ids.append(stream_id)
                last = stream_id
            h2.send()
            for stream_id in ids:
                h2.until(of(StreamEnded, stream_id))
        assert not h2.closed


@pytest.mark.skipif(shutil.which("h2load") is None, reason="needs nghttp2-client")
def test_h2c_prior_knowledge_on_its_own_port(origin: Origin, tmp_path: Any) -> None:
    h2c = free_port()
    with start_proxy(
        tmp_path, "--upstream", origin.url, "--http2-cleartext-port", str(h2c), "--workers", "2"
    ) as p:
        out = subprocess.run(
            ["h2load", "-n", "200", "-c", "2", "-m", "10", f"http://127.0.0.1:{h2c}/cached"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        assert "200 succeeded, 0 failed, 0 errored" in out, out
        assert "Application protocol: h2c" in out, out
        assert '"GET /cached HTTP/2" 200' in p.wait_for_log('"GET /cached HTTP/2" 200')
        # The main port still speaks HTTP/1.1 (no TLS here, so no ALPN, no h2).
        assert httpx.get(p.url + "/cached").http_version == "HTTP/1.1"


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_a_stalled_stream_does_not_buffer_its_body(h2proxy: Proxy) -> None:
    # 200 MB on a stream the client never reads: the proxy holds back its handler (and
    # so the upstream) instead of reading the body into memory.
    with RawH2(h2proxy.port) as h2:
        h2.conn.increment_flow_control_window(2**30)
        h2.send()
        before = _rss_kib(h2proxy.proc.pid)
        stalled = h2.request(f"/big?size={200 * 1024 * 1024}")
        h2.until(of(DataReceived, stalled))
        time.sleep(1.0)  # what would have been read by now, had nothing held it back
        assert _rss_kib(h2proxy.proc.pid) - before < 32 * 1024
        small = h2.request("/cached")
        h2.until(of(StreamEnded, small))
