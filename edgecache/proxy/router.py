"""Dispatch by host and longest path prefix to each route's own chain."""

from __future__ import annotations

import time
from typing import Any

from edgecache.asgi.types import ASGIApp, Message, Receive, Scope, Send
from edgecache.config import Settings
from edgecache.engine import make_store
from edgecache.proxy.forward import Forwarder, send_plain
from edgecache.proxy.routes import HeaderRule, Route, RouteTable
from edgecache.proxy.static import StaticFiles
from edgecache.stack import EdgeCache
from edgecache.storage import Store


class HeaderRules:
    """Sets response headers where a rule's pattern matches the path (or always)."""

    def __init__(self, app: ASGIApp, rules: tuple[HeaderRule, ...]) -> None:
        self.app = app
        self.rules = rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        updates = [
            pair
            for rule in self.rules
            if rule.pattern is None or rule.pattern.search(path)
            for pair in rule.headers
        ]
        if not updates:
            await self.app(scope, receive, send)
            return
        names = {name for name, _ in updates}

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [h for h in message["headers"] if h[0].lower() not in names]
                message = {**message, "headers": kept + updates}
            await send(message)

        await self.app(scope, receive, with_headers)


def redirect_app(route: Route) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        target = route.redirect or "/"
        if target.endswith("/"):  # keep what followed the prefix, like $request_uri
            target += scope["path"][len(route.path) :].lstrip("/")
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        await send(
            {
                "type": "http.response.start",
                "status": route.status,
                "headers": [(b"location", target.encode("latin-1")), (b"content-length", b"0")],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    return app


class Router:
    """An ASGI app over a route table; lifespan starts and stops the pools."""

    def __init__(self, table: RouteTable, base: Settings, store: Store | None = None) -> None:
        """One Forwarder (balancer, health prober) per pool, and one ``store`` (built
        from ``base`` when not given) for the whole table, so ``max_bytes`` is a total
        over every route, not a size per route."""
        self.pools: dict[str, Forwarder] = {}
        self.store = store
        if self.store is None and any(r.settings is None or r.settings.cache for r in table.routes):
            self.store = make_store(base, time.time)
        self._pool_settings = table.pools
        built = [(route, self._app(route, base)) for route in table.routes]
        # Host-specific routes first, then the longest prefix.
        self.routes = sorted(built, key=lambda r: (r[0].host is None, -len(r[0].path)))

    def _app(self, route: Route, base: Settings) -> ASGIApp:
        settings = route.settings or base
        if route.redirect is not None:
            app: ASGIApp = redirect_app(route)
        else:
            if route.static is not None:
                target: Any = StaticFiles(route.static, spa=route.spa, codings=settings.codings)
            else:
                name = route.pool or ""
                if name not in self.pools:
                    self.pools[name] = Forwarder(self._pool_settings.get(name, settings))
                target = self.pools[name]
            app = EdgeCache(target, settings=settings, interface="asgi", store=self.store)
        return HeaderRules(app, route.rules) if route.rules else app

    def match(self, scope: Scope) -> ASGIApp | None:
        host = next((v for n, v in scope["headers"] if n == b"host"), b"").decode("latin-1")
        return self.match_path(host, scope["path"])

    def match_path(self, authority: str, path: str) -> ASGIApp | None:
        """The chain of the route for ``authority`` (Host, perhaps with a port) and the
        percent-decoded ``path``: host-specific routes first, then the longest prefix."""
        host = authority.rsplit(":", 1)[0] if not authority.endswith("]") else authority
        host = host.lower()
        for route, app in self.routes:
            if route.host is not None and route.host != host:
                continue
            if path.startswith(route.path) or path == route.path.rstrip("/"):
                return app
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        app = self.match(scope)
        if app is None:
            if scope["type"] == "http":
                await send_plain(send, 404, "Not Found")
            return
        await app(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                for forwarder in self.pools.values():
                    await forwarder.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for forwarder in self.pools.values():
                    await forwarder.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
