"""Views that count their calls (in the one gunicorn worker), so a test can tell a hit
from a miss by asking the project itself."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

_lock = threading.Lock()
_calls: Counter[str] = Counter()


def _called(request: HttpRequest) -> int:
    with _lock:
        _calls[f"{request.method} {request.path}"] += 1
        return _calls[f"{request.method} {request.path}"]


def calls(request: HttpRequest) -> HttpResponse:
    with _lock:
        body = json.dumps(dict(_calls))
    return HttpResponse(
        body, content_type="application/json", headers={"Cache-Control": "no-store"}
    )


def page(request: HttpRequest) -> HttpResponse:
    n = _called(request)
    return HttpResponse(f"page, call {n}", headers={"Cache-Control": "max-age=60"})


def cookie(request: HttpRequest) -> HttpResponse:
    n = _called(request)
    response = HttpResponse(f"cookie, call {n}", headers={"Cache-Control": "max-age=60"})
    response.set_cookie("session", f"s{n}", httponly=True)
    return response


def item(request: HttpRequest) -> HttpResponse:
    n = _called(request)
    if request.method == "POST":
        return HttpResponse(f"updated, call {n}", status=200)
    return HttpResponse(f"item, call {n}", headers={"Cache-Control": "max-age=60"})


def vary(request: HttpRequest) -> HttpResponse:
    _called(request)
    language = request.headers.get("Accept-Language", "en")[:2]
    headers = {"Cache-Control": "max-age=60", "Vary": "Accept-Language"}
    return HttpResponse(f"language {language}", headers=headers)


def stream(request: HttpRequest) -> StreamingHttpResponse:
    n = _called(request)

    def chunks() -> Iterator[bytes]:
        for i in range(5):
            yield f"chunk {i} of call {n}\n".encode()

    return StreamingHttpResponse(chunks(), headers={"Cache-Control": "max-age=60"})


def text(request: HttpRequest) -> HttpResponse:
    n = _called(request)
    body = f"call {n}\n" + "A text worth compressing, line after line.\n" * 200
    return HttpResponse(body, content_type="text/plain", headers={"Cache-Control": "max-age=60"})


def private(request: HttpRequest) -> HttpResponse:
    """Behind basic auth (EDGECACHE_AUTH, set by the test): shared once past the gate."""
    _called(request)
    user, header = request.META.get("REMOTE_USER"), request.headers.get("X-Remote-User")
    seen = f"user {user}, header {header}, authorization {'Authorization' in request.headers}"
    return HttpResponse(seen, headers={"Cache-Control": "public, max-age=60"})


def swr(request: HttpRequest) -> HttpResponse:
    """Stale at once, and may be answered stale while it is refreshed (RFC 5861)."""
    n = _called(request)
    cc = "max-age=0, stale-while-revalidate=60"
    return HttpResponse(f"swr, call {n}", headers={"Cache-Control": cc})


def astream(request: HttpRequest) -> StreamingHttpResponse:
    """Streamed from an async generator (served as it is under ASGI; Django consumes
    it first under WSGI)."""
    n = _called(request)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(5):
            yield f"async chunk {i} of call {n}\n".encode()

    return StreamingHttpResponse(chunks(), headers={"Cache-Control": "max-age=60"})


def slow(request: HttpRequest) -> HttpResponse:
    """Slow to build, so that requests arriving meanwhile queue behind this one."""
    n = _called(request)
    time.sleep(0.5)
    return HttpResponse(f"slow, call {n}", headers={"Cache-Control": "max-age=60"})
