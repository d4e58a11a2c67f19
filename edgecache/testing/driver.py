"""Calling a WSGI or an ASGI app in process, as a server would (PEP 3333, ASGI 3 http
and lifespan), for the pytest plugin. No socket, no thread of our own: the ASGI app
runs on one event loop the caller keeps, so background work it starts (the cache's
stale-while-revalidate refresh) can be waited for."""

from __future__ import annotations

import asyncio
import io
import sys
from typing import Any, NamedTuple
from urllib.parse import unquote

Pairs = list[tuple[str, str]]


class Raw(NamedTuple):
    status: int
    headers: Pairs
    body: bytes


def _split(target: str) -> tuple[str, str]:
    path, _, query = target.partition("?")
    return path or "/", query


def call_wsgi(app: Any, method: str, target: str, headers: Pairs, body: bytes, host: str) -> Raw:
    path, query = _split(target)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        # PEP 3333: PATH_INFO is decoded, as latin-1 characters.
        "PATH_INFO": unquote(path, encoding="latin-1"),
        "QUERY_STRING": query,
        "SERVER_NAME": host.partition(":")[0],
        "SERVER_PORT": host.partition(":")[2] or "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in [("Host", host), *headers]:
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        environ[key] = f"{environ[key]},{value}" if key in environ and name != "Host" else value
    if body and "CONTENT_LENGTH" not in environ:
        environ["CONTENT_LENGTH"] = str(len(body))
    started: list[tuple[str, Pairs]] = []

    def start_response(status: str, pairs: Pairs, exc_info: Any = None) -> Any:
        started.append((status, pairs))
        return lambda data: None

    result = app(environ, start_response)
    try:
        out = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    status, pairs = started[-1]
    return Raw(int(status.split(" ", 1)[0]), list(pairs), out)


async def call_asgi(
    app: Any, method: str, target: str, headers: Pairs, body: bytes, host: str
) -> Raw:
    path, query = _split(target)
    raw_headers = [(b"host", host.encode("latin-1"))] + [
        (n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(path),
        "raw_path": path.encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "root_path": "",
        "headers": raw_headers,
        "server": (host.partition(":")[0], int(host.partition(":")[2] or 80)),
        "client": ("127.0.0.1", 50000),
    }
    done = asyncio.Event()
    sent_body = False

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()  # the client stays until its answer is complete
        return {"type": "http.disconnect"}

    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                done.set()

    try:
        await app(scope, receive, send)
    finally:
        done.set()
    pairs = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in start.get("headers", [])]
    return Raw(int(start["status"]), pairs, b"".join(chunks))


class Lifespan:
    """ASGI lifespan startup and shutdown, as uvicorn's ``auto``: an app that does not
    speak it (raises, or never answers) is served without it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
        try:
            await self.app(scope, self._inbox.get, self._outbox.put)
        except Exception:
            await self._outbox.put({"type": "lifespan.unsupported"})

    async def _step(self, kind: str) -> None:
        await self._inbox.put({"type": f"lifespan.{kind}"})
        try:
            answer = await asyncio.wait_for(self._outbox.get(), 10)
        except TimeoutError:
            return
        if answer["type"] == f"lifespan.{kind}.failed":
            raise RuntimeError(f"the app's lifespan {kind} failed: {answer.get('message', '')}")

    async def startup(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())
        await self._step("startup")

    async def shutdown(self) -> None:
        if self.task is not None and not self.task.done():
            await self._step("shutdown")
