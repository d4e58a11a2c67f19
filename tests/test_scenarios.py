"""One scenario table through both faces: WSGI and ASGI give identical transcripts.

Each scenario drives ``EdgeCache(app)`` with a fake clock and records, per request, what
a client sees (status, the fields that matter, the decoded body) and how often the app
was called. The transcripts of the two faces must be equal, and each scenario also
checks what it is about, so an equal but wrong pair fails too. The cases include the
drift found between the faces before the exchange driver: surrogate keys stripped in
both, saved bytes counted by both compressors.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from edgecache import EdgeCache
from edgecache.compression import decode, encode
from edgecache.metrics import BYTES_SAVED
from edgecache.stack import cache_layers
from tests.drive import KINDS, Reply, Spec, call_wsgi

PAGE = b"<html>" + b"edge layer caching compression and auth " * 200 + b"</html>"
FIELDS = ("cache-status", "content-encoding", "vary", "etag", "x-remote-user", "surrogate-key")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Run:
    """One scenario's app, chain, clock and transcript, for one face."""

    def __init__(self, kind: str, spec: Spec, **options: Any) -> None:
        make_app, self._call = KINDS[kind]
        self.kind = kind
        self.spec = spec
        self.clock = Clock()
        options.setdefault("compress", False)
        self.app = EdgeCache(make_app(spec), clock=self.clock, **options)
        self.transcript: list[tuple[Any, ...]] = []

    def get(self, path: str = "/", method: str = "GET", **headers: str) -> Reply:
        named = {k.replace("_", "-"): v for k, v in headers.items()}
        reply = self._call(self.app, method=method, path=path, headers=named)
        coding = reply.headers.get(b"content-encoding")
        body = decode(reply.body, coding.decode()) if coding else reply.body
        seen = tuple(reply.headers.get(f.encode()) for f in FIELDS)
        aged = b"age" in reply.headers
        self.transcript.append((reply.status, *seen, aged, body, self.spec.calls))
        return reply

    def drain(self) -> None:
        for layer in cache_layers(self.app):
            if layer.engine.copies is not None:
                layer.engine.copies.drain()


def cached_page(**extra: str) -> Spec:
    headers = [("Content-Type", "text/html"), ("Cache-Control", "max-age=60")]
    return Spec(headers=headers + list(extra.items()), chunks=[PAGE])


def hit(kind: str) -> Run:
    run = Run(kind, cached_page())
    run.get()
    reply = run.get()
    assert b"hit" in (reply.headers.get(b"cache-status") or b"") and run.spec.calls == 1
    return run


def revalidation(kind: str) -> Run:
    spec = Spec(headers=[("Cache-Control", "max-age=1"), ("ETag", '"v1"')], chunks=[b"v1"])
    run = Run(kind, spec)
    run.get()
    run.clock.now += 5
    spec.status, spec.chunks = 304, []
    reply = run.get()
    assert reply.status == 200 and reply.body == b"v1" and spec.calls == 2
    assert b"fwd=stale; fwd-status=304" in (reply.headers.get(b"cache-status") or b"")
    return run


def vary(kind: str) -> Run:
    run = Run(kind, cached_page(Vary="Accept-Language"))
    run.get(accept_language="en")
    run.get(accept_language="fr")
    run.get(accept_language="en")
    assert run.spec.calls == 2
    return run


def invalidation(kind: str) -> Run:
    run = Run(kind, cached_page())
    run.get()
    run.get(method="POST")
    run.get()
    assert run.spec.calls == 3  # the POST's answer dropped the stored page (§4.4)
    return run


def stale_while_revalidate(kind: str) -> Run:
    run = Run(kind, Spec(headers=[("Cache-Control", "max-age=1, stale-while-revalidate=60")]))
    run.get()
    run.clock.now += 10
    reply = run.get()
    assert b"stale-while-revalidate" in (reply.headers.get(b"cache-status") or b"")
    return run


def stale_if_error(kind: str) -> Run:
    run = Run(kind, Spec(headers=[("Cache-Control", "max-age=1, stale-if-error=60")]))
    run.get()
    run.clock.now += 10
    run.spec.status = 503
    reply = run.get()
    assert reply.status == 200 and reply.body == b"hello"
    assert b"stale-if-error" in (reply.headers.get(b"cache-status") or b"")
    return run


