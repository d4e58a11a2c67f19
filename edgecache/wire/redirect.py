"""The HTTP->HTTPS redirect listener's handler: a 308 to the same target over TLS,
answered on the fast path (no task, no coroutine)."""

from __future__ import annotations

from edgecache.wire.framing import status_line
from edgecache.wire.types import Answer, BaseHandler, Request


class RedirectHandler(BaseHandler):
    def __init__(self, https_port: int) -> None:
        self.port = "" if https_port == 443 else f":{https_port}"

    def answer_now(self, request: Request) -> Answer:
        host = request.authority or "localhost"
        if not host.endswith("]"):  # keep an IPv6 literal whole
            host = host.rsplit(":", 1)[0]
        path = request.path + ("?" + request.query if request.query else "")
        if path == "*":
            path = "/"
        location = f"https://{host}{self.port}{path}".encode("latin-1")
        head = (
            status_line(308),
            b"location: " + location + b"\r\n",
            b"content-length: 0\r\n",
        )
        return Answer(308, head, (), has_date=False)
