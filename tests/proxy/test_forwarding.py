"""``edgecache proxy`` as a real process in front of a real origin, driven by httpx and
raw sockets: forwarding rules, unusual traffic, failures."""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path
from typing import Any

import httpx

from tests.proxy.conftest import Proxy, start_proxy
from tests.proxy.origin import Origin, json_body


def headers_seen(origin: Origin) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for name, value in origin.last()["headers"]:
        seen.setdefault(name, []).append(value)
    return seen


def test_forwarding_headers(client: httpx.Client, origin: Origin) -> None:
    resp = client.get(
        "/echo",
        headers={
            "X-Forwarded-For": "6.6.6.6",
            "X-Forwarded-Proto": "https",
            "Forwarded": "for=6.6.6.6",
            "Connection": "X-Drop-Me",
            "X-Drop-Me": "1",
            "Keep-Alive": "300",
            "TE": "trailers",
            "Host": "site.example",
            "X-Remote-User": "root",
        },
    )
    assert resp.status_code == 200
    seen = headers_seen(origin)
    # An untrusted client's forwarding claims are replaced, never believed.
    assert seen["x-forwarded-for"] == ["127.0.0.1"]
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["x-forwarded-host"] == ["site.example"]
    assert "forwarded" not in seen
    assert seen["host"] == ["site.example"]  # the client's Host, by default
    assert seen["via"] == ["1.1 edgecache"]
    for hop in ("x-drop-me", "keep-alive", "te", "connection", "x-remote-user"):
        assert hop not in seen, hop
    assert resp.headers["via"].endswith("edgecache")


def test_response_hop_by_hop_removed_and_repeats_kept(client: httpx.Client) -> None:
    resp = client.get("/multi")
    assert resp.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert resp.headers.get_list("x-multi") == ["one", "two"]
    assert "x-secret" not in resp.headers and "keep-alive" not in resp.headers


def test_any_method_and_bodies_both_ways(client: httpx.Client, origin: Origin) -> None:
    resp = client.request("PROPFIND", "/echo", content=b"<xml/>")
    assert json_body(resp.content)["method"] == "PROPFIND"
    assert json_body(resp.content)["body_size"] == 6

    def chunks() -> Any:
        for _ in range(10):
            yield b"a" * 1000

    resp = client.post("/echo", content=chunks())  # Transfer-Encoding: chunked upload
    assert json_body(resp.content)["body_size"] == 10000
    chunked = client.get("/chunked")
    assert chunked.text == "".join(f"chunk {i}\n" for i in range(5))


def test_non_standard_status_codes_pass(client: httpx.Client) -> None:
    for code in (299, 418, 451, 599):
        resp = client.get(f"/status/{code}")
        assert resp.status_code == code and resp.content == b"status body"


def test_partial_content_passes_untouched(client: httpx.Client) -> None:
    resp = client.get("/range", headers={"Range": "bytes=2-6"})
    assert resp.status_code == 206 and resp.headers["content-range"] == "bytes 2-6/10"
    assert resp.content == b"23456"


def test_caching_and_compression_through_the_proxy(client: httpx.Client, origin: Origin) -> None:
    before = len(origin.requests)
    first = client.get("/cached", headers={"Accept-Encoding": "gzip"})
    second = client.get("/cached", headers={"Accept-Encoding": "gzip"})
    assert first.text == second.text == "cached body " * 50
    assert second.headers["content-encoding"] == "gzip"
    assert "hit" in second.headers["cache-status"]
    assert len(origin.requests) == before + 1
    # The edge encodes: the upstream was asked for identity.
    assert "accept-encoding" not in headers_seen(origin)


def test_upstream_refused_is_502(tmp_path: Any) -> None:
    with start_proxy(tmp_path, "--upstream", "http://127.0.0.1:9") as p:
        resp = httpx.get(p.url + "/anything")
        assert resp.status_code == 502 and resp.text == "502 Bad Gateway\n"
        assert "Traceback" not in p.log()
        assert "upstream http://127.0.0.1:9 failed" in p.wait_for_log("failed")


def test_upstream_timeout_is_504(client: httpx.Client, proxy: Proxy) -> None:
    resp = client.get("/slow?s=3")  # the proxy's read timeout is 1 s
    assert resp.status_code == 504
    assert "timed out" in proxy.wait_for_log("timed out")


def test_upstream_dying_mid_body_closes_the_client_and_caches_nothing(
    client: httpx.Client, origin: Origin
) -> None:
    before = len(origin.requests)
    for _ in range(2):
        try:
            resp = client.get("/die")
            truncated = len(resp.content) < 100000
        except httpx.HTTPError:
            truncated = True
        assert truncated
    assert len(origin.requests) == before + 2  # never served from the cache


def test_client_disconnect_cancels_the_upstream_request(proxy: Proxy, origin: Origin) -> None:
    origin.cancelled.clear()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536)
    assert origin.cancelled.wait(5), "the upstream kept streaming to nobody"


def test_request_body_limit_is_413(client: httpx.Client) -> None:
    resp = client.post("/echo", content=b"x" * (2 * 1024 * 1024))
    assert resp.status_code == 413

    def chunks() -> Any:
        for _ in range(40):
            yield b"x" * 65536

    assert client.post("/echo", content=chunks()).status_code == 413


