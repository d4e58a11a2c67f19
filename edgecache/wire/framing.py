"""Bytes the wire layer writes itself: status lines, its own short answers, Date."""

from __future__ import annotations

import http
import time
from email.utils import formatdate


def _status_line(status: int) -> bytes:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}\r\n".encode("ascii")


STATUS_LINES = {status: _status_line(status) for status in range(100, 600)}
STATUS_LINES.update(  # RFC 9110's names where Python still has RFC 7231's
    {
        413: b"HTTP/1.1 413 Content Too Large\r\n",
        414: b"HTTP/1.1 414 URI Too Long\r\n",
        416: b"HTTP/1.1 416 Range Not Satisfiable\r\n",
        422: b"HTTP/1.1 422 Unprocessable Content\r\n",
    }
)
CRLF = b"\r\n"
CLOSE = b"connection: close\r\n"
KEEP_ALIVE = b"connection: keep-alive\r\n"
CHUNKED = b"transfer-encoding: chunked\r\n"
LAST_CHUNK = b"0\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
ALLOW = b"GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS"
"""What ``OPTIONS *`` says: the methods any route may take (RFC 9110 §9.3.7)."""


def status_line(status: int, reason: bytes = b"") -> bytes:
    if reason:
        return b"HTTP/1.1 %d %s\r\n" % (status, reason)
    line = STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d \r\n" % status


class DateField:
    """``date: ...\\r\\n``, made once a second, not once per answer."""

    __slots__ = ("_line", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._line = b""

    def line(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._line = b"date: " + formatdate(now, usegmt=True).encode("ascii") + CRLF
        return self._line


def plain_answer(status: int, text: str, date: bytes, extra: bytes = b"") -> bytes:
    """A short text answer that closes the connection (refusals, 408, 500)."""
    body = f"{status} {text}\n".encode()
    return b"".join(
        (
            status_line(status),
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(body),
            b"cache-control: no-store\r\n",
            extra,
            date,
            CLOSE,
            CRLF,
            body,
        )
    )
