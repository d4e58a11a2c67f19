"""HTTP/1.1 connection behaviour of the wire layer through ``edgecache proxy``, over raw
sockets: pipelining, HTTP/1.0, chunked uploads, 100-continue, HEAD, one Date, and the
deadlines (head, idle, body)."""

from __future__ import annotations

import json
import socket
import time

import httpx

from tests.proxy.conftest import Proxy
from tests.proxy.origin import Origin, json_body
from tests.wire.raw import (
    connect,
    exchange_and_close,
    parse_responses,
    read_answers,
    read_until_closed,
)

HOST = b"Host: t.example\r\n"


def test_pipelined_requests_are_answered_in_order(proxy: Proxy) -> None:
    with connect(proxy.port) as sock:
        sock.sendall(
            b"".join(b"GET /echo?n=%d HTTP/1.1\r\n" % n + HOST + b"\r\n" for n in (1, 2, 3))
        )
        answers = read_answers(sock, 3)
    assert [json_body(a.body)["path"] for a in answers] == ["/echo?n=1", "/echo?n=2", "/echo?n=3"]


def test_pipelined_hits_and_misses_stay_in_order(proxy: Proxy) -> None:
    httpx.get(proxy.url + "/cached")  # stored
    with connect(proxy.port) as sock:
        sock.sendall(
            b"GET /cached HTTP/1.1\r\n" + HOST + b"\r\n"
            b"GET /echo?n=2 HTTP/1.1\r\n" + HOST + b"\r\n"
            b"GET /cached HTTP/1.1\r\n" + HOST + b"\r\n"
        )
        first, second, third = read_answers(sock, 3)
    assert first.body == third.body == b"cached body " * 50
    assert json_body(second.body)["path"] == "/echo?n=2"


def test_http_1_0_keep_alive_and_close(proxy: Proxy) -> None:
    with connect(proxy.port) as sock:
        sock.sendall(b"GET /echo HTTP/1.0\r\n" + HOST + b"Connection: keep-alive\r\n\r\n")
        (answer,) = read_answers(sock, 1)
        assert answer.status == 200 and answer.header(b"connection") == b"keep-alive"
        sock.sendall(b"GET /echo HTTP/1.0\r\n" + HOST + b"\r\n")  # 1.0 default: close
        rest = read_until_closed(sock)
    (last,) = parse_responses(rest)
    assert last.status == 200 and last.header(b"connection") == b"close"


def test_http_1_0_chunked_answer_is_delimited_by_close(proxy: Proxy) -> None:
    answers, data = exchange_and_close(proxy.port, b"GET /chunked HTTP/1.0\r\n" + HOST + b"\r\n")
    assert answers[0].status == 200 and b"transfer-encoding" not in data.lower()
    assert answers[0].body == b"".join(b"chunk %d\n" % i for i in range(5))


def test_connection_close_is_honoured(proxy: Proxy) -> None:
    answers, _ = exchange_and_close(
        proxy.port, b"GET /echo HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n"
    )
    assert answers[0].status == 200 and answers[0].header(b"connection") == b"close"


def test_chunked_request_body(proxy: Proxy) -> None:
    with connect(proxy.port) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        )
        (answer,) = read_answers(sock, 1)
    assert json_body(answer.body)["body_size"] == 11


def test_expect_100_continue_is_sent_when_the_body_is_wanted(proxy: Proxy) -> None:
    with connect(proxy.port) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        interim = b""
        while b"\r\n\r\n" not in interim:
            interim += sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n")
        sock.sendall(b"hello")
        (answer,) = read_answers(sock, 1)
    assert answer.status == 200 and json_body(answer.body)["body_size"] == 5


