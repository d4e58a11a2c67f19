"""A real browser through ``edgecache proxy --self-signed``: the page and its hashed
assets come over HTTP/2, compressed with br, a second visitor gets them from the cache,
and the status page renders its chart (a screenshot is kept in ``.artifacts/``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import ASSETS, AssetOrigin
from tests.proxy.conftest import ROOT, Proxy, start_proxy

TOKEN = "browser-admin-token"
ARTIFACTS = Path(os.environ.get("EDGECACHE_TEST_ARTIFACTS", os.path.join(ROOT, ".artifacts")))


@pytest.fixture(scope="module")
def tls_proxy(
    asset_origin: AssetOrigin, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxy]:
    with start_proxy(
        tmp_path_factory.mktemp("browser"),
        "--upstream",
        asset_origin.url,
        "--self-signed",
        "--admin-token",
        TOKEN,
        scheme="https",
    ) as p:
        yield p


def visit(browser: Any, url: str) -> dict[str, dict[str, str]]:
    """Load ``url`` in a fresh context (an empty browser cache: a new visitor); the
    headers of every response, by path."""
    context = browser.new_context(ignore_https_errors=True)
    try:
        page = context.new_page()
        responses: list[Any] = []
        page.on("response", lambda response: responses.append(response))
        page.goto(url, wait_until="load")
        assert page.evaluate("document.body.dataset.loaded") == "yes"  # the script ran
        color = page.evaluate("getComputedStyle(document.querySelector('h1')).color")
        assert color == "rgb(1, 2, 3)"  # the stylesheet arrived and applies
        # Over HTTP/2 (ALPN h2), the page and every asset, as window.performance saw it.
        protocols = page.evaluate(
            "performance.getEntries().filter(e => e.nextHopProtocol).map(e => e.nextHopProtocol)"
        )
        assert protocols and set(protocols) == {"h2"}, protocols
        return {r.url.split(url.rstrip("/"), 1)[1] or "/": r.all_headers() for r in responses}
    finally:
        context.close()


def test_assets_arrive_with_br_and_are_cached(
    browser: Any, tls_proxy: Proxy, asset_origin: AssetOrigin
) -> None:
    first = visit(browser, tls_proxy.url + "/")
    for path in ["/", *ASSETS]:
        assert first[path]["content-encoding"] == "br", (path, first[path])
    for path in ASSETS:
        assert "stored" in first[path]["cache-status"], first[path]
    # A second visitor: every asset (and the page) answered by the edge's cache.
    second = visit(browser, tls_proxy.url + "/")
    for path in ["/", *ASSETS]:
        assert "; hit" in second[path]["cache-status"], (path, second[path])
        assert second[path]["content-encoding"] == "br"
        assert int(second[path]["age"]) >= 0
    assert all(asset_origin.seen[path] == 1 for path in ASSETS), asset_origin.seen


def test_status_page_renders_its_chart(browser: Any, tls_proxy: Proxy) -> None:
    context = browser.new_context(
        ignore_https_errors=True,
        http_credentials={"username": "ops", "password": TOKEN},
        viewport={"width": 1100, "height": 900},
    )
    try:
        page = context.new_page()
        visit(browser, tls_proxy.url + "/")  # something to count
        answer = page.goto(tls_proxy.url + "/_edgecache/", wait_until="load")
        assert answer is not None and answer.status == 200  # after the Basic challenge
        chart = page.locator("svg#chart")
        assert chart.is_visible()
        box = chart.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 60
        assert page.locator("svg#chart polyline.rps").get_attribute("points")
        assert page.locator("#hit-ratio").inner_text().endswith("%")
        assert page.get_by_role("button", name="Purge").is_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "status-page.png"), full_page=True)
    finally:
        context.close()
