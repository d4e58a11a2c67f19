"""Test your app's caching in your own test suite: the ``edgecache.testing`` pytest
plugin (registered by installing edgecache).

Define a fixture ``edge_app`` returning your WSGI or ASGI app (Flask, Django,
Starlette, FastAPI...), and optionally ``edge_settings`` returning a dict of settings;
then the ``edge`` fixture is your app in edgecache's real chain (``EdgeCache``: auth,
compression, cache) on a fake clock::

    def test_home_is_shared_for_a_minute(edge):
        first = edge.get("/", headers={"Accept-Language": "en"})
        assert_cached(first, ttl=60, vary={"accept-language"})
        edge.advance(61)
        assert edge.get("/").cache_status.fwd == "stale"

``edge.get`` answers an ``EdgeResponse`` with the parsed ``cache_status`` and the
cache's ``explanation`` of the URL right after the request (``core.explain``).
Requests run in process, one at a time; background refreshes (stale-while-revalidate)
have finished when ``edge.get`` returns. Time moves only with ``edge.advance``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from edgecache.core.explain import Explanation, explain
from edgecache.core.headers import Headers
from edgecache.core.model import RequestHead
from edgecache.stack import EdgeCache, cache_layers, detect_interface
from edgecache.testing.assertions import (
    CacheStatus,
    EdgeResponse,
    assert_cached,
    assert_not_cached,
    parse_cache_status,
)
from edgecache.testing.driver import Lifespan, Pairs, call_asgi, call_wsgi

__all__ = [
    "CacheStatus",
    "Edge",
    "EdgeResponse",
    "FakeClock",
    "assert_cached",
    "assert_not_cached",
]

START = 1_800_000_000.0
"""The fake clock's first reading: a fixed instant (2027-01-15), so runs repeat."""


class FakeClock:
    """The clock the chain reads (its ``clock=`` seam); moves only when told."""

    def __init__(self, start: float = START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"advance({seconds!r}): time does not go back")
        self.now += seconds


class Edge:
    """``app`` in edgecache's chain with a fake clock; ``settings`` as for EdgeCache."""

    def __init__(self, app: Any, *, host: str = "testserver", **settings: Any) -> None:
        self.clock = FakeClock()
        self.host = host
        self.interface = detect_interface(app)
        self.app = EdgeCache(app, clock=self.clock, **settings)
        layers = cache_layers(self.app)
        self._cache = layers[0] if layers else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lifespan: Lifespan | None = None

    def __enter__(self) -> Edge:
        if self.interface == "asgi":
            self._lifespan = Lifespan(self.app)
            self._run(self._lifespan.startup())
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._loop is not None:
            if self._lifespan is not None:
                self._run(self._lifespan.shutdown())
            self._settle()
            self._loop.close()
            self._loop = None
        if self._cache is not None:
            self._cache.engine.close()

    def advance(self, seconds: float) -> None:
        """Move the edge's clock on: expiry, stale-while-revalidate, without sleeping."""
        self.clock.advance(seconds)

    def get(self, path: str, headers: dict[str, str] | Pairs | None = None) -> EdgeResponse:
        return self.request("GET", path, headers)

    def head(self, path: str, headers: dict[str, str] | Pairs | None = None) -> EdgeResponse:
        return self.request("HEAD", path, headers)

    def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | Pairs | None = None,
        body: bytes = b"",
    ) -> EdgeResponse:
        pairs = _pairs(headers)
        if self.interface == "asgi":
            raw = self._run(call_asgi(self.app, method, path, pairs, body, self.host))
        else:
            raw = call_wsgi(self.app, method, path, pairs, body, self.host)
        self._settle(path)
        name = self._cache.settings.cache_name if self._cache is not None else "edgecache"
        status_field = ", ".join(v for n, v in raw.headers if n.lower() == "cache-status")
        return EdgeResponse(
            method=method,
            path=path,
            status=raw.status,
            headers=raw.headers,
            body=raw.body,
            cache_status=parse_cache_status(status_field, name),
            explanation=self.explain(path, headers, method=method),
        )

    def explain(
        self,
        path: str,
        headers: dict[str, str] | Pairs | None = None,
        method: str = "GET",
    ) -> Explanation:
        """The cache's view of ``path`` for a request with ``headers``, now."""
        if self._cache is None:
            raise RuntimeError("the cache is off (setting cache=False): nothing to explain")
        request = self._head(method, path, _pairs(headers))
        engine = self._cache.engine
        key = request.primary_key
        variants = engine.store.get(key) or ()
        return explain(request, variants, self.clock(), engine.options, engine.not_stored.get(key))

    def _head(self, method: str, path: str, pairs: Pairs) -> RequestHead:
        fields = [(b"host", self.host.encode("latin-1"))] + [
            (n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in pairs
        ]
        return RequestHead(method, "http", self.host.lower(), path, Headers(fields))

    def _run(self, step: Any) -> Any:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(step)

    def _settle(self, path: str | None = None) -> None:
        """Let background refreshes the last request started finish."""
        loop = self._loop
        if loop is not None:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            if self._lifespan is not None and self._lifespan.task in pending:
                pending.remove(self._lifespan.task)
            if pending:
                loop.run_until_complete(asyncio.wait(pending, timeout=10))
        coalescer = getattr(self._cache, "coalescer", None)
        if path is not None and self.interface == "wsgi" and coalescer is not None:
            # The WSGI cache refreshes on its own worker threads; the URL is in flight
            # until the refresh has stored its answer.
            key = self._head("GET", path, []).primary_key
            deadline = time.monotonic() + 10
            while coalescer.in_flight(key) and time.monotonic() < deadline:
                time.sleep(0.001)


def _pairs(headers: dict[str, str] | Pairs | None) -> Pairs:
    if headers is None:
        return []
    return list(headers.items()) if isinstance(headers, dict) else list(headers)


@pytest.fixture
def edge_settings() -> dict[str, Any]:
    """Settings for the ``edge`` fixture, as EdgeCache's keywords: override it."""
    return {}


@pytest.fixture
def edge(request: pytest.FixtureRequest, edge_settings: dict[str, Any]) -> Iterator[Edge]:
    """Your ``edge_app`` fixture's app in edgecache's chain, on a fake clock."""
    try:
        app = request.getfixturevalue("edge_app")
    except pytest.FixtureLookupError:
        pytest.fail(
            "the edge fixture wraps your app: define a fixture named edge_app that returns "
            "your WSGI or ASGI app",
            pytrace=False,
        )
    with Edge(app, **edge_settings) as running:
        yield running