def compression_before_and_after_the_stored_copy(kind: str) -> Run:
    run = Run(kind, cached_page(), compress=True)
    run.get(accept_encoding="br")  # miss: encoded on the fly by the compression layer
    first = run.get(accept_encoding="br")  # hit, no stored copy yet: the cache encodes
    run.drain()
    second = run.get(accept_encoding="br")  # hit: the stored copy at quality 11
    run.get(accept_encoding="identity")
    assert first.headers.get(b"content-encoding") == b"br" == second.headers.get(
        b"content-encoding"
    )
    assert second.body == encode(PAGE, "br", 11) and run.spec.calls == 1
    return run


def surrogate_keys_stripped(kind: str) -> Run:
    run = Run(kind, cached_page(**{"Surrogate-Key": "a b", "Cache-Tag": "c"}))
    miss, hit = run.get(), run.get()
    for reply in (miss, hit):
        assert b"surrogate-key" not in reply.headers and b"cache-tag" not in reply.headers
    return run


def saved_bytes_counted(kind: str) -> Run:
    spec = Spec(headers=[("Content-Type", "text/html")], chunks=[PAGE])  # not cacheable
    run = Run(kind, spec, compress=True, cache=False)
    before = BYTES_SAVED._value.get()
    run.get(accept_encoding="gzip")
    assert BYTES_SAVED._value.get() - before == len(PAGE) - len(encode(PAGE, "gzip", 5))
    return run


SCENARIOS: list[Callable[[str], Run]] = [
    hit,
    revalidation,
    vary,
    invalidation,
    stale_while_revalidate,
    stale_if_error,
    compression_before_and_after_the_stored_copy,
    surrogate_keys_stripped,
    saved_bytes_counted,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_both_faces_give_the_same_transcript(scenario: Callable[[str], Run]) -> None:
    asgi, wsgi = scenario("asgi"), scenario("wsgi")
    assert asgi.transcript == wsgi.transcript


def test_auth_is_the_same_through_both_faces(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("ann:" + bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode() + "\n")
    transcripts = []
    for kind in KINDS:
        rule = [("/admin/", str(users), "Staff")]
        run = Run(kind, cached_page(), auth=rule, auth_failure_delay=0)
        denied = run.get("/admin/")
        run.get("/admin/", authorization="Basic YW5uOnB3")  # ann:pw
        run.get("/admin/", authorization="Basic YW5uOnB3")
        assert denied.status == 401 and run.spec.calls == 1
        transcripts.append(run.transcript)
    assert transcripts[0] == transcripts[1]


@pytest.mark.parametrize("kind", list(KINDS))
def test_concurrent_misses_coalesce_in_both_faces(kind: str) -> None:
    """Eight concurrent requests for one cold URL make one app call, in either face."""
    gate = threading.Event()
    calls = 0
    body = b"shared"
    headers = [(b"cache-control", b"max-age=60")]

    async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def wsgi_app(environ: Any, start_response: Any) -> Any:
        nonlocal calls
        calls += 1
        gate.wait(5)
        start_response("200 OK", [(n.decode(), v.decode()) for n, v in headers])
        return [body]

    if kind == "asgi":
        app = EdgeCache(asgi_app)

        # One loop for all eight, as a server runs them.
        async def eight() -> list[bytes]:
            messages: list[list[Any]] = [[] for _ in range(8)]

            async def one(i: int) -> None:
                scope = {
                    "type": "http",
                    "method": "GET",
                    "path": "/",
                    "raw_path": b"/",
                    "query_string": b"",
                    "scheme": "http",
                    "headers": [(b"host", b"test")],
                }

                async def receive() -> dict[str, Any]:
                    return {"type": "http.request", "body": b""}

                async def send(message: Any) -> None:
                    messages[i].append(message)

                await app(scope, receive, send)

            await asyncio.gather(*(one(i) for i in range(8)))
            return [m[-1]["body"] for m in messages]

        bodies = asyncio.run(eight())
    else:
        app = EdgeCache(wsgi_app)
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(call_wsgi, app) for _ in range(8)]
            threading.Timer(0.2, gate.set).start()
            bodies = [f.result(10).body for f in futures]
    assert bodies == [body] * 8
    assert calls == 1
