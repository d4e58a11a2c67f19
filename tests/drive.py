"""Drive WSGI and ASGI apps in process with the same calls, for adapter tests that need
no socket. Scenario apps are built from one description for both interfaces."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from edgecache.core.headers import Headers


@dataclass
class Reply:
    status: int
    headers: Headers
    body: bytes
    chunks: list[bytes] = field(default_factory=list)


@dataclass
class Spec:
    """What the scenario app answers."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=lambda: [b"hello"])
    calls: int = 0


def asgi_app(spec: Spec) -> Callable[..., Any]:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        spec.calls += 1
        await send(
            {
                "type": "http.response.start",
                "status": spec.status,
                "headers": [(n.lower().encode(), v.encode()) for n, v in spec.headers],
            }
        )
        for i, chunk in enumerate(spec.chunks):
            await send(
                {"type": "http.response.body", "body": chunk, "more_body": i < len(spec.chunks) - 1}
            )
        if not spec.chunks:
            await send({"type": "http.response.body", "body": b""})

    return app


def wsgi_app(spec: Spec) -> Callable[..., Any]:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        spec.calls += 1
        start_response(f"{spec.status} X", list(spec.headers))
        if len(spec.chunks) == 1:
            return list(spec.chunks)

        def gen() -> Iterator[bytes]:
            yield from spec.chunks

        return gen()

    return app


def call_asgi(
    app: Any, method: str = "GET", path: str = "/", headers: dict[str, str] | None = None
) -> Reply:
    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    given = [(n.lower().encode(), v.encode()) for n, v in (headers or {}).items()]
    has_host = any(n == b"host" for n, _ in given)
    raw_headers = given if has_host else [(b"host", b"test"), *given]
    path_only, _, query = path.partition("?")
    scope = {
        "type": "http",
        "method": method,
        "path": path_only,
        "raw_path": path_only.encode(),
        "query_string": query.encode(),
        "scheme": "http",
        "headers": raw_headers,
    }
    asyncio.run(app(scope, receive, send))
    start = messages[0]
    chunks = [m.get("body", b"") for m in messages[1:] if m["type"] == "http.response.body"]
    return Reply(start["status"], Headers.from_raw(start["headers"]), b"".join(chunks), chunks)


def call_wsgi(
    app: Any, method: str = "GET", path: str = "/", headers: dict[str, str] | None = None
) -> Reply:
    path_only, _, query = path.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path_only,
        "QUERY_STRING": query,
        "SERVER_NAME": "test",
        "SERVER_PORT": "80",
        "HTTP_HOST": "test",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
    }
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, hdrs: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.append((status, hdrs))
        return lambda data: None

    result = app(environ, start_response)
    chunks = list(result)
    close = getattr(result, "close", None)
    if close:
        close()
    status, hdrs = started[-1]
    return Reply(int(status[:3]), Headers.from_str_pairs(hdrs), b"".join(chunks), chunks)


KINDS = {"asgi": (asgi_app, call_asgi), "wsgi": (wsgi_app, call_wsgi)}
