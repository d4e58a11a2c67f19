"""Purging by URL, prefix and surrogate key; surrogate keys never reach clients."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgecache import EdgeCache, purge
from tests.drive import KINDS, Spec


@pytest.fixture(params=["asgi-memory", "wsgi-memory", "asgi-disk", "wsgi-redis"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, str]]:
    kind, store = request.param.split("-")
    if store == "redis":
        store = request.getfixturevalue("redis_url")
    options = {
        "store": store,
        "store_path": str(tmp_path / "disk"),
        "redis_prefix": f"purge-{tmp_path.name}",
    }
    return kind, options


def test_surrogate_keys_are_stripped_and_purgeable(setup: tuple[str, dict[str, str]]) -> None:
    kind, options = setup
    make_app, call = KINDS[kind]
    spec = Spec(
        headers=[
            ("Cache-Control", "max-age=600"),
            ("Surrogate-Key", "product-7 list"),
            ("Cache-Tag", "shop, sale"),
        ]
    )
    app = EdgeCache(make_app(spec), compress=False, **options)
    for path in ("/p/7", "/p/8", "/other"):
        reply = call(app, path=path)
        assert reply.headers.get(b"surrogate-key") is None
        assert reply.headers.get(b"cache-tag") is None
    hit = call(app, path="/p/7")
    assert b"hit" in hit.headers.get(b"cache-status") and hit.headers.get(b"cache-tag") is None
    assert spec.calls == 3
    assert purge(app, tag="sale") == 3
    call(app, path="/p/7")
    assert spec.calls == 4


def test_purge_by_url_and_prefix(setup: tuple[str, dict[str, str]]) -> None:
    kind, options = setup
    make_app, call = KINDS[kind]
    spec = Spec(headers=[("Cache-Control", "max-age=600")])
    app = EdgeCache(make_app(spec), compress=False, **options)
    for path in ("/blog/1", "/blog/2", "/about"):
        call(app, path=path)
    assert purge(app, url="http://test/about") == 1
    assert purge(app, prefix="http://test/blog/") == 2
    for path in ("/blog/1", "/about"):
        assert b"fwd=uri-miss" in call(app, path=path).headers.get(b"cache-status")
