"""The admin status page and purge by path, through a real ``edgecache proxy``."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edgecache.core.exchange import Outcome
from edgecache.proxy.traffic import Traffic
from tests.proxy.conftest import Proxy, start_proxy
from tests.proxy.origin import Origin

TOKEN = "status-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def admin_proxy(origin: Origin, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    with start_proxy(
        tmp_path_factory.mktemp("status"), "--upstream", origin.url, "--admin-token", TOKEN
    ) as p:
        yield p


def status_json(proxy: Proxy) -> dict[str, Any]:
    resp = httpx.get(proxy.url + "/_edgecache/status.json", headers=BEARER)
    assert resp.status_code == 200, resp.text
    assert resp.headers["cache-control"] == "no-store"
    data: dict[str, Any] = resp.json()
    return data


def test_status_counts_outcomes_and_urls(admin_proxy: Proxy) -> None:
    before = status_json(admin_proxy)["requests"]
    for _ in range(5):
        assert httpx.get(admin_proxy.url + "/cc/status-counted").status_code == 200
    httpx.get(admin_proxy.url + "/echo")  # not stored: a pass
    data = status_json(admin_proxy)
    assert data["requests"]["miss"] - before["miss"] == 1
    assert data["requests"]["hit"] - before["hit"] == 4
    assert data["requests"]["pass"] - before["pass"] >= 1
    assert ["/cc/status-counted", 4] in data["top_hits"]
    assert ["/cc/status-counted", 1] in data["top_misses"]
    assert 0 < data["hit_ratio"] < 1
    assert data["store"]["kind"] == "memory" and data["store"]["entries"] >= 1
    assert 0 < data["store"]["bytes"] < data["store"]["max_bytes"]
    [pool] = data["pools"]
    assert pool["members"][0]["up"] and pool["members"][0]["state"] == "up"
    # The ring closes each second: the requests show in the series once it has.
    deadline = time.monotonic() + 3
    while sum(status_json(admin_proxy)["series"]["requests"]) < 6:
        assert time.monotonic() < deadline, "the per-second series never counted"
        time.sleep(0.2)


def test_status_page_renders_for_a_browser(admin_proxy: Proxy) -> None:
    # No credentials: both challenges, so a browser offers its login prompt.
    refused = httpx.get(admin_proxy.url + "/_edgecache/")
    assert refused.status_code == 401
    assert any(v.startswith("Basic") for v in refused.headers.get_list("www-authenticate"))
    assert httpx.get(admin_proxy.url + "/_edgecache/", auth=("x", "wrong")).status_code == 401
    resp = httpx.get(admin_proxy.url + "/_edgecache/", auth=("anyone", TOKEN))
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    page = resp.text
    for part in ("hit ratio", "Requests by outcome", "Top URLs by hits", "<svg", "<polyline"):
        assert part in page
    assert page.count("<script") <= 1
    as_json = httpx.get(admin_proxy.url + "/_edgecache/?format=json", headers=BEARER)
    assert as_json.json()["pid"] > 0


def test_purge_by_path_on_the_request_host(admin_proxy: Proxy) -> None:
    url = admin_proxy.url + "/cc/purge-me"
    httpx.get(url)
    assert "hit" in httpx.get(url).headers["cache-status"]
    purge = httpx.post(admin_proxy.url + "/_edgecache/purge?url=/cc/purge-me", headers=BEARER)
    assert purge.status_code == 200
    answer = purge.json()
    assert answer["purged"] == 1
    assert answer["host"] == f"127.0.0.1:{admin_proxy.port}"
    assert f"http://127.0.0.1:{admin_proxy.port}/cc/purge-me" in answer["keys"]["url"]
    assert "fwd=uri-miss" in httpx.get(url).headers["cache-status"]
    # Nothing left to purge says 0; a prefix that is a path works the same way.
    again = httpx.post(admin_proxy.url + "/_edgecache/purge?url=/cc/purge-me", headers=BEARER)
    assert again.json()["purged"] == 1  # the refetch above was stored again
    httpx.get(admin_proxy.url + "/cc/prefix-a")
    httpx.get(admin_proxy.url + "/cc/prefix-b")
    by_prefix = httpx.request(
        "PURGE", admin_proxy.url + "/_edgecache/purge?prefix=/cc/prefix-", headers=BEARER
    )
    assert by_prefix.json()["purged"] == 2
    other_host = httpx.post(
        admin_proxy.url + "/_edgecache/purge?url=//elsewhere.example/cc/prefix-a", headers=BEARER
    )
    assert other_host.json()["purged"] == 0


def test_purge_form_needs_its_token(admin_proxy: Proxy) -> None:
    url = admin_proxy.url + "/cc/form-purge"
    httpx.get(url)
    page = httpx.get(admin_proxy.url + "/_edgecache/", auth=("", TOKEN)).text
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert match
    form = {"by": "url", "value": "/cc/form-purge"}
    # A logged-in browser sent there by another site's form has no csrf: refused.
    forged = httpx.post(admin_proxy.url + "/_edgecache/purge", data=form, auth=("", TOKEN))
    assert forged.status_code == 403
    assert "hit" in httpx.get(url).headers["cache-status"]
    done = httpx.post(
        admin_proxy.url + "/_edgecache/purge",
        data={**form, "csrf": match.group(1)},
        auth=("", TOKEN),
    )
    assert done.status_code == 303
    back = httpx.get(
        admin_proxy.url + "/_edgecache/" + done.headers["location"][2:], auth=("", TOKEN)
    )
    assert "purged 1 entries" in back.text
    assert "fwd=uri-miss" in httpx.get(url).headers["cache-status"]


def test_traffic_rows_close_each_second() -> None:
    # No loop and no token: counting is plain dict arithmetic, read back by second.
    now = [1000.2]
    traffic = Traffic(clock=lambda: now[0])
    traffic.count(Outcome.HIT, "/a", 100)  # the cache's outcome, not Cache-Status text
    traffic.count(Outcome.MISS, "/b", 10)
    traffic.count(None, "/_edgecache/", 5)
    assert traffic.current_totals()["hit"] == 1 and not traffic.ring
    now[0] = 1003.5  # two quiet seconds later
    traffic.close_rows()
    assert [second for second, _ in traffic.ring] == [1000, 1001, 1002]
    first = traffic.ring[0][1]
    assert (first["hit"], first["miss"], first["none"], first["bytes"]) == (1, 1, 1, 115)
    assert traffic.hit_urls == {"/a": 1} and traffic.miss_urls == {"/b": 1}
    snap = traffic.snapshot()
    assert snap["totals"]["hit"] == 1 and len(snap["series"]) == 3


def test_status_sums_workers(origin: Origin, tmp_path: Path) -> None:
    with start_proxy(
        tmp_path, "--upstream", origin.url, "--workers", "2", "--admin-token", TOKEN
    ) as p:
        for _ in range(20):
            httpx.get(p.url + "/cached")  # new connections: both workers answer some
        deadline = time.monotonic() + 5
        while True:
            data = status_json(p)
            if data["requests"]["hit"] + data["requests"]["miss"] >= 20:
                break
            assert time.monotonic() < deadline, data["requests"]
            time.sleep(0.2)
        assert data["workers"] == 2
