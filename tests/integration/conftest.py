from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from edgecache import EdgeCache
from tests.integration.origins import Script, flask_app, starlette_app
from tests.integration.servers import asgi_server, wsgi_server


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Edge:
    kind: str
    url: str
    script: Script
    middleware: Any
    clock: FakeClock
    client: httpx.Client

    @property
    def cache(self) -> Any:
        """The CacheMiddleware layer inside the chain EdgeCache built."""
        layer = self.middleware
        while not hasattr(layer, "coalescer"):
            layer = layer.app
        return layer


@pytest.fixture(params=["wsgi-flask-werkzeug", "asgi-starlette-uvicorn"])
def edge(request: pytest.FixtureRequest) -> Iterator[Edge]:
    script = Script()
    clock = FakeClock()
    kind = request.param
    options = getattr(request, "param_options", {})
    if kind.startswith("wsgi"):
        middleware = EdgeCache(flask_app(script), clock=clock, **options)
        server = wsgi_server(middleware)
    else:
        middleware = EdgeCache(starlette_app(script), clock=clock, **options)
        server = asgi_server(middleware)
    with server as url, httpx.Client(base_url=url, timeout=10) as client:
        yield Edge(kind, url, script, middleware, clock, client)
