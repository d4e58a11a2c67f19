"""examples/hello.py's pages cached the way they mean, through the edgecache.testing
pytest plugin: the README's "Testing your app's caching", run in CI."""

import pytest

from edgecache.testing import Edge, assert_cached, assert_not_cached
from examples.hello import app


@pytest.fixture
def edge_app():  # type: ignore[no-untyped-def]
    return app  # any WSGI or ASGI app: Flask, Django, Starlette, FastAPI


def test_home_is_shared_for_ten_seconds(edge: Edge) -> None:
    first = edge.get("/")
    assert_cached(first, ttl=10, vary=set())
    again = edge.get("/")
    assert again.cache_status.hit
    assert again.body == first.body
    edge.advance(11)  # no sleeping: the edge's clock is a fake one
    assert edge.get("/").cache_status.fwd == "stale"


def test_private_page_is_never_shared(edge: Edge) -> None:
    assert_not_cached(edge.get("/private"), reason="private")
