"""``/_edgecache/explain`` and ``edgecache explain`` against a real ``edgecache proxy``
process and a real origin: each reason an answer is not stored, where a lifetime came
from, what the next request gets, and the JSON shape the README documents."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.proxy.conftest import ROOT, Proxy, start_proxy
from tests.proxy.origin import Origin

TOKEN = "explain-token"
LIMIT = 200_000  # --max-entry-bytes: above /die's 100000-byte promise
LAST_MODIFIED = "Sun, 01 Nov 2026 00:00:00 GMT"


@pytest.fixture(scope="module")
def proxy(origin: Origin, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    with start_proxy(
        tmp_path_factory.mktemp("explain"),
        "--upstream",
        origin.url,
        "--admin-token",
        TOKEN,
        "--max-entry-bytes",
        str(LIMIT),
    ) as p:
        yield p


def answer_path(name: str, **headers: str) -> str:
    """An origin answer with these response headers (``size`` sets the body's)."""
    fields = {k.replace("_", "-"): v for k, v in headers.items()}
    return f"/answer/{name}?{urlencode(fields)}"


def explain(proxy: Proxy, path: str, *headers: str, method: str = "GET") -> dict[str, Any]:
    params = [("url", proxy.url + path), *(("header", h) for h in headers)]
    if method != "GET":
        params.append(("method", method))
    r = httpx.get(
        proxy.url + "/_edgecache/explain",
        params=params,
        headers={"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    return dict(r.json())


NOT_STORED = [
    pytest.param(
        answer_path("cookie", Cache_Control="max-age=60", Set_Cookie="s=1"),
        {},
        "set-cookie",
        "the answer sets a cookie (cache_set_cookie is off)",
        id="set-cookie-without-opt-in",
    ),
    pytest.param(
        answer_path("private", Cache_Control="private, max-age=60"),
        {},
        "private",
        "private",
        id="9111-5.2.2.7-private",
    ),
    pytest.param(
        answer_path("nostore", Cache_Control="no-store"),
        {},
        "no-store",
        "no-store",
        id="9111-5.2.2.5-no-store",
    ),
    pytest.param(
        answer_path("auth", Cache_Control="max-age=60"),
        {"Authorization": "Basic dTpw"},
        "authorization",
        "Authorization",
        id="9111-3.5-authorization-without-public",
    ),
    pytest.param(
        answer_path("varystar", Cache_Control="max-age=60", Vary="*"),
        {},
        "vary-star",
        "Vary: *",
        id="9111-4.1-vary-star",
    ),
    pytest.param(
        answer_path("big", Cache_Control="max-age=60", size=str(LIMIT * 2)),
        {},
        "too-large",
        f"max_entry_bytes ({LIMIT} bytes)",
        id="too-large",
    ),
    pytest.param("/die", {}, "incomplete", "truncated", id="9111-3.3-truncated"),
]


@pytest.mark.parametrize(("path", "headers", "reason", "words"), NOT_STORED)
def test_each_reason_an_answer_is_not_stored(
    proxy: Proxy, path: str, headers: dict[str, str], reason: str, words: str
) -> None:
    # /die: the edge closes the client's connection mid-body, as it must.
    with contextlib.suppress(httpx.HTTPError):
        httpx.get(proxy.url + path, headers=headers)
    lines = [f"{k}: {v}" for k, v in headers.items()]
    got = explain(proxy, path, *lines)
    assert got["stored"] is False
    assert got["variants"] == []
    assert got["not_stored"]["reason"] == reason
    assert words in got["not_stored"]["why"]
    assert got["not_stored"]["method"] == "GET"
    assert got["next"]["action"] == "forward"
    assert got["next"]["rule"] == "RFC 9111 §4"


def test_unsafe_method_is_not_stored_and_invalidates(proxy: Proxy) -> None:
    path = answer_path("posted", Cache_Control="max-age=60")
    httpx.get(proxy.url + path)
    assert explain(proxy, path)["stored"] is True
    httpx.post(proxy.url + path, content=b"form")
    got = explain(proxy, path)
    assert got["stored"] is False  # RFC 9111 §4.4: a POST's success invalidates the URL
    assert got["not_stored"]["reason"] == "method"
    assert got["not_stored"]["method"] == "POST"
    assert "§4.4" in got["not_stored"]["rule"]


LIFETIMES = [
    pytest.param({"Cache_Control": "max-age=60, s-maxage=90"}, "s-maxage", 90, id="s-maxage"),
    pytest.param({"Cache_Control": "max-age=60"}, "max-age", 60, id="max-age"),
    pytest.param(
        {"Date": "Sun, 01 Nov 2026 00:00:00 GMT", "Expires": "Sun, 01 Nov 2026 00:02:00 GMT"},
        "expires",
        120,
        id="expires",
    ),
    pytest.param({"Last_Modified": LAST_MODIFIED}, "heuristic", None, id="heuristic-10pc"),
    pytest.param(
        {"Cache_Control": "max-age=5", "CDN_Cache_Control": "max-age=300"},
        "max-age",
        300,
        id="9213-cdn-cache-control",
    ),
]


@pytest.mark.parametrize(("headers", "source", "lifetime"), LIFETIMES)
def test_where_the_lifetime_came_from(
    proxy: Proxy,
    request: pytest.FixtureRequest,
    headers: dict[str, str],
    source: str,
    lifetime: int | None,
) -> None:
    path = answer_path(request.node.callspec.id, **headers)
    assert httpx.get(proxy.url + path).status_code == 200
    got = explain(proxy, path)
    assert got["stored"] is True, got
    (variant,) = got["variants"]
    assert variant["lifetime_source"] == source
    if lifetime is not None:
        assert variant["freshness_lifetime"] == lifetime
    else:  # 10% of the time from Last-Modified to the answer's Date, within a day's cap
        assert 0 < variant["freshness_lifetime"] <= 86400
        assert "10% of the" in variant["lifetime_why"]
    if "CDN_Cache_Control" in headers:
        assert variant["directives_from"] == "cdn-cache-control"


def test_variants_and_what_the_next_request_gets(proxy: Proxy) -> None:
    path = answer_path("lang", Cache_Control="max-age=60", Vary="Accept-Language")
    httpx.get(proxy.url + path, headers={"Accept-Language": "en"})
    httpx.get(proxy.url + path, headers={"Accept-Language": "fr"})
    en = explain(proxy, path, "Accept-Language: en")
    assert sorted(v["vary"]["accept-language"] for v in en["variants"]) == ["en", "fr"]
    chosen = [v for v in en["variants"] if v["selected"]]
    assert [v["vary"] for v in chosen] == [{"accept-language": "en"}]
    assert en["next"]["action"] == "hit"
    assert en["next"]["rule"] == "RFC 9111 §4.2"
    assert en["next"]["cache_status"].startswith("edgecache; hit; ttl=")
    de = explain(proxy, path, "Accept-Language: de")
    assert de["next"]["action"] == "forward"
    assert de["next"]["rule"] == "RFC 9111 §4.1"


def test_stale_entries_are_revalidated_or_served_while_revalidating(proxy: Proxy) -> None:
    stale = answer_path("stale", Cache_Control="max-age=0", ETag='"v1"')
    httpx.get(proxy.url + stale)
    got = explain(proxy, stale)
    assert got["next"]["action"] == "revalidate"
    assert got["next"]["rule"] == "RFC 9111 §4.3.1"
    swr = answer_path("swr", Cache_Control="max-age=0, stale-while-revalidate=600")
    httpx.get(proxy.url + swr)
    got = explain(proxy, swr)
    assert got["next"]["action"] == "stale-while-revalidate"
    assert got["next"]["rule"] == "RFC 5861 §3"
    must = answer_path("must", Cache_Control="s-maxage=0, stale-while-revalidate=600")
    httpx.get(proxy.url + must)
    assert "§5.2.2.2" in explain(proxy, must)["next"]["rule"]


def test_the_json_shape(proxy: Proxy) -> None:
    path = answer_path("shape", Cache_Control="max-age=60", ETag='"s"')
    httpx.get(proxy.url + path)
    got = explain(proxy, path)
    assert set(got) == {
        "url", "method", "request_headers", "stored", "variants", "next", "not_stored",
    }  # fmt: skip
    assert got["url"] == proxy.url + path
    assert got["not_stored"] is None
    assert set(got["next"]) == {"action", "cache_status", "rule", "why"}
    assert set(got["variants"][0]) == {
        "vary", "selected", "status", "size", "age", "freshness_lifetime", "lifetime_source",
        "directives_from", "lifetime_why", "ttl", "fresh", "stale_while_revalidate",
        "stale_if_error", "must_revalidate", "no_cache", "etag", "last_modified",
    }  # fmt: skip
    assert got["variants"][0]["etag"] == '"s"'


def test_text_answer_and_the_admin_token(proxy: Proxy) -> None:
    path = answer_path("text", Cache_Control="max-age=60")
    httpx.get(proxy.url + path)
    url = proxy.url + "/_edgecache/explain"
    assert httpx.get(url, params={"url": path}).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    text = httpx.get(url, params={"url": path}, headers=auth)  # a path: this Host's URL
    assert text.headers["content-type"].startswith("text/plain")
    assert "stored: yes, 1 variant(s)" in text.text
    assert "max-age in cache-control: 60 s (RFC 9111 §5.2.2.1)" in text.text
    as_json = httpx.get(url, params={"url": path, "format": "json"}, headers=auth)
    assert as_json.json()["stored"] is True
    assert httpx.get(url, headers=auth).status_code == 400
    bad = httpx.get(url, params={"url": path, "header": "no colon"}, headers=auth)
    assert bad.status_code == 400


def run_cli(*args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGECACHE_")}
    if token is not None:
        env["EDGECACHE_ADMIN_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "edgecache", "explain", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_command_asks_the_running_edge(proxy: Proxy) -> None:
    path = answer_path("cli", Cache_Control="max-age=60, private")
    httpx.get(proxy.url + path, headers={"Accept-Language": "en"})
    done = run_cli(proxy.url + path, "-H", "Accept-Language: en")
    assert done.returncode == 0, done.stderr
    assert "last answer not stored (GET" in done.stdout
    assert "the answer is private" in done.stdout
    as_json = run_cli(proxy.url + path, "--json")
    assert '"reason": "private"' in as_json.stdout
    refused = run_cli(proxy.url + path, token="wrong")
    assert refused.returncode == 1
    assert "the edge answered 401" in refused.stderr
    assert run_cli(proxy.url + path, token=None).returncode == 2
