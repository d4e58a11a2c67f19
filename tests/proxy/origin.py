"""A real HTTP origin for the proxy tests: aiohttp.web in a thread of the test process,
on a free loopback port. It records what it received and can misbehave on request."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import WSMsgType, web

from tests.integration.servers import free_socket


class Origin:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.cancelled = threading.Event()
        self.failing = False
        self.healthy = True
        self.delay = 0.0
        """Seconds /cc waits before answering (to make the proxy time out)."""
        self.url = ""

    def last(self) -> dict[str, Any]:
        return self.requests[-1]

    def app(self) -> web.Application:
        app = web.Application(client_max_size=2**40)
        app.router.add_get("/ws", self.ws_echo)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def ws_echo(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("chat",))
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await ws.send_str("echo:" + message.data)
            elif message.type == WSMsgType.BINARY:
                await ws.send_bytes(message.data[::-1])
        return ws

    async def handle(self, request: web.Request) -> web.StreamResponse:
        size = 0
        head = b""  # the first bytes of the body, for answers that depend on it
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if len(head) < 1024:
                head += chunk[: 1024 - len(head)]
        record = {
            "method": request.method,
            "path": request.raw_path,
            "headers": [
                (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in request.raw_headers
            ],
            "body_size": size,
        }
        self.requests.append(record)
        path = request.path
        if path.startswith("/tagged/"):
            return web.Response(
                body=b"tagged " + path.encode(),
                headers={
                    "Cache-Control": "max-age=600",
                    "Surrogate-Key": "catalog item-" + path[8:],
                },
            )
        if path.startswith("/answer/"):  # any answer: /answer/x?Cache-Control=max-age=60&Vary=*
            headers = [(k, v) for k, v in request.query.items() if k != "size"]
            size = int(request.query.get("size", "5"))
            return web.Response(body=b"x" * size, headers=headers)
        if path.startswith("/reflect"):  # a body-dependent answer, marked cacheable
            return web.Response(
                body=b"answer to body " + head,
                headers={"Cache-Control": "public, max-age=600"},
            )
        if path.startswith("/cc/"):  # Cache-Control from the query: /cc/x?cc=max-age=1
            await asyncio.sleep(self.delay)
            return web.Response(
                body=f"cc answer {len(self.requests)}".encode(),
                headers={"Cache-Control": request.query.get("cc", "max-age=60")},
            )
        if path.startswith("/session"):  # a public page that starts a session
            return web.Response(
                body=b"welcome",
                headers={
                    "Cache-Control": "public, max-age=30",
                    "Set-Cookie": f"session=s{len(self.requests)}; HttpOnly",
                },
            )
        if path.startswith("/account.php/"):  # PATH_INFO ignored, as PHP sites do
            cookie = request.headers.get("Cookie")
            return web.Response(
                body=b"account page of " + cookie.encode() if cookie else b"please log in",
                content_type="text/html",
                headers={"Last-Modified": "Sun, 01 Nov 2026 00:00:00 GMT"},  # a month old
            )
        if path == "/healthz":
            return web.Response(status=200 if self.healthy else 503, body=b"health")
        if path.endswith("/echo"):
            return web.json_response(record)
        if path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            return web.Response(
                status=code,
                body=b"status body",
                reason="Custom" if code >= 600 or code == 299 else None,
            )
        if path == "/cached":
            return web.Response(
                body=b"cached body " * 50,
                content_type="text/html",
                headers={"Cache-Control": "max-age=60", "ETag": '"c1"'},
            )
        if path == "/multi":
            resp = web.Response(body=b"multi")
            resp.headers.add("Set-Cookie", "a=1")
            resp.headers.add("Set-Cookie", "b=2")
            resp.headers.add("X-Multi", "one")
            resp.headers.add("X-Multi", "two")
            resp.headers["Connection"] = "X-Secret"
            resp.headers["X-Secret"] = "hop"
            resp.headers["Keep-Alive"] = "timeout=5"
            return resp
        if path.endswith("/slow"):  # /slow, /api/slow, ...
            await asyncio.sleep(float(request.query.get("s", "3")))
            return web.Response(body=b"slow")
        if path == "/chunked":
            resp = web.StreamResponse()
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for i in range(5):
                await resp.write(b"chunk %d\n" % i)
            await resp.write_eof()
            return resp
        if path == "/die":  # promises 100000 bytes, sends 1000, then the connection ends
            resp = web.StreamResponse(
                headers={"Content-Length": "100000", "Cache-Control": "max-age=60"}
            )
            await resp.prepare(request)
            await resp.write(b"x" * 1000)
            await asyncio.sleep(0.05)
            assert request.transport is not None
            request.transport.close()
            return resp
        if path == "/forever":  # streams until the client goes away
            resp = web.StreamResponse()
            await resp.prepare(request)
            try:
                while True:
                    await resp.write(b"y" * 65536)
                    await asyncio.sleep(0.01)
            except (ConnectionResetError, asyncio.CancelledError):
                self.cancelled.set()
                raise
        if path == "/big":
            size = int(request.query.get("size", "1000000"))
            resp = web.StreamResponse(
                headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"}
            )
            await resp.prepare(request)
            if request.method == "HEAD":
                return resp
            block = b"z" * 65536
            sent = 0
            while sent < size:
                part = block[: min(len(block), size - sent)]
                await resp.write(part)
                sent += len(part)
            return resp
        if path == "/part":  # honours one Range, as a file server does
            whole = b"0123456789abcdefghij"
            cacheable = {"Cache-Control": "max-age=60", "ETag": '"part1"'}
            spec = request.headers.get("Range", "")
            if spec.startswith("bytes=") and "-" in spec:
                first, last = (int(x) for x in spec[6:].split("-"))
                return web.Response(
                    status=206,
                    body=whole[first : last + 1],
                    headers={**cacheable, "Content-Range": f"bytes {first}-{last}/20"},
                )
            return web.Response(body=whole, headers=cacheable)
        if path == "/range":
            return web.Response(
                status=206, body=b"23456", headers={"Content-Range": "bytes 2-6/10"}
            )
        if path == "/sie":
            if self.failing:
                return web.Response(status=503, body=b"down")
            return web.Response(
                body=b"still good", headers={"Cache-Control": "max-age=0, stale-if-error=600"}
            )
        return web.Response(status=404, body=b"no such route")


@contextmanager
def running_origin() -> Iterator[Origin]:
    origin = Origin()
    loop = asyncio.new_event_loop()
    sock = free_socket()
    origin.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    runner = web.AppRunner(origin.app(), access_log=None, handle_signals=False)

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        site = web.SockSite(runner, sock)
        loop.run_until_complete(site.start())
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield origin
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        sock.close()


def json_body(raw: bytes) -> dict[str, Any]:
    return dict(json.loads(raw))
