"""Static files: validators, conditionals, ranges, types, precompressed siblings,
immutable names, the SPA fallback, and nothing served from outside the root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgecache.compression import decode
from edgecache.errors import ConfigError
from edgecache.proxy.static import StaticFiles
from edgecache.static_compress import compress_tree
from tests.drive import call_asgi

INDEX = b"<!doctype html><title>app</title>" + b"<p>spa shell</p>" * 40
SCRIPT = b"console.log('edgecache');\n" * 200


@pytest.fixture
def root(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    (site / "assets").mkdir(parents=True)
    (site / "index.html").write_bytes(INDEX)
    (site / "assets" / "app.3f9a1c2e.js").write_bytes(SCRIPT)
    (site / "data.json").write_bytes(b'{"a": 1}')
    (site / "docs").mkdir()
    (site / "docs" / "index.html").write_bytes(b"docs")
    (site / ".env").write_bytes(b"SECRET=1")
    (tmp_path / "outside.txt").write_bytes(b"not yours")
    os.symlink(tmp_path / "outside.txt", site / "escape.txt")
    os.symlink(site / "data.json", site / "inside-link.json")
    return site


def get(app: StaticFiles, path: str, method: str = "GET", **headers: str) -> object:
    return call_asgi(
        app, method=method, path=path, headers={k.replace("_", "-"): v for k, v in headers.items()}
    )


def test_file_with_validators_and_type(root: Path) -> None:
    reply = get(StaticFiles(str(root)), "/data.json")
    assert reply.status == 200 and reply.body == b'{"a": 1}'
    assert reply.headers.get(b"content-type") == b"application/json; charset=utf-8"
    assert reply.headers.get(b"etag").startswith(b'"')
    assert reply.headers.get(b"last-modified").endswith(b"GMT")
    assert reply.headers.get(b"content-length") == b"8"
    assert reply.headers.get(b"accept-ranges") == b"bytes"


def test_conditional_get(root: Path) -> None:
    app = StaticFiles(str(root))
    first = get(app, "/data.json")
    etag = first.headers.get(b"etag").decode()
    assert get(app, "/data.json", If_None_Match=etag).status == 304
    assert get(app, "/data.json", If_None_Match="W/" + etag).status == 304
    lm = first.headers.get(b"last-modified").decode()
    assert get(app, "/data.json", If_Modified_Since=lm).status == 304
    assert get(app, "/data.json", If_None_Match='"other"', If_Modified_Since=lm).status == 200


def test_ranges(root: Path) -> None:
    app = StaticFiles(str(root))
    part = get(app, "/assets/app.3f9a1c2e.js", Range="bytes=0-6")
    assert part.status == 206 and part.body == b"console"
    assert part.headers.get(b"content-range") == f"bytes 0-6/{len(SCRIPT)}".encode()
    tail = get(app, "/assets/app.3f9a1c2e.js", Range="bytes=-3")
    assert tail.body == SCRIPT[-3:]
    assert get(app, "/data.json", Range="bytes=100-").status == 416
    assert get(app, "/data.json", Range="bytes=0-1,3-4").status == 200
    stale = get(app, "/data.json", Range="bytes=0-1", If_Range='"old"')
    assert stale.status == 200 and stale.body == b'{"a": 1}'


def test_head_and_method(root: Path) -> None:
    app = StaticFiles(str(root))
    head = get(app, "/data.json", method="HEAD")
    assert head.status == 200 and head.body == b"" and head.headers.get(b"content-length") == b"8"
    post = get(app, "/data.json", method="POST")
    assert post.status == 405 and post.headers.get(b"allow") == b"GET, HEAD"


def test_hashed_names_are_immutable(root: Path) -> None:
    app = StaticFiles(str(root))
    assert b"immutable" in get(app, "/assets/app.3f9a1c2e.js").headers.get(b"cache-control")
    assert get(app, "/data.json").headers.get(b"cache-control") is None


def test_precompressed_siblings(root: Path) -> None:
    written, _ = compress_tree(str(root))
    assert written >= 3 and (root / "assets" / "app.3f9a1c2e.js.br").exists()
    app = StaticFiles(str(root))
    for coding in ("br", "zstd", "gzip"):
        reply = get(app, "/assets/app.3f9a1c2e.js", Accept_Encoding=coding)
        assert reply.headers.get(b"content-encoding") == coding.encode()
        assert decode(reply.body, coding) == SCRIPT
        assert reply.headers.get(b"vary") == b"Accept-Encoding"
        assert reply.headers.get(b"etag").startswith(b"W/")
    plain = get(app, "/assets/app.3f9a1c2e.js")
    assert plain.body == SCRIPT and plain.headers.get(b"content-encoding") is None
    assert not (root / "data.json.br").exists()  # too small to be worth it


def test_directories_and_spa_fallback(root: Path) -> None:
    app = StaticFiles(str(root))
    redirect = get(app, "/docs")
    assert redirect.status == 301 and redirect.headers.get(b"location") == b"/docs/"
    assert get(app, "/docs/").body == b"docs"
    assert get(app, "/").body == INDEX
    assert get(app, "/no/such/page").status == 404
    spa = StaticFiles(str(root), spa=True)
    deep = get(spa, "/users/42/settings")
    assert deep.status == 200 and deep.body == INDEX


@pytest.mark.parametrize(
    "path",
    [
        "/../outside.txt",
        "/assets/../../outside.txt",
        "/escape.txt",
        "/.env",
        "/a\x00b",
        "/..\\outside.txt",
    ],
)
def test_nothing_outside_the_root(root: Path, path: str) -> None:
    for app in (StaticFiles(str(root)), StaticFiles(str(root), spa=True)):
        reply = get(app, path)
        assert b"not yours" not in reply.body and b"SECRET" not in reply.body
        assert reply.status in (404, 200)  # 200 only as the SPA shell
        if reply.status == 200:
            assert reply.body == INDEX


def test_symlink_inside_the_root_is_served(root: Path) -> None:
    assert get(StaticFiles(str(root)), "/inside-link.json").body == b'{"a": 1}'


def test_missing_root_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a directory"):
        StaticFiles(str(tmp_path / "nope"))