def test_stale_if_error_from_the_cache_when_upstream_fails(
    client: httpx.Client, origin: Origin
) -> None:
    assert client.get("/sie").text == "still good"  # stored, stale at once (max-age=0)
    origin.failing = True
    try:
        resp = client.get("/sie")
    finally:
        origin.failing = False
    assert resp.status_code == 200 and resp.text == "still good"
    assert "stale-if-error" in resp.headers["cache-status"]


def raw_exchange(port: int, payload: bytes) -> bytes:
    """What the proxy answered, read until it closed the connection: a timeout fails
    (a connection left open after a refusal could carry a smuggled request)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
        except TimeoutError:
            raise AssertionError(f"the connection was left open after {data[:100]!r}") from None
    return data


def test_malformed_requests_get_400_and_the_proxy_keeps_serving(
    proxy: Proxy, origin: Origin
) -> None:
    bad = [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
    ]
    before = len(origin.requests)
    for payload in bad:
        answer = raw_exchange(proxy.port, payload)
        assert answer.startswith(b"HTTP/1.1 400"), (payload, answer[:100])
    assert len(origin.requests) == before  # nothing reached the upstream
    assert httpx.get(proxy.url + "/echo").status_code == 200


def test_oversized_headers_are_refused_not_a_crash(proxy: Proxy) -> None:
    answer = raw_exchange(
        proxy.port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n"
    )
    assert answer == b"" or answer.split(b" ")[1] in (b"400", b"431")
    assert httpx.get(proxy.url + "/echo").status_code == 200


def test_access_log_has_cache_status_and_upstream_time(client: httpx.Client, proxy: Proxy) -> None:
    client.get("/echo?x=1", headers={"Authorization": "Basic c2VjcmV0OnNlY3JldA=="})
    line = [x for x in proxy.wait_for_log("/echo?x=1").splitlines() if "/echo?x=1" in x][-1]
    assert '"GET /echo?x=1 HTTP/1.1" 200' in line
    assert 'cache="edgecache; fwd=uri-miss' in line and "upstream_time=0." in line
    assert "c2VjcmV0" not in proxy.log() and "secret" not in proxy.log()


def test_head_and_bodiless_statuses(client: httpx.Client) -> None:
    head = client.head("/big?size=5000")
    assert head.status_code == 200 and head.headers["content-length"] == "5000"
    assert head.content == b""
    assert client.get("/status/204").status_code == 204
    assert client.get("/echo").status_code == 200  # the connection is still in shape


def test_9110_14_ranges_answered_from_the_cache(client: httpx.Client, origin: Origin) -> None:
    full = client.get("/cached?ranges", headers={"Accept-Encoding": "identity"})
    assert full.status_code == 200 and "stored" in full.headers["cache-status"]
    seen = len(origin.requests)
    part = client.get("/cached?ranges", headers={"Range": "bytes=0-5", "Accept-Encoding": "br"})
    assert part.status_code == 206 and part.content == b"cached"
    assert part.headers["content-range"] == f"bytes 0-5/{len(full.content)}"
    assert "content-encoding" not in part.headers
    assert part.headers["cache-status"].startswith("edgecache; hit")
    assert client.get("/cached?ranges", headers={"Range": "bytes=9999-"}).status_code == 416
    ok = client.get("/cached?ranges", headers={"Range": "bytes=0-5", "If-Range": '"c1"'})
    assert ok.status_code == 206
    other = client.get("/cached?ranges", headers={"Range": "bytes=0-5", "If-Range": '"c0"'})
    assert other.status_code == 200 and other.content == full.content
    assert len(origin.requests) == seen  # every one answered by the cache


def test_9111_3_4_stored_206_reused_for_contained_ranges(
    client: httpx.Client, origin: Origin
) -> None:
    first = client.get("/part", headers={"Range": "bytes=2-9"})
    assert first.status_code == 206 and first.content == b"23456789"
    assert "stored" in first.headers["cache-status"]
    seen = len(origin.requests)
    inner = client.get("/part", headers={"Range": "bytes=4-6"})
    assert inner.status_code == 206 and inner.content == b"456"
    assert inner.headers["content-range"] == "bytes 4-6/20"
    assert inner.headers["cache-status"].startswith("edgecache; hit")
    assert len(origin.requests) == seen
    whole = client.get("/part")  # not in the part: fetched, and it replaces the part
    assert whole.status_code == 200 and whole.content == b"0123456789abcdefghij"
    assert "fwd=partial" in whole.headers["cache-status"]
    tail = client.get("/part", headers={"Range": "bytes=15-"})
    assert tail.status_code == 206 and tail.content == b"fghij"
    assert len(origin.requests) == seen + 1


def test_a_client_leaving_before_the_answer_frees_its_member(
    origin: Origin, tmp_path: Path
) -> None:
    # least-conn and the status page read member.active: a client that leaves while
    # the upstream has not answered yet must not leave it counted in flight.
    args = ("--upstream", origin.url, "--admin-token", "tok", "--read-timeout", "10")
    with start_proxy(tmp_path, *args) as proxy:
        for i in range(5):
            sock = socket.create_connection(("127.0.0.1", proxy.port))
            sock.sendall(b"GET /slow?s=1&leave=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
            time.sleep(0.2)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # a reset: the client is gone before the upstream's head
        time.sleep(1.5)  # every upstream answer is done by now
        status = httpx.get(
            proxy.url + "/_edgecache/status.json", headers={"authorization": "Bearer tok"}
        ).json()
    members = [m for pool in status["pools"] for m in pool["members"]]
    assert members and all(m["in_flight"] == 0 for m in members), members
