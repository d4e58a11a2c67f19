"""Apps the benchmarks serve: the same 10 KB HTML, bare and behind EdgeCache."""

from __future__ import annotations

import random
from typing import Any

from edgecache import EdgeCache

_WORDS = (  # noqa: SIM905 - a word list reads better as prose
    "the of and to in is you that it he was for on are as with his they at be this have "
    "from or one had by word but not what all were we when your can said there use an "
    "each which she do how their if will up other about out many then them these so some "
    "her would make like him into time has look two more write go see number no way could "
    "people my than first water been call who oil its now find long down day did get come "
    "made may part over new sound take only little work know place year live me back give "
    "most very after thing our just name good sentence man think say great where help "
    "through much before line right too mean old any same tell boy follow came want show "
    "also around form three small set put end does another well large must big even such "
    "because turn here why ask went men read need land different home us move try kind "
    "hand picture again change off play spell air away animal house point page letter "
    "mother answer found study still learn should world"
).split()


def html_page(size: int, seed: int = 7) -> bytes:
    """A page shaped like a real one (head, nav, articles with classes, links and English
    prose), so codecs compress it as they compress the web, dictionaries included."""
    rng = random.Random(seed)

    def prose(n: int) -> str:
        return " ".join(rng.choice(_WORDS) for _ in range(n)).capitalize() + "."

    out = [
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>Edgecache benchmark page</title>\n"
        '<link rel="stylesheet" href="/static/css/main.3f9a1c.css">\n'
        '<script src="/static/js/app.8e21bd.js" defer></script>\n</head>\n<body>\n'
        '<header class="site-header"><nav class="nav"><ul class="nav-list">'
    ]
    for i in range(8):
        out.append(
            f'<li class="nav-item"><a class="nav-link" href="/section/{i}">'
            f"{rng.choice(_WORDS).title()}</a></li>"
        )
    out.append('</ul></nav></header>\n<main class="content">')
    i = 0
    while sum(map(len, out)) < size:
        i += 1
        day = rng.randint(10, 28)
        out.append(
            f'<article class="post" id="post-{i}">\n<h2 class="post-title">'
            f'<a href="/posts/{i}">{prose(5)}</a></h2>\n<p class="post-meta">Posted by '
            f'<a href="/users/{rng.randint(1, 99)}">{rng.choice(_WORDS)}</a> on '
            f'<time datetime="2026-11-{day}">November {day}, 2026</time></p>\n'
            f"<p>{prose(40)}</p>\n<p>{prose(30)}</p>\n</article>"
        )
    return "\n".join(out).encode()[:size]


BODY = html_page(10240)
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


def _user_file() -> str:
    """A bcrypt user at cost 5, htpasswd -B's default, written once per machine."""
    import os
    import tempfile

    import bcrypt

    path = os.path.join(tempfile.gettempdir(), "edgecache-bench.htpasswd")
    if not os.path.exists(path):
        hashed = bcrypt.hashpw(BENCH_PASSWORD.encode(), bcrypt.gensalt(5)).decode()
        with open(path, "w") as f:  # $2y$ as htpasswd writes it; the same algorithm
            f.write(f"{BENCH_USER}:$2y${hashed[4:]}\n")
    return path


BENCH_USER, BENCH_PASSWORD = "bench", "correct horse battery"
USER_FILE = _user_file()
_RULES = [("/admin/", USER_FILE, "bench")]
protected = EdgeCache(bare, auth=_RULES)
protected_no_memo = EdgeCache(bare, auth=_RULES, auth_memo=False)


async def origin(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The backend for proxy benchmarks: /miss... is never stored (no-store), /big
    streams ``?size=`` bytes, /upload counts the bytes it is sent, anything else is the
    cacheable 10 KB page."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/upload":
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = str(size).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/plain"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return
    if path == "/big":
        size = int(scope["query_string"].decode().partition("=")[2] or 10**9)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/octet-stream"),
                    (b"content-length", str(size).encode()),
                ],
            }
        )
        block = b"\0" * 65536
        while size > 0:
            part = block[: min(size, len(block))]
            size -= len(part)
            await send({"type": "http.response.body", "body": part, "more_body": size > 0})
        return
    headers = HEADERS
    if path.startswith("/miss"):
        headers = [*HEADERS[:2], (b"cache-control", b"no-store")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})
