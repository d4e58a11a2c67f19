"""Origin apps for the integration tests: a Flask app (WSGI) and a Starlette app (ASGI)
answering from one shared, scriptable table, and counting how often they are called."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Route:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b"hello"
    raises: bool = False
    gate: threading.Event | None = None
    """When set, the app waits for it before answering (a slow endpoint)."""
    echo_header: str | None = None
    """Answer with the value of this request header as the body."""


class Script:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.calls: Counter[str] = Counter()
        self.seen_headers: dict[str, dict[str, str]] = {}

    def route(self, path: str, **kwargs: object) -> Route:
        self.routes[path] = Route(**kwargs)  # type: ignore[arg-type]
        return self.routes[path]

    def handle(self, method: str, path: str, headers: dict[str, str]) -> Route:
        self.calls[f"{method} {path}"] += 1
        self.seen_headers[path] = headers
        return self.routes.get(path, Route(404, [], b"not found"))


def flask_app(script: Script):  # type: ignore[no-untyped-def]
    from flask import Flask, Response, request

    app = Flask("origin")
    app.config["PROPAGATE_EXCEPTIONS"] = True  # let the middleware see the exception

    @app.route("/", defaults={"path": ""}, methods=["GET", "HEAD", "POST", "PUT", "DELETE"])
    @app.route("/<path:path>", methods=["GET", "HEAD", "POST", "PUT", "DELETE"])
    def any_path(path: str) -> Response:
        route = script.handle(
            request.method, "/" + path, {k.lower(): v for k, v in request.headers.items()}
        )
        if route.gate is not None:
            route.gate.wait(10)
        if route.raises:
            raise RuntimeError("origin failure")
        body = route.body
        if route.echo_header:
            body = request.headers.get(route.echo_header, "").encode()
        resp = Response(body, status=route.status)
        for name, value in route.headers:
            resp.headers.add(name, value)
        return resp

    return app


def starlette_app(script: Script):  # type: ignore[no-untyped-def]
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route as StarletteRoute

    async def any_path(request: Request) -> Response:
        route = script.handle(
            request.method, request.url.path, {k.lower(): v for k, v in request.headers.items()}
        )
        if route.gate is not None:
            while not route.gate.is_set():
                await asyncio.sleep(0.005)
        if route.raises:
            raise RuntimeError("origin failure")
        body = route.body
        if route.echo_header:
            body = request.headers.get(route.echo_header, "").encode()
        resp = Response(body, status_code=route.status)
        for name, value in route.headers:
            resp.headers.append(name, value)
        return resp

    methods = ["GET", "HEAD", "POST", "PUT", "DELETE"]
    return Starlette(routes=[StarletteRoute("/{path:path}", any_path, methods=methods)])
