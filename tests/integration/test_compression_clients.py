"""Compression through real servers and real decoding clients (httpx, curl)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from edgecache import EdgeCache
from tests.integration.servers import asgi_server, wsgi_server
from tests.test_compression import _page

PAGE = _page(40_000)


def starlette_site(release: threading.Event) -> Any:
    from starlette.applications import Starlette
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    async def page(request: Any) -> Response:
        return Response(
            PAGE,
            media_type="text/html",
            headers={"Cache-Control": "max-age=600", "ETag": '"page-1"'},
        )

    async def events(request: Any) -> StreamingResponse:
        async def stream() -> Any:
            yield b"data: first\n\n"
            while not release.is_set():  # the app is not finished until the test says so
                await asyncio.sleep(0.005)
            yield b"data: second\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    return Starlette(routes=[Route("/page", page), Route("/events", events)])


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def site(release: threading.Event) -> Iterator[str]:
    with asgi_server(EdgeCache(starlette_site(release))) as url:
        yield url


@pytest.mark.parametrize("coding", ["br", "zstd", "gzip"])
def test_httpx_decodes_each_coding(site: str, coding: str) -> None:
    with httpx.Client(base_url=site, headers={"Accept-Encoding": coding}) as client:
        for _ in range(3):  # miss, first hit (on the fly), later hits (stored copy)
            resp = client.get("/page")
            assert resp.headers["content-encoding"] == coding
            assert resp.content == PAGE
            assert int(resp.headers["content-length"]) < len(PAGE) // 2


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_compressed(site: str) -> None:
    out = subprocess.run(
        ["curl", "-sS", "--compressed", "-D", "-", site + "/page"],
        capture_output=True,
        timeout=10,
        check=True,
    ).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"content-encoding: " in head.lower() and body == PAGE


def test_event_stream_first_event_arrives_before_the_app_finishes(
    site: str, release: threading.Event
) -> None:
    client = httpx.Client(base_url=site, headers={"Accept-Encoding": "gzip"}, timeout=10)
    with client, client.stream("GET", "/events") as resp:
        assert resp.headers["content-encoding"] == "gzip"
        lines = resp.iter_lines()
        assert next(lines) == "data: first"  # while the app still holds the stream
        assert not release.is_set()
        release.set()
        rest = [line for line in lines if line]
        assert rest == ["data: second"]


def test_wsgi_compression_through_werkzeug() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Cache-Control", "max-age=60")]
        )
        return [b'{"items": [' + b", ".join(b'"%d"' % i for i in range(3000)) + b"]}"]

    with wsgi_server(EdgeCache(app)) as url:
        resp = httpx.get(url, headers={"Accept-Encoding": "br"})
        assert resp.headers["content-encoding"] == "br"
        assert resp.json()["items"][-1] == "2999"
