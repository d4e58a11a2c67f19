"""The admin endpoints under ``/_edgecache/``: off unless ``admin_token`` is set, and
then only for ``Authorization: Bearer <token>``, or Basic with the token as password
(any user name), which is what a browser can send (compared in constant time).

    /_edgecache/              the status page (HTML; ``?format=json`` for JSON)
    /_edgecache/status.json   the same figures as JSON
    /_edgecache/metrics       Prometheus exposition
    /_edgecache/explain       why a URL is (not) cached (``proxy.explain``)
    /_edgecache/purge         POST or PURGE with url=, prefix= or tag=:

    curl -X POST -H "Authorization: Bearer $TOKEN" \\
        "http://edge/_edgecache/purge?url=/page"     # or prefix=/blog/, tag=product-7

A ``url`` or ``prefix`` that is a path (``/page``), ``//host/page`` or ``host/page``
means that path on the request's host (or the host named), for http and https; a full
``https://host:port/page`` is the cache key as it is. The answer says how many entries
went and which keys were meant.

A browser sends Basic credentials by itself, to any site's form too: a purge
authenticated by Basic must carry the page's form token (``csrf``), derived from the
admin token, so no other page can make a logged-in browser purge.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import parse_qs, quote

from edgecache.asgi.types import ASGIApp, Receive, Scope, Send
from edgecache.config import Settings
from edgecache.errors import StorageError
from edgecache.metrics import exposition
from edgecache.proxy.explain import explain_answer
from edgecache.proxy.status import render, status
from edgecache.proxy.traffic import TRAFFIC, Traffic
from edgecache.stack import purge

PREFIX = "/_edgecache/"
MAX_FORM_BYTES = 8192
FIELDS = ("url", "prefix", "tag")
CHALLENGES = [
    (b"www-authenticate", b'Bearer realm="edgecache"'),
    (b"www-authenticate", b'Basic realm="edgecache admin (password: the admin token)"'),
]


class AdminMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings, traffic: Traffic = TRAFFIC) -> None:
        self.app = app
        self.settings = settings
        self.traffic = traffic
        token = settings.admin_token.encode()
        self.bearer = b"Bearer " + token
        self.token = token
        self.csrf = hmac.new(token, b"edgecache purge form", hashlib.sha256).hexdigest()[:32]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        how = self._authenticated(scope)
        if how is None:
            await _reply(send, 401, b"admin token required\n", b"text/plain", CHALLENGES)
            return
        action = path[len(PREFIX) :]
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if action in ("", "status.json"):
            data = status(self.app, self.settings, self.traffic)
            if action == "status.json" or query.get("format") == ["json"]:
                await _reply(send, 200, json.dumps(data).encode(), b"application/json")
                return
            page = render(data, self.csrf, query.get("notice", [""])[0])
            await _reply(send, 200, page.encode(), b"text/html; charset=utf-8")
        elif action == "metrics":
            self.traffic.sync_metrics()
            body, content_type = exposition()
            await _reply(send, 200, body, content_type.encode())
        elif action == "explain" and scope["method"] in ("GET", "HEAD"):
            await _reply(send, *await explain_answer(self.app, scope))
        elif action == "purge" and scope["method"] in ("POST", "PURGE"):
            await self._purge(scope, receive, send, query, how)
        else:
            await _reply(send, 404, b"no such admin action\n", b"text/plain")

    def _authenticated(self, scope: Scope) -> str | None:
        """ "bearer", "basic" or None."""
        given = next((v for n, v in scope["headers"] if n == b"authorization"), b"")
        if hmac.compare_digest(given, self.bearer):
            return "bearer"
        scheme, _, credentials = given.partition(b" ")
        if scheme.lower() == b"basic":
            try:
                _, _, password = base64.b64decode(credentials, validate=True).partition(b":")
            except ValueError:
                return None
            if hmac.compare_digest(password, self.token):
                return "basic"
        return None

    async def _purge(
        self, scope: Scope, receive: Receive, send: Send, query: dict[str, list[str]], how: str
    ) -> None:
        form = await _read_form(receive)
        if form is None:
            await _reply(send, 413, b"form too large\n", b"text/plain")
            return
        fields = {**query, **form}
        if "by" in fields and "value" in fields and fields["by"][0] in FIELDS:
            fields[fields["by"][0]] = fields["value"]  # the status page's form
        target = {k: fields[k][0] for k in FIELDS if k in fields and fields[k][0]}
        if how == "basic" and not hmac.compare_digest(
            fields.get("csrf", [""])[0].encode(), self.csrf.encode()
        ):
            await _reply(send, 403, b"purge from the status page's form only\n", b"text/plain")
            return
        if not target:
            await _reply(send, 400, b"give url=, prefix= or tag=\n", b"text/plain")
            return
        host = _host(scope)
        keys = {k: cache_keys(v, host) for k, v in target.items() if k != "tag"}
        try:
            count = await asyncio.to_thread(self._purge_keys, keys, target.get("tag"))
        except StorageError as exc:
            await _reply(send, 503, f"purge failed: {exc}\n".encode(), b"text/plain")
            return
        if "csrf" in fields:  # from the page: back to it, with what happened
            what = ", ".join(f"{k}={v}" for k, v in target.items())
            notice = quote(f"purged {count} entries ({what}, host {host})").encode()
            await _reply(send, 303, b"", b"text/plain", [(b"location", b"./?notice=" + notice)])
            return
        answer = {"purged": count, **target, "host": host, "keys": keys}
        await _reply(send, 200, json.dumps(answer).encode(), b"application/json")

    def _purge_keys(self, keys: dict[str, list[str]], tag: str | None) -> int:
        count = sum(purge(self.app, url=key) for key in keys.get("url", []))
        count += sum(purge(self.app, prefix=key) for key in keys.get("prefix", []))
        if tag is not None:
            count += purge(self.app, tag=tag)
        return count


def cache_keys(value: str, host: str) -> list[str]:
    """The cache keys (``scheme://host/target``) a purge's ``url``/``prefix`` means: a
    full URL as it is; a path on ``host``, ``//host/path`` or ``host/path`` on that host,
    for both schemes (the proxy may listen on either)."""
    if "://" in value:
        return [value]
    if value.startswith("/") and not value.startswith("//"):
        authority, path = host, value
    else:
        authority, slash, rest = value.lstrip("/").partition("/")
        path = slash + rest or "/"
    return [f"{scheme}://{authority.lower()}{path}" for scheme in ("http", "https")]


def _host(scope: Scope) -> str:
    """The request's authority as the cache keys it (Host, lowercased)."""
    host = next((v for n, v in scope["headers"] if n == b"host"), b"")
    if host:
        return host.decode("latin-1").lower()
    server = scope.get("server") or ("localhost", None)
    return server[0] if server[1] is None else f"{server[0]}:{server[1]}"


async def _read_form(receive: Receive) -> dict[str, list[str]] | None:
    """A url-encoded body as parse_qs gives it ({} without one); None past the limit."""
    body = b""
    while True:
        message: Any = await receive()
        if message["type"] != "http.request":
            return {}
        body += message.get("body", b"")
        if len(body) > MAX_FORM_BYTES:
            return None
        if not message.get("more_body", False):
            return parse_qs(body.decode("latin-1"))


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
