"""CompressMiddleware (WSGI and ASGI, one scenario table) and the cache's encoded copies."""

from __future__ import annotations

import os
import random
from typing import Any

import pytest

from edgecache import EdgeCache
from edgecache.asgi import CompressMiddleware as AsgiCompress
from edgecache.compression import ENCODINGS, decode
from edgecache.wsgi import CompressMiddleware as WsgiCompress
from tests.drive import KINDS, Spec

HTML = ("Content-Type", "text/html; charset=utf-8")


def _page(size: int, seed: int = 7) -> bytes:
    """Text that compresses like a real page: words drawn from a small vocabulary."""
    rng = random.Random(seed)
    words = [
        bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
        for _ in range(300)
    ]
    out = bytearray(b"<!doctype html><html><body>")
    while len(out) < size:
        out += b"<p>" + b" ".join(rng.choice(words) for _ in range(12)) + b"</p>\n"
    return bytes(out[:size])


PAGE = _page(15_000)
ALL = "gzip, deflate, br, zstd"


@pytest.fixture(params=["asgi", "wsgi"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def compressed(kind: str, spec: Spec, **options: Any) -> Any:
    make_app, _ = KINDS[kind]
    wrapper = AsgiCompress if kind == "asgi" else WsgiCompress
    return wrapper(make_app(spec), **options)


def call(kind: str, app: Any, **kwargs: Any) -> Any:
    return KINDS[kind][1](app, **kwargs)


@pytest.mark.parametrize("coding", ["br", "zstd", "gzip"])
@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param([PAGE[:300]], id="small"),
        pytest.param([PAGE * 20], id="large"),
        pytest.param([PAGE[i : i + 1000] for i in range(0, len(PAGE), 1000)], id="streamed"),
    ],
)
def test_round_trip(kind: str, coding: str, chunks: list[bytes]) -> None:
    spec = Spec(headers=[HTML, ("ETag", '"v1"')], chunks=chunks)
    reply = call(kind, compressed(kind, spec), headers={"Accept-Encoding": coding})
    assert reply.headers.get(b"content-encoding") == coding.encode()
    assert decode(reply.body, coding) == b"".join(chunks)
    assert reply.headers.get(b"vary") == b"Accept-Encoding"
    assert reply.headers.get(b"etag") == b'W/"v1"'
    if len(chunks) == 1:
        assert reply.headers.get(b"content-length") == str(len(reply.body)).encode()
    else:
        assert b"content-length" not in reply.headers


@pytest.mark.parametrize(
    ("status", "method", "req", "resp"),
    [
        pytest.param(200, "GET", {}, [("Content-Type", "image/png")], id="type-not-listed"),
        pytest.param(200, "GET", {}, [HTML, ("Content-Encoding", "br")], id="already-encoded"),
        pytest.param(200, "GET", {}, [HTML, ("Cache-Control", "no-transform")], id="no-transform"),
        pytest.param(200, "GET", {}, [HTML, ("Content-Length", "5")], id="below-min-size"),
        pytest.param(200, "HEAD", {}, [HTML], id="head"),
        pytest.param(204, "GET", {}, [HTML], id="204"),
        pytest.param(304, "GET", {}, [HTML], id="304"),
        pytest.param(206, "GET", {}, [HTML, ("Content-Range", "bytes 0-9/100")], id="206"),
        pytest.param(200, "GET", {"Range": "bytes=0-9"}, [HTML], id="range-request"),
    ],
)
def test_skip_rules(
    kind: str, status: int, method: str, req: dict[str, str], resp: list[tuple[str, str]]
) -> None:
    body = b"" if status in (204, 304) else PAGE
    spec = Spec(status=status, headers=resp, chunks=[body])
    reply = call(
        kind, compressed(kind, spec), method=method, headers={"Accept-Encoding": ALL, **req}
    )
    assert reply.body == body
    encoding = reply.headers.get(b"content-encoding")
    assert encoding in (None, b"br") and (encoding is None or ("Content-Encoding", "br") in resp)


def test_small_unlabelled_body_sent_as_is_with_vary(kind: str) -> None:
    spec = Spec(headers=[HTML], chunks=[b"tiny"])
    reply = call(kind, compressed(kind, spec), headers={"Accept-Encoding": ALL})
    assert reply.body == b"tiny" and b"content-encoding" not in reply.headers
    assert reply.headers.get(b"vary") == b"Accept-Encoding"


def test_identity_client_gets_vary(kind: str) -> None:
    spec = Spec(headers=[HTML, ("Vary", "Cookie")], chunks=[PAGE])
    reply = call(kind, compressed(kind, spec), headers={"Accept-Encoding": "identity"})
    assert reply.body == PAGE
    assert reply.headers.get(b"vary") == b"Cookie, Accept-Encoding"
    reply = call(kind, compressed(kind, spec))  # no Accept-Encoding at all
    assert reply.body == PAGE


def test_settings_choose_codings_and_order(kind: str) -> None:
    spec = Spec(headers=[HTML], chunks=[PAGE])
    app = compressed(kind, spec, codings=("gzip", "br"))
    assert (
        call(kind, app, headers={"Accept-Encoding": ALL}).headers.get(b"content-encoding")
        == b"gzip"
    )
    app = compressed(kind, spec, compress=False)
    assert b"content-encoding" not in call(kind, app, headers={"Accept-Encoding": ALL}).headers


