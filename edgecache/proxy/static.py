"""Static files from a root directory, as nginx serves them: ETag and Last-Modified,
conditional GET, one byte range, content types, precompressed ``.br`` / ``.zst`` /
``.gz`` siblings, long immutable caching for hashed names, and an SPA fallback
(``try_files $uri $uri/ /index.html``).

Nothing outside the root is ever served: ``..`` segments are refused, not resolved;
dot-files (``.git``, ``.env``) are hidden; and the real path of every file, symlinks
followed, must still lie inside the real root.
"""

from __future__ import annotations

import mimetypes
import os
import re
import stat
import time
from typing import Any

from edgecache.asgi.types import Receive, Scope, Send
from edgecache.core.conditional import if_none_match_matches
from edgecache.core.dates import format_http_date, parse_http_date
from edgecache.core.encoding import weak_etag
from edgecache.core.headers import (
    ACCEPT_ENCODING,
    IF_MODIFIED_SINCE,
    IF_NONE_MATCH,
    Headers,
)
from edgecache.core.negotiation import IDENTITY, negotiator
from edgecache.core.ranges import UNSATISFIABLE, content_range, select_range
from edgecache.errors import ConfigError

SIBLINGS = {"br": ".br", "zstd": ".zst", "gzip": ".gz"}
HASHED_NAME = re.compile(r"[.-][0-9a-fA-F]{8,}\.[A-Za-z0-9]+$")
"""``app.3f9a1c2e.js``, ``main-8e21bd07.css``: content-addressed names, cacheable forever."""
IMMUTABLE = b"public, max-age=31536000, immutable"
CHUNK = 256 * 1024
NOT_MODIFIED_KEEP = (b"etag", b"last-modified", b"cache-control", b"vary")
TEXT_TYPES = ("text/", "application/javascript", "application/json", "image/svg+xml")


SMALL_FILE = 256 * 1024
"""Files up to this size are kept in memory with their metadata, for ``MEMO_SECONDS``."""
MEMO_SECONDS = 1.0
"""How long a looked-up file is trusted before it is looked at again (as nginx's
``open_file_cache_valid``): an edit shows within this time."""


class _File:
    __slots__ = ("content", "etag", "headers", "mtime", "path", "siblings", "size", "url_path")

    def __init__(self, path: str, st: os.stat_result, url_path: str) -> None:
        self.path = path
        self.size = st.st_size
        self.mtime = st.st_mtime
        self.etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}"'.encode()
        self.url_path = url_path
        self.headers: list[tuple[bytes, bytes]] = []
        self.siblings: dict[str, tuple[str, int, bytes | None]] = {}
        self.content = _read_small(path, st.st_size)


def _read_small(path: str, size: int) -> bytes | None:
    if size > SMALL_FILE:
        return None
    try:
        with open(path, "rb") as f:
            data = f.read(SMALL_FILE + 1)
    except OSError:
        return None
    return data if len(data) == size else None


def check_root(root: str) -> None:
    """ConfigError unless ``root`` is a directory (at start, before anything is built)."""
    if not os.path.isdir(root):
        raise ConfigError(f"static root {root!r} is not a directory")