def test_head_has_no_body_and_the_connection_goes_on(proxy: Proxy) -> None:
    with connect(proxy.port) as sock:
        sock.sendall(b"HEAD /big?size=5000 HTTP/1.1\r\n" + HOST + b"\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200") and b"content-length: 5000" in head.lower()
        assert head.endswith(b"\r\n\r\n"), "bytes after a HEAD answer's head"
        sock.sendall(b"GET /echo HTTP/1.1\r\n" + HOST + b"\r\n")
        (answer,) = read_answers(sock, 1)
    assert answer.status == 200 and json_body(answer.body)["method"] == "GET"


def test_one_date_per_answer(proxy: Proxy) -> None:
    httpx.get(proxy.url + "/cached")
    with connect(proxy.port) as sock:
        for path in (b"/echo", b"/cached", b"/chunked", b"/status/404", b"/nowhere"):
            sock.sendall(b"GET " + path + b" HTTP/1.1\r\n" + HOST + b"\r\n")
            (answer,) = read_answers(sock, 1)
            assert answer.count(b"date") == 1, (path, answer.headers)


def test_a_trickled_head_gets_408_and_is_closed(hasty_proxy: Proxy, origin: Origin) -> None:
    before = len(origin.requests)
    with connect(hasty_proxy.port) as sock:
        sock.sendall(b"GET /echo HTTP/1.1\r\n")
        for _ in range(5):  # still trickling after the 1 s head deadline
            time.sleep(0.3)
            try:
                sock.sendall(b"X-A: a\r\n")
            except OSError:
                break
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 408 ")
    assert len(origin.requests) == before


def test_idle_keep_alive_connection_is_closed(hasty_proxy: Proxy) -> None:
    with connect(hasty_proxy.port) as sock:
        sock.sendall(b"GET /echo HTTP/1.1\r\n" + HOST + b"\r\n")
        assert read_answers(sock, 1)[0].status == 200
        assert read_until_closed(sock) == b""  # nothing more, then our FIN


def test_silent_connection_is_closed_without_an_answer(hasty_proxy: Proxy) -> None:
    with connect(hasty_proxy.port) as sock:
        assert read_until_closed(sock) == b""


def test_stalled_body_gets_408(hasty_proxy: Proxy) -> None:
    with connect(hasty_proxy.port) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\n" + HOST + b"Content-Length: 100\r\n\r\nabc")
        data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 408 "), data[:100]


def test_json_log_lines_only(origin: Origin, tmp_path: object) -> None:
    from tests.proxy.conftest import start_proxy

    with start_proxy(
        tmp_path, "--upstream", origin.url, "--access-log", "json"
    ) as p:
        httpx.get(p.url + "/echo?json=1")
        exchange_and_close(p.port, b"GET /echo HTTP/1.1\r\n\r\n")  # refused: logged too
        p.wait_for_log('"/echo?json=1"')
        p.wait_for_log('"status":400')
        lines = p.log().splitlines()
    records = [json.loads(line) for line in lines]  # every line is JSON
    hit = [r for r in records if r.get("path") == "/echo?json=1"][-1]
    assert hit["status"] == 200 and hit["upstream_time"] is not None


def test_websocket_through_the_bridge(proxy: Proxy) -> None:
    import asyncio

    import aiohttp

    async def talk() -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"ws://127.0.0.1:{proxy.port}/ws", protocols=("chat",)) as ws,
        ):
            assert ws.protocol == "chat"
            for i in range(3):
                await ws.send_str(f"m{i}")
                assert (await ws.receive()).data == f"echo:m{i}"
            await ws.send_bytes(b"x" * 100_000)  # several frames' worth of bytes
            assert (await ws.receive()).data == b"x" * 100_000
            await ws.close()
            assert ws.close_code == 1000

    asyncio.run(talk())
    assert httpx.get(proxy.url + "/echo").status_code == 200


def test_a_half_closed_client_still_gets_its_answer(proxy: Proxy) -> None:
    with connect(proxy.port) as sock:
        sock.sendall(b"GET /echo HTTP/1.1\r\n" + HOST + b"\r\n")
        sock.shutdown(socket.SHUT_WR)
        data = read_until_closed(sock)
    assert parse_responses(data)[0].status == 200
