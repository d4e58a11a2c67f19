"""Apps the benchmarks serve: the same 10 KB HTML, bare and behind EdgeCache."""

from __future__ import annotations

from typing import Any

from edgecache import EdgeCache

BODY = (b"<!doctype html><html><body>" + b"<p>edgecache benchmark page</p>\n" * 320)[:10240]
HEADERS = [
    (b"content-type", b"text/html; charset=utf-8"),
    (b"content-length", str(len(BODY)).encode()),
    (b"cache-control", b"max-age=3600"),
    (b"etag", b'"bench-1"'),
]


async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


cached = EdgeCache(bare)


_MIN: dict[str, Any] = {}


async def minimal(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A ceiling for any cache: a dict lookup and two sends (not a real cache)."""
    key = scope["path"]
    hit = _MIN.get(key)
    if hit is None:
        hit = _MIN[key] = ([*HEADERS, (b"age", b"0"), (b"cache-status", b"x; hit")], BODY)
    await send({"type": "http.response.start", "status": 200, "headers": hit[0]})
    await send({"type": "http.response.body", "body": hit[1]})
