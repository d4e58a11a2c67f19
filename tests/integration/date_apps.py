"""Apps for ``test_date_header``: EdgeCache around apps that set no Date, as
Starlette's and most WSGI frameworks' answers are before the server adds one."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from edgecache import EdgeCache

_HEADERS = [("cache-control", "max-age=60"), ("content-type", "text/plain")]


async def _asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    headers = [(n.encode(), v.encode()) for n, v in _HEADERS]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


def _wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", list(_HEADERS))
    return [b"ok"]


asgi = EdgeCache(_asgi)
wsgi = EdgeCache(_wsgi)