class StaticFiles:
    """An ASGI app serving ``root``."""

    def __init__(
        self,
        root: str,
        spa: bool = False,
        index: str = "index.html",
        codings: tuple[str, ...] = ("br", "zstd", "gzip"),
    ) -> None:
        check_root(root)
        self.root = os.path.realpath(root)
        self.spa = spa
        self.index = index
        self.choose = negotiator(codings)
        self._memo: dict[str, tuple[float, _File | str | None]] = {}

    def lookup(self, url_path: str) -> _File | str | None:
        """``locate``, remembered for ``MEMO_SECONDS`` (bounded)."""
        now = time.monotonic()
        remembered = self._memo.get(url_path)
        if remembered is not None and remembered[0] > now:
            return remembered[1]
        found = self.locate(url_path)
        if len(self._memo) >= 10_000:
            self._memo.clear()
        self._memo[url_path] = (now + MEMO_SECONDS, found)
        return found

    def locate(self, url_path: str) -> _File | str | None:
        """The file for ``url_path``; a str when a directory needs its slash (redirect);
        None when there is nothing to serve."""
        if "\x00" in url_path or "\\" in url_path:
            return None
        segments = [s for s in url_path.split("/") if s]
        for segment in segments:
            if segment == ".." or (segment.startswith(".") and segment != ".well-known"):
                return None
        candidate = os.path.join(self.root, *segments)
        real = os.path.realpath(candidate)
        if real != self.root and not real.startswith(self.root + os.sep):
            return None  # a symlink out of the root
        try:
            st = os.stat(real)
        except OSError:
            return None
        if stat.S_ISDIR(st.st_mode):
            if not url_path.endswith("/"):
                return url_path + "/"
            return self.locate(url_path + self.index)
        if not stat.S_ISREG(st.st_mode):
            return None
        file = _File(real, st, url_path)
        for coding in SIBLINGS:
            sibling = self._sibling(file, coding)
            if sibling is not None:
                file.siblings[coding] = (*sibling, _read_small(*sibling))
        file.headers = self._headers(file)
        return file

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await _plain(send, 405, b"405 Method Not Allowed\n", [(b"allow", b"GET, HEAD")])
            return
        found = self.lookup(scope["path"])
        if isinstance(found, str):
            query = scope.get("query_string") or b""
            location = found.encode("utf-8") + (b"?" + query if query else b"")
            await _plain(send, 301, b"", [(b"location", location)])
            return
        if found is None and self.spa:
            fallback = self.lookup("/" + self.index)
            found = fallback if isinstance(fallback, _File) else None
        if found is None:
            await _plain(send, 404, b"404 Not Found\n")
            return
        await self._serve(found, Headers(scope["headers"]), method, send)

    async def _serve(self, file: _File, request: Headers, method: str, send: Send) -> None:
        headers = file.headers
        inm = request.get_joined(IF_NONE_MATCH)
        ims = parse_http_date(request.get(IF_MODIFIED_SINCE))
        if (inm is not None and if_none_match_matches(inm, file.etag)) or (
            inm is None and ims is not None and int(file.mtime) <= ims
        ):
            kept = [h for h in headers if h[0] in NOT_MODIFIED_KEEP]
            await _plain(send, 304, b"", kept)
            return
        path, size, content, extra = file.path, file.size, file.content, []
        span = select_range(request, size, file.etag, float(int(file.mtime)))
        if span is None and file.siblings:
            coding = self.choose(request.get_joined(ACCEPT_ENCODING))
            sibling = file.siblings.get(coding)
            if sibling is not None:
                path, size, content = sibling
                extra = [(b"content-encoding", coding.encode())]
                headers = [(n, weak_etag(v) if n == b"etag" else v) for n, v in headers]
        if span == UNSATISFIABLE:
            await _plain(send, 416, b"", [(b"content-range", f"bytes */{size}".encode())])
            return
        status, start, end = 200, 0, size - 1
        if isinstance(span, tuple):
            status, (start, end) = 206, span
            extra = [(b"content-range", content_range(start, end, size))]
        length = end - start + 1 if size else 0
        out = [*headers, *extra, (b"content-length", str(length).encode())]
        await send({"type": "http.response.start", "status": status, "headers": out})
        if method == "HEAD" or not length:
            await send({"type": "http.response.body", "body": b""})
            return
        if content is not None:
            await send({"type": "http.response.body", "body": content[start : end + 1]})
            return
        with open(path, "rb") as f:
            f.seek(start)
            remaining = length
            while remaining:
                chunk = f.read(min(CHUNK, remaining))
                if not chunk:
                    break  # the file shrank meanwhile: end without the final message
                remaining -= len(chunk)
                await send(
                    {"type": "http.response.body", "body": chunk, "more_body": remaining > 0}
                )
            if remaining:
                return

    def _headers(self, file: _File) -> list[tuple[bytes, bytes]]:
        content_type, _ = mimetypes.guess_type(file.path)
        content_type = content_type or "application/octet-stream"
        if content_type.startswith(TEXT_TYPES):
            content_type += "; charset=utf-8"
        headers = [
            (b"content-type", content_type.encode()),
            (b"last-modified", format_http_date(file.mtime)),
            (b"etag", file.etag),
            (b"accept-ranges", b"bytes"),
        ]
        if HASHED_NAME.search(file.path):
            headers.append((b"cache-control", IMMUTABLE))
        if file.siblings:
            headers.append((b"vary", b"Accept-Encoding"))
        return headers

    def _sibling(self, file: _File, coding: str) -> tuple[str, int] | None:
        if coding == IDENTITY:
            return None
        path = file.path + SIBLINGS[coding]
        real = os.path.realpath(path)
        if not real.startswith(self.root + os.sep):
            return None
        try:
            st = os.stat(real)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode) or st.st_mtime < file.mtime:
            return None  # a stale sibling of an edited file is not served
        return real, st.st_size


async def _plain(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    out: list[Any] = [*(headers or [])]
    if status >= 400:
        out.append((b"content-type", b"text/plain; charset=utf-8"))
    out.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})
