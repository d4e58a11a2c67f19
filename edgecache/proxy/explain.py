"""``GET /_edgecache/explain?url=...``: why the edge does what it does for one URL.

    curl -H "Authorization: Bearer $TOKEN" \\
        "http://edge/_edgecache/explain?url=http://edge/page&header=Accept-Language:%20en"

``url`` is the URL as clients ask the edge for it (the cache keys on scheme, Host and
target), or a path, which takes this request's own scheme and Host. Each ``header=``
is one request field ``Name: value`` of the request to explain (Vary, Cookie,
Authorization, Cache-Control); ``method=HEAD`` explains a HEAD. The answer is text, or
JSON with ``Accept: application/json`` or ``format=json`` (shape: README, "Explain").

The admin middleware calls ``explain_answer`` behind its token. With several workers
each has its own memory of passes (and a memory store of its own): the answer is the
worker's that took the request.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from edgecache import asgi, wsgi
from edgecache.asgi.types import Scope
from edgecache.core.explain import explain
from edgecache.core.headers import HOST, Headers
from edgecache.core.model import RequestHead
from edgecache.errors import StorageError

Reply = tuple[int, bytes, bytes]
"""Status, body and Content-Type of the admin answer."""

_TEXT = b"text/plain; charset=utf-8"
_JSON = b"application/json"


def _cache_for(app: Any, scope: Scope) -> Any | None:
    """The cache layer that would answer ``scope``: down the chain, through a router's
    choice of route (``match``) where there is one."""
    layer = app
    for _ in range(64):  # a chain is a handful of layers; never loop on a cycle
        if isinstance(layer, asgi.CacheMiddleware | wsgi.CacheMiddleware):
            return layer
        match = getattr(layer, "match", None)
        layer = match(scope) if callable(match) else getattr(layer, "app", None)
        if layer is None:
            return None
    return None


def request_to_explain(scope: Scope, query: dict[str, list[str]]) -> RequestHead | str:
    """The request head to explain, or what is wrong with the query."""
    url = query.get("url", [""])[0]
    if not url:
        return "give url= (the URL as clients ask the edge for it, or a path)"
    parts = urlsplit(url)
    own_host = next((v for n, v in scope["headers"] if n == HOST), b"localhost")
    scheme = parts.scheme or scope.get("scheme", "http")
    authority = parts.netloc.lower() or own_host.decode("latin-1").lower()
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    pairs = [(HOST, authority.encode("latin-1"))]
    for line in query.get("header", []):
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            return f"header={line!r}: expected 'Name: value'"
        pairs.append((name.strip().lower().encode("latin-1"), value.strip().encode("latin-1")))
    method = query.get("method", ["GET"])[0].upper()
    return RequestHead(method, scheme, authority, target, Headers(pairs))


async def explain_answer(app: Any, scope: Scope) -> Reply:
    """The admin answer to an explain request, for the chain ``app``."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    request = request_to_explain(scope, query)
    if isinstance(request, str):
        return 400, f"{request}\n".encode(), _TEXT
    probe = {"type": "http", "path": request.target.partition("?")[0], "method": request.method}
    layer = _cache_for(app, {**probe, "headers": request.headers.pairs})
    if layer is None:
        return 404, b"no cache answers this URL (cache off, or no route for it)\n", _TEXT
    engine = layer.engine
    key = request.primary_key
    try:
        variants = await asyncio.to_thread(engine.store.get, key) or ()
    except StorageError as exc:
        return 503, f"store read failed: {exc}\n".encode(), _TEXT
    explanation = explain(
        request, variants, engine.clock(), engine.options, engine.not_stored.get(key)
    )
    accept = next((v for n, v in scope["headers"] if n == b"accept"), b"")
    if query.get("format", [""])[0] == "json" or b"application/json" in accept:
        return 200, json.dumps(explanation.as_dict(), indent=2).encode() + b"\n", _JSON
    return 200, explanation.as_text().encode(), _TEXT