def test_event_stream_is_flushed_per_chunk(kind: str) -> None:
    events = [b"data: %d\n\n" % i for i in range(5)]
    spec = Spec(headers=[("Content-Type", "text/event-stream")], chunks=events)
    reply = call(kind, compressed(kind, spec), headers={"Accept-Encoding": "gzip"})
    import zlib

    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    # Every chunk sent decodes to exactly one event: nothing is held back.
    decoded = [d.decompress(c) for c in reply.chunks if c]
    assert decoded[: len(events)] == events


def test_cached_entry_is_encoded_once_per_coding(kind: str) -> None:
    spec = Spec(headers=[HTML, ("Cache-Control", "max-age=600"), ("ETag", '"p"')], chunks=[PAGE])
    make_app, _ = KINDS[kind]
    app = EdgeCache(make_app(spec))
    cache = app.app
    call(kind, app, headers={"Accept-Encoding": ALL})  # miss, stored
    for coding in ("br", "zstd", "gzip"):  # first hit per coding schedules the copy
        call(kind, app, headers={"Accept-Encoding": coding})
    cache.engine.copies.drain()
    before = {
        (p, c): ENCODINGS.get(p, c) for p in ("stream", "store") for c in ("br", "zstd", "gzip")
    }
    for coding in ("br", "zstd", "gzip"):
        for _ in range(100):
            reply = call(kind, app, headers={"Accept-Encoding": coding})
            assert reply.headers.get(b"content-encoding") == coding.encode()
            assert decode(reply.body, coding) == PAGE
            assert b"hit" in reply.headers.get(b"cache-status")
            assert reply.headers.get(b"etag") == b'W/"p"'
            assert reply.headers.get(b"vary") == b"Accept-Encoding"
    after = {key: ENCODINGS.get(*key) for key in before}
    assert after == before  # 300 hits, no encoding at all
    assert spec.calls == 1
    # and each stored copy was made exactly once (at the stored quality)
    stored = cache.engine.store.get("http://test/")[0]
    assert set(stored.encoded) == {"br", "zstd", "gzip"}


def test_stored_copies_are_smaller_than_on_the_fly(kind: str) -> None:
    spec = Spec(headers=[HTML, ("Cache-Control", "max-age=600")], chunks=[_page(100_000)])
    make_app, _ = KINDS[kind]
    app = EdgeCache(make_app(spec))
    first = call(kind, app, headers={"Accept-Encoding": "br"})  # miss: on the fly, br 4
    call(kind, app, headers={"Accept-Encoding": "br"})
    app.app.engine.copies.drain()
    stored = call(kind, app, headers={"Accept-Encoding": "br"})  # br 11 copy
    assert decode(stored.body, "br") == decode(first.body, "br") == _page(100_000)
    assert len(stored.body) < len(first.body)


def test_conditional_requests_work_with_either_representation(kind: str) -> None:
    spec = Spec(headers=[HTML, ("Cache-Control", "max-age=600"), ("ETag", '"p"')], chunks=[PAGE])
    make_app, _ = KINDS[kind]
    app = EdgeCache(make_app(spec))
    call(kind, app, headers={"Accept-Encoding": "br"})
    for etag in ('"p"', 'W/"p"'):
        reply = call(kind, app, headers={"Accept-Encoding": "br", "If-None-Match": etag})
        assert reply.status == 304 and reply.body == b""


def test_304_keeps_encoded_copies(kind: str) -> None:
    class Clock:
        now = 1000.0

        def __call__(self) -> float:
            return self.now

    clock = Clock()
    spec = Spec(headers=[HTML, ("Cache-Control", "max-age=10"), ("ETag", '"p"')], chunks=[PAGE])
    make_app, _ = KINDS[kind]
    app = EdgeCache(make_app(spec), clock=clock)
    call(kind, app, headers={"Accept-Encoding": "br"})
    call(kind, app, headers={"Accept-Encoding": "br"})
    app.app.engine.copies.drain()
    clock.now += 60
    spec.status, spec.chunks = 304, []
    reply = call(kind, app, headers={"Accept-Encoding": "br"})
    assert reply.status == 200 and decode(reply.body, "br") == PAGE
    assert b"fwd-status=304" in reply.headers.get(b"cache-status")
    stored = app.app.engine.store.get("http://test/")[0]
    assert "br" in stored.encoded


def test_encoded_copies_survive_the_disk_store(tmp_path: Any) -> None:
    spec = Spec(headers=[HTML, ("Cache-Control", "max-age=600")], chunks=[PAGE])
    make_app, call_app = KINDS["asgi"]
    path = str(tmp_path / "disk")
    app = EdgeCache(make_app(spec), store="disk", store_path=path)
    call_app(app, headers={"Accept-Encoding": "gzip"})
    call_app(app, headers={"Accept-Encoding": "gzip"})
    app.app.engine.copies.drain()
    again = EdgeCache(make_app(spec), store="disk", store_path=path)
    before = ENCODINGS.get("stream", "gzip")
    reply = call_app(again, headers={"Accept-Encoding": "gzip"})
    assert decode(reply.body, "gzip") == PAGE and ENCODINGS.get("stream", "gzip") == before
    assert os.path.isdir(path)
