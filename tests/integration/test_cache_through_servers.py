"""The cache middleware in front of real apps under real servers, driven by httpx.

Every scenario runs twice: a Flask app under werkzeug's WSGI server, and a Starlette app
under uvicorn. The middleware's clock is a fake one the tests advance; nothing sleeps.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from edgecache.core.dates import format_http_date
from tests.integration.conftest import Edge


def status_of(resp: httpx.Response) -> str:
    return resp.headers.get("cache-status", "")


def test_miss_then_hit_with_age(edge: Edge) -> None:
    edge.script.route("/a", headers=[("Cache-Control", "max-age=60")], body=b"A")
    first = edge.client.get("/a")
    assert first.status_code == 200 and first.text == "A"
    assert "fwd=uri-miss" in status_of(first) and "stored" in status_of(first)
    edge.clock.advance(7)
    second = edge.client.get("/a")
    assert second.text == "A" and second.headers["age"] == "7"
    assert status_of(second) == "edgecache; hit; ttl=53"
    assert edge.script.calls["GET /a"] == 1


def test_no_default_ttl(edge: Edge) -> None:
    edge.script.route("/plain", body=b"P")
    edge.client.get("/plain")
    edge.client.get("/plain")
    assert edge.script.calls["GET /plain"] == 2


def test_revalidation_with_304(edge: Edge) -> None:
    route = edge.script.route(
        "/v", headers=[("Cache-Control", "max-age=10"), ("ETag", '"1"')], body=b"version one"
    )
    edge.client.get("/v")
    edge.clock.advance(30)
    route.status, route.body = 304, b""
    resp = edge.client.get("/v")
    assert resp.status_code == 200 and resp.text == "version one"
    assert "fwd=stale; fwd-status=304" in status_of(resp)
    assert edge.script.seen_headers["/v"]["if-none-match"] == '"1"'
    assert edge.client.get("/v").headers["cache-status"].startswith("edgecache; hit")
    # The client's own conditional is answered by the cache.
    conditional = edge.client.get("/v", headers={"If-None-Match": '"1"'})
    assert conditional.status_code == 304 and conditional.content == b""
    assert edge.script.calls["GET /v"] == 2


def test_vary_keeps_several_variants(edge: Edge) -> None:
    edge.script.route(
        "/lang",
        headers=[("Cache-Control", "max-age=60"), ("Vary", "Accept-Language")],
        echo_header="Accept-Language",
    )
    assert edge.client.get("/lang", headers={"Accept-Language": "ko"}).text == "ko"
    assert edge.client.get("/lang", headers={"Accept-Language": "en"}).text == "en"
    ko = edge.client.get("/lang", headers={"Accept-Language": "ko"})
    en = edge.client.get("/lang", headers={"Accept-Language": "en"})
    assert (ko.text, en.text) == ("ko", "en")
    assert "hit" in status_of(ko) and "hit" in status_of(en)
    assert edge.script.calls["GET /lang"] == 2


def test_post_invalidates(edge: Edge) -> None:
    edge.script.route("/items", headers=[("Cache-Control", "max-age=60")], body=b"list")
    edge.client.get("/items")
    edge.client.get("/items")
    assert edge.script.calls["GET /items"] == 1
    edge.client.post("/items", content=b"new item")
    edge.client.get("/items")
    assert edge.script.calls["GET /items"] == 2


def test_private_set_cookie_and_authorization_never_shared(edge: Edge) -> None:
    edge.script.route(
        "/me", headers=[("Cache-Control", "private, max-age=60")], echo_header="X-User"
    )
    edge.script.route(
        "/login",
        headers=[("Cache-Control", "max-age=60"), ("Set-Cookie", "sid=alice")],
        body=b"welcome",
    )
    edge.script.route(
        "/acct", headers=[("Cache-Control", "max-age=60")], echo_header="Authorization"
    )
    assert edge.client.get("/me", headers={"X-User": "alice"}).text == "alice"
    assert edge.client.get("/me", headers={"X-User": "bob"}).text == "bob"
    edge.client.get("/login")
    second = edge.client.get("/login")
    assert "sid=alice" in second.headers.get("set-cookie", "")  # from the origin, not the cache
    assert "detail=set-cookie" in status_of(second)
    assert edge.client.get("/acct", headers={"Authorization": "Basic YTpi"}).text == "Basic YTpi"
    assert edge.client.get("/acct").text == ""
    assert edge.script.calls["GET /me"] == 2
    assert edge.script.calls["GET /login"] == 2
    assert edge.script.calls["GET /acct"] == 2


def test_stale_if_error_when_app_raises(edge: Edge) -> None:
    route = edge.script.route(
        "/fragile", headers=[("Cache-Control", "max-age=10, stale-if-error=300")], body=b"good copy"
    )
    edge.client.get("/fragile")
    edge.clock.advance(60)
    route.raises = True
    resp = edge.client.get("/fragile")
    assert resp.status_code == 200 and resp.text == "good copy"
    assert "stale-if-error" in status_of(resp)
    edge.clock.advance(1000)  # beyond the allowance: the failure shows
    assert edge.client.get("/fragile").status_code == 500


def test_stale_if_error_on_503(edge: Edge) -> None:
    route = edge.script.route(
        "/flaky", headers=[("Cache-Control", "max-age=10, stale-if-error=300")], body=b"ok"
    )
    edge.client.get("/flaky")
    edge.clock.advance(60)
    route.status, route.body = 503, b"down"
    resp = edge.client.get("/flaky")
    assert resp.status_code == 200 and resp.text == "ok"


def test_stale_while_revalidate_refreshes_in_background(edge: Edge) -> None:
    route = edge.script.route(
        "/swr", headers=[("Cache-Control", "max-age=10, stale-while-revalidate=60")], body=b"old"
    )
    edge.client.get("/swr")
    edge.clock.advance(20)
    route.body = b"new"
    stale = edge.client.get("/swr")
    assert stale.text == "old" and "stale-while-revalidate" in status_of(stale)
    deadline = time.monotonic() + 5
    while edge.cache.coalescer.in_flight("http://" + edge.url[7:] + "/swr") or (
        edge.script.calls["GET /swr"] < 2
    ):
        assert time.monotonic() < deadline, "background refresh did not finish"
        time.sleep(0.01)
    fresh = edge.client.get("/swr")
    assert fresh.text == "new" and "hit" in status_of(fresh)


def test_large_bodies_stream_through_uncached(edge: Edge) -> None:
    limit = edge.cache.settings.max_entry_bytes
    edge.script.route("/big", headers=[("Cache-Control", "max-age=60")], body=b"x" * (limit + 1))
    assert len(edge.client.get("/big").content) == limit + 1
    assert len(edge.client.get("/big").content) == limit + 1
    assert edge.script.calls["GET /big"] == 2


def test_heuristic_freshness_from_last_modified(edge: Edge) -> None:
    lm = format_http_date(edge.clock.now - 1000).decode()
    date = format_http_date(edge.clock.now).decode()
    edge.script.route("/h", headers=[("Last-Modified", lm), ("Date", date)], body=b"h")
    edge.client.get("/h")
    edge.clock.advance(50)
    assert "hit" in status_of(edge.client.get("/h"))  # 10% of 1000 s
    edge.clock.advance(60)
    edge.client.get("/h")
    assert edge.script.calls["GET /h"] == 2


def test_coalescing_sends_one_request(edge: Edge) -> None:
    gate = threading.Event()
    edge.script.route("/cold", headers=[("Cache-Control", "max-age=60")], body=b"shared", gate=gate)
    key = edge.url + "/cold"
    n = 8

    def fetch() -> httpx.Response:
        with httpx.Client(base_url=edge.url, timeout=20) as c:
            return c.get("/cold")

    with ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(fetch) for _ in range(n)]
        deadline = time.monotonic() + 10
        while edge.cache.coalescer.waiting(key) < n - 1:
            assert time.monotonic() < deadline, "requests did not coalesce"
            time.sleep(0.005)
        gate.set()
        responses = [f.result() for f in futures]
    assert [r.text for r in responses] == ["shared"] * n
    assert edge.script.calls["GET /cold"] == 1


def test_uncacheable_coalesced_requests_go_on_alone(edge: Edge) -> None:
    gate = threading.Event()
    edge.script.route("/nocache", headers=[("Cache-Control", "no-store")], body=b"each", gate=gate)
    key = edge.url + "/nocache"

    def fetch() -> httpx.Response:
        with httpx.Client(base_url=edge.url, timeout=20) as c:
            return c.get("/nocache")

    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(fetch) for _ in range(3)]
        deadline = time.monotonic() + 10
        while edge.cache.coalescer.waiting(key) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        gate.set()
        assert [f.result().text for f in futures] == ["each"] * 3
    assert edge.script.calls["GET /nocache"] == 3


def test_only_if_cached_gives_504(edge: Edge) -> None:
    resp = edge.client.get("/nothing", headers={"Cache-Control": "only-if-cached"})
    assert resp.status_code == 504
    assert edge.script.calls["GET /nothing"] == 0


def test_head_is_answered_from_stored_get(edge: Edge) -> None:
    edge.script.route("/doc", headers=[("Cache-Control", "max-age=60")], body=b"document")
    edge.client.get("/doc")
    head = edge.client.head("/doc")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == "8" and "hit" in status_of(head)
    assert edge.script.calls["HEAD /doc"] == 0
