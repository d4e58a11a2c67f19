"""Bad input gets a clear answer and loses nothing: malformed directives, dates and
bodies from the app or the client, through the real servers."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from edgecache import EdgeCache
from tests.integration.conftest import Edge


@pytest.mark.parametrize(
    "pairs",
    [
        pytest.param([("Cache-Control", "max-age=abc")], id="9111-4.2.1-non-integer-max-age"),
        pytest.param([("Cache-Control", "max-age=5, max-age=500")], id="conflicting-max-age"),
        pytest.param([("Expires", "tomorrow")], id="9111-5.3-invalid-expires"),
        pytest.param([("Expires", "0")], id="9111-5.3-expires-zero"),
    ],
)
def test_invalid_freshness_is_never_reused(edge: Edge, pairs: list[tuple[str, str]]) -> None:
    edge.script.route("/bad", headers=pairs, body=b"b")
    assert edge.client.get("/bad").status_code == 200
    edge.clock.advance(1)
    assert edge.client.get("/bad").status_code == 200
    assert edge.script.calls["GET /bad"] == 2


def test_invalid_date_falls_back_to_receipt_time(edge: Edge) -> None:
    edge.script.route("/d", headers=[("Cache-Control", "max-age=60"), ("Date", "yesterday")])
    edge.client.get("/d")
    edge.clock.advance(5)
    resp = edge.client.get("/d")
    assert resp.headers["age"] == "5" and "hit" in resp.headers["cache-status"]


def test_malformed_client_directives_and_dates(edge: Edge) -> None:
    edge.script.route("/c", headers=[("Cache-Control", "max-age=60"), ("ETag", '"e"')])
    edge.client.get("/c")
    # An unparseable request max-age is read as no-cache: the cache validates.
    resp = edge.client.get("/c", headers={"Cache-Control": "max-age=soon"})
    assert resp.status_code == 200 and "fwd=request" in resp.headers["cache-status"]
    resp = edge.client.get("/c", headers={"If-Modified-Since": "not a date"})
    assert resp.status_code == 200
    resp = edge.client.get("/c", headers={"Cache-Control": '",,,=="', "Pragma": "no-cache=,"})
    assert resp.status_code == 200


def test_raw_bytes_in_headers_through_a_raw_socket(edge: Edge) -> None:
    edge.script.route("/raw", headers=[("Cache-Control", "max-age=60")], body=b"raw")
    host, port = edge.url[7:].split(":")
    request = (
        b"GET /raw HTTP/1.1\r\nHost: " + host.encode() + b"\r\n"
        b'Cache-Control: max-age=\xff\xfe, no-cache="unterminated\r\n'
        b"If-None-Match: \xe2\x82\xac\r\nX-Weird: \x80\x81\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data[:200]
    assert data.endswith(b"raw")


# Incomplete bodies, driven in process: the servers would themselves refuse to send
# a body shorter than its Content-Length, which is the point of not storing it.


def _asgi_call(app: Any, path: str = "/t") -> tuple[list[dict[str, Any]], BaseException | None]:
    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "scheme": "http",
        "headers": [(b"host", b"t")],
    }
    error = None
    try:
        asyncio.run(app(scope, receive, send))
    except Exception as exc:
        error = exc
    return messages, error


def test_short_body_is_not_stored_asgi() -> None:
    calls = 0

    async def short(scope: Any, receive: Any, send: Any) -> None:
        nonlocal calls
        calls += 1
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"cache-control", b"max-age=60"), (b"content-length", b"10")],
            }
        )
        await send({"type": "http.response.body", "body": b"12345"})

    app = EdgeCache(short)
    _asgi_call(app)
    _asgi_call(app)
    assert calls == 2


def test_app_dying_mid_body_is_not_stored_asgi() -> None:
    calls = 0

    async def dies(scope: Any, receive: Any, send: Any) -> None:
        nonlocal calls
        calls += 1
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"cache-control", b"max-age=60")],
            }
        )
        await send({"type": "http.response.body", "body": b"half", "more_body": True})
        raise ConnectionResetError("upstream went away")

    app = EdgeCache(dies)
    messages, error = _asgi_call(app)
    assert isinstance(error, ConnectionResetError)
    assert messages[-1].get("more_body") is True  # the client never saw an ending
    _asgi_call(app)
    assert calls == 2


def _wsgi_call(app: Any) -> tuple[str, bytes, BaseException | None]:
    from wsgiref.util import setup_testing_defaults

    environ: dict[str, Any] = {}
    setup_testing_defaults(environ)
    status: list[str] = []
    body = b""
    error = None
    try:
        result = app(environ, lambda s, h, e=None: status.append(s))
        for chunk in result:
            body += chunk
    except Exception as exc:
        error = exc
    return (status[0] if status else ""), body, error


def test_short_and_dying_bodies_are_not_stored_wsgi() -> None:
    calls = 0

    def short(environ: Any, start_response: Any) -> Any:
        nonlocal calls
        calls += 1
        start_response("200 OK", [("Cache-Control", "max-age=60"), ("Content-Length", "10")])
        return [b"12345"]

    app = EdgeCache(short)
    _wsgi_call(app)
    _wsgi_call(app)
    assert calls == 2

    def dies(environ: Any, start_response: Any) -> Any:
        nonlocal calls
        calls += 1
        start_response("200 OK", [("Cache-Control", "max-age=60")])
        yield b"half"
        raise ConnectionResetError("upstream went away")

    calls = 0
    app = EdgeCache(dies)
    _, body, error = _wsgi_call(app)
    assert body == b"half" and isinstance(error, ConnectionResetError)
    _wsgi_call(app)
    assert calls == 2


def test_store_failure_is_a_miss_not_an_error() -> None:
    from edgecache.errors import StorageError

    class BrokenStore:
        def get(self, key: str) -> None:
            raise StorageError("disk on fire")

        def put(self, key: str, variants: Any, ttl: float) -> None:
            raise StorageError("disk on fire")

        def delete(self, key: str) -> None:
            raise StorageError("disk on fire")

    async def ok(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"cache-control", b"max-age=60")],
            }
        )
        await send({"type": "http.response.body", "body": b"fine"})

    app = EdgeCache(ok, store=BrokenStore())
    messages, error = _asgi_call(app)
    assert error is None and messages[0]["status"] == 200 and messages[1]["body"] == b"fine"
