"""Chromium (Debian's, ``make tools``) driven by Playwright (PyPI), through a real
``edgecache proxy`` with TLS in front of a real origin. No browser is downloaded:
Playwright starts ``/usr/bin/chromium``. Without either, these tests skip and say why.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ASSETS = {
    "/static/app.9b8e7d1c.js": (
        "application/javascript",
        "document.body.dataset.loaded = 'yes';\n"
        + "".join(f"window.edgecacheFiller{i} = 'filler line {i}';\n" for i in range(80)),
    ),
    "/static/style.3f2a1c0e.css": (
        "text/css",
        "h1 { color: #010203; }\n"
        + "".join(f".rule-{i} {{ margin: {i}px; color: #123456; }}\n" for i in range(80)),
    ),
}
PAGE = (
    "<!doctype html><html><head><title>assets</title>"
    '<link rel="stylesheet" href="/static/style.3f2a1c0e.css"></head>'
    "<body><h1>A page with hashed assets</h1>"
    + "<p>Some text that makes the page worth compressing.</p>" * 20
    + '<script src="/static/app.9b8e7d1c.js"></script></body></html>'
)


class AssetOrigin:
    """A page and its hashed (immutable) assets, counting the requests that reach it."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                origin.seen[self.path] += 1
                if self.path in ASSETS:
                    kind, text = ASSETS[self.path]
                    cache = "public, max-age=31536000, immutable"
                elif self.path == "/":
                    kind, text, cache = "text/html; charset=utf-8", PAGE, "max-age=60"
                else:
                    self.send_error(404)
                    return
                body = text.encode()
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", cache)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture(scope="module")
def asset_origin() -> Iterator[AssetOrigin]:
    origin = AssetOrigin()
    thread = threading.Thread(target=origin.server.serve_forever, daemon=True)
    thread.start()
    yield origin
    origin.server.shutdown()
    origin.server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is missing: `make tools` installs Debian's chromium as root")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: the sandbox needs user namespaces, which containers (and root) lack.
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()
