"""RFC 9112 request rules on the wire layer, through raw sockets to a real
``edgecache proxy``: each broken request gets its 4xx/5xx, a closed
connection (read to EOF), and nothing reaches the origin."""

from __future__ import annotations

import pytest

from tests.proxy.conftest import Proxy
from tests.proxy.origin import Origin, json_body
from tests.wire.raw import connect, exchange_and_close, read_answers, read_until_closed

HOST = b"Host: t.example\r\n"


def refused(proxy: Proxy, origin: Origin, payload: bytes) -> tuple[int, bytes]:
    before = len(origin.requests)
    answers, data = exchange_and_close(proxy.port, payload)
    assert answers, f"no answer to {payload[:80]!r}: {data[:200]!r}"
    assert len(origin.requests) == before, "a refused request reached the origin"
    assert answers[0].count(b"date") == 1
    assert answers[0].header(b"connection") == b"close"
    return answers[0].status, answers[0].body


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        pytest.param(b"GET /echo HTTP/1.1\r\n\r\n", 400, id="9112-3.2-no-host"),
        pytest.param(
            b"GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, id="9112-3.2-two-hosts"
        ),
        pytest.param(b"GET /echo HTTP/1.1\r\nHost: a b\r\n\r\n", 400, id="9112-3.2-bad-host"),
        pytest.param(b"GET /echo HTTP/1.1\r\nHost: a@b\r\n\r\n", 400, id="host-with-userinfo"),
        pytest.param(b"GET /echo\r\n\r\n", 400, id="http-0.9"),
        pytest.param(b"GET /echo HTTP/2.0\r\n" + HOST + b"\r\n", 505, id="http-2.0-over-1"),
        pytest.param(b"GET /echo HTTP/3.1\r\n" + HOST + b"\r\n", 400, id="unknown-version"),
        pytest.param(
            b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", 501, id="connect"
        ),
        pytest.param(b"GET * HTTP/1.1\r\n" + HOST + b"\r\n", 400, id="asterisk-not-options"),
        pytest.param(b"GET echo HTTP/1.1\r\n" + HOST + b"\r\n", 400, id="relative-target"),
        pytest.param(b"GET ftp://a/echo HTTP/1.1\r\n" + HOST + b"\r\n", 400, id="ftp-target"),
        pytest.param(
            b"GET http://u:p@a.example/echo HTTP/1.1\r\n" + HOST + b"\r\n",
            400,
            id="absolute-form-userinfo",
        ),
        pytest.param(b"GARBAGE\r\n\r\n", 400, id="garbage"),
        pytest.param(
            b"POST /echo HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
            id="smuggling-cl-and-te",
        ),
        pytest.param(
            b"POST /echo HTTP/1.1\r\n" + HOST + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            400,
            id="two-content-lengths",
        ),
        pytest.param(
            b"GET /echo HTTP/1.1\r\n" + HOST + b"X-A: a\r\n folded\r\n\r\n", 400, id="obs-fold"
        ),
        pytest.param(b"GET /echo HTTP/1.1\r\n" + HOST + b"X-A: a\x00b\r\n\r\n", 400, id="nul"),
        pytest.param(
            b"POST /echo HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n",
            400,
            id="bad-chunk-size",
        ),
        pytest.param(
            b"POST /echo HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip\r\n\r\nab",
            400,
            id="te-not-chunked",
        ),
        pytest.param(b"GET /echo HTTP/1.1\nHost: t.example\n\n", 400, id="bare-lf"),
        pytest.param(b"GET /echo HTTP/1.1\r\n" + HOST + b"NoColon\r\n\r\n", 400, id="no-colon"),
        pytest.param(
            b"GET /echo HTTP/1.1\r\n" + HOST + b"X-A : a\r\n\r\n", 400, id="space-before-colon"
        ),
        pytest.param(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + HOST + b"\r\n", 414, id="uri"),
        pytest.param(
            b"GET /echo HTTP/1.1\r\n" + HOST + b"X-A: a\r\n" * 101 + b"\r\n", 431, id="101-fields"
        ),
        pytest.param(
            b"GET /echo HTTP/1.1\r\n" + HOST + b"X-A: " + b"a" * 40_000 + b"\r\n\r\n",
            431,
            id="40k-field",
        ),
        pytest.param(
            b"GET /echo HTTP/1.1\r\n" + HOST + b"X-A: " + b"a" * (1 << 20) + b"\r\n\r\n",
            431,
            id="1m-field",
        ),
    ],
)
def test_broken_requests_are_refused_and_closed(
    proxy: Proxy, origin: Origin, payload: bytes, status: int
) -> None:
    assert refused(proxy, origin, payload)[0] == status


def test_a_broken_request_after_a_good_one_is_answered_in_order(
    proxy: Proxy, origin: Origin
) -> None:
    before = len(origin.requests)
    answers, _ = exchange_and_close(
        proxy.port, b"GET /echo HTTP/1.1\r\n" + HOST + b"\r\nGET /echo HTTP/1.1\r\n\r\n"
    )
    assert [a.status for a in answers] == [200, 400]
    assert len(origin.requests) == before + 1


def test_options_asterisk_is_answered_by_the_server(proxy: Proxy, origin: Origin) -> None:
    before = len(origin.requests)
    with connect(proxy.port) as sock:
        sock.sendall(b"OPTIONS * HTTP/1.1\r\n" + HOST + b"\r\n")
        (answer,) = read_answers(sock, 1)
        assert answer.status == 200 and b"GET" in (answer.header(b"allow") or b"")
        # ... and the connection goes on.
        sock.sendall(b"GET /echo HTTP/1.1\r\n" + HOST + b"\r\n")
        assert read_answers(sock, 1)[0].status == 200
    assert len(origin.requests) == before + 1


def test_absolute_form_authority_wins_over_host(proxy: Proxy, origin: Origin) -> None:
    with connect(proxy.port) as sock:
        sock.sendall(b"GET http://Other.EXAMPLE:81/echo?q=1 HTTP/1.1\r\nHost: wrong\r\n\r\n")
        (answer,) = read_answers(sock, 1)
    assert answer.status == 200
    seen = json_body(answer.body)
    assert seen["path"] == "/echo?q=1"
    hosts = [v for n, v in seen["headers"] if n == "host"]
    assert hosts == ["other.example:81"]  # RFC 9112 §3.2.2: the Host field is replaced


def test_http_1_0_without_host_is_served(proxy: Proxy) -> None:
    answers, _ = exchange_and_close(proxy.port, b"GET /echo HTTP/1.0\r\n\r\n")
    assert answers[0].status == 200


def test_smuggled_second_request_never_reaches_the_origin(proxy: Proxy, origin: Origin) -> None:
    # CL.TE: a parser that believed Content-Length would see a second request inside.
    before = len(origin.requests)
    payload = (
        b"POST /echo HTTP/1.1\r\n" + HOST + b"Content-Length: 44\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t.example\r\n\r\n"
    )
    with connect(proxy.port) as sock:
        sock.sendall(payload)
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 400 ")
    assert data.count(b"HTTP/1.1") == 1
    assert len(origin.requests) == before
    assert not any(r["path"] == "/smuggled" for r in origin.requests)
