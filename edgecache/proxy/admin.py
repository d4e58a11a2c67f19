"""``/_edgecache/purge`` and ``/_edgecache/metrics``: off unless ``admin_token`` is set,
and then only for ``Authorization: Bearer <token>`` (compared in constant time).

    curl -X POST -H "Authorization: Bearer $TOKEN" \\
        "http://edge/_edgecache/purge?tag=product-7"      # or url=..., prefix=...
"""

from __future__ import annotations

import asyncio
import hmac
import json
from urllib.parse import parse_qs

from edgecache.asgi.types import ASGIApp, Receive, Scope, Send
from edgecache.errors import StorageError
from edgecache.metrics import exposition
from edgecache.proxy.explain import explain_answer
from edgecache.stack import purge

PREFIX = "/_edgecache/"


class AdminMiddleware:
    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        given = next((v for n, v in scope["headers"] if n == b"authorization"), b"")
        if not hmac.compare_digest(given, self.token):
            await _reply(
                send,
                401,
                b"admin token required\n",
                b"text/plain",
                [(b"www-authenticate", b'Bearer realm="edgecache"')],
            )
            return
        action = scope["path"][len(PREFIX) :]
        if action == "metrics":
            body, content_type = exposition()
            await _reply(send, 200, body, content_type.encode())
        elif action == "explain" and scope["method"] in ("GET", "HEAD"):
            await _reply(send, *await explain_answer(self.app, scope))
        elif action == "purge" and scope["method"] in ("POST", "PURGE"):
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            target = {k: query[k][0] for k in ("url", "prefix", "tag") if k in query}
            if not target:
                await _reply(send, 400, b"give url=, prefix= or tag=\n", b"text/plain")
                return
            try:
                count = await asyncio.to_thread(purge, self.app, **target)
            except StorageError as exc:
                await _reply(send, 503, f"purge failed: {exc}\n".encode(), b"text/plain")
                return
            body = json.dumps({"purged": count, **target}).encode()
            await _reply(send, 200, body, b"application/json")
        else:
            await _reply(send, 404, b"no such admin action\n", b"text/plain")


async def _reply(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
