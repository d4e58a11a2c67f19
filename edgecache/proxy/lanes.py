"""The chain ``build_app`` made, read back as lanes the wire layer's own handler runs.

A lane is one route's layers, as objects: header rules, the auth gate, the compression
settings, the cache's runtime and the forwarder to its pool. The handler
(``proxy.handler``) drives them itself, with no ASGI messages in between, and hands
whatever it does not run itself (static files, redirects, apps under ``serve``, admin
endpoints, websockets) to the chain as it is. Both paths share the same objects: one
store, one coalescer, one balancer per pool.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from edgecache.asgi.auth import BasicAuthMiddleware
from edgecache.asgi.cache import CacheMiddleware
from edgecache.asgi.compress import CompressMiddleware
from edgecache.proxy.admin import PREFIX, AdminMiddleware
from edgecache.proxy.forward import Forwarder
from edgecache.proxy.router import HeaderRules, Router
from edgecache.proxy.routes import HeaderRule


class Lane(NamedTuple):
    chain: Any
    """The route's ASGI chain, for what the handler does not run itself."""
    rules: tuple[HeaderRule, ...]
    auth: BasicAuthMiddleware | None
    compress: CompressMiddleware | None
    cache: CacheMiddleware | None
    forwarder: Forwarder | None
    """None when the route's target is not an upstream pool (static files, an app)."""
    read_timeout: float | None = None
    """The route's own, over its pool's (nginx's ``proxy_read_timeout`` per location)."""
    name: str = "/"
    """The route's label in the request metrics: its host (if any) and path prefix."""


def lane_of(chain: Any) -> Lane:
    """The layers of one route's chain, outermost first, as EdgeCache stacks them."""
    app = chain
    rules: tuple[HeaderRule, ...] = ()
    if isinstance(app, HeaderRules):
        rules, app = app.rules, app.app
    auth = compress = cache = None
    if isinstance(app, BasicAuthMiddleware):
        auth, app = app, app.app
    if isinstance(app, CompressMiddleware):
        compress, app = app, app.app
    if isinstance(app, CacheMiddleware):
        cache, app = app, app.app
    forwarder = app if isinstance(app, Forwarder) else None
    return Lane(chain, rules, auth, compress, cache, forwarder)


class Lanes:
    """Finds the lane of a request: admin paths and unmatched routes have none."""

    def __init__(self, app: Any) -> None:
        self.admin_prefix: str | None = None
        if isinstance(app, AdminMiddleware):
            self.admin_prefix, app = PREFIX, app.app
        self.router: Router | None = app if isinstance(app, Router) else None
        self.single: Lane | None = None
        self.by_chain: dict[int, Lane] = {}
        if self.router is None:
            self.single = lane_of(app)
        else:
            for route, chain in self.router.routes:
                lane = lane_of(chain)._replace(name=f"{route.host or ''}{route.path}")
                if route.pool is not None and route.settings is not None:
                    lane = lane._replace(read_timeout=route.settings.read_timeout)
                self.by_chain[id(chain)] = lane

    def find(self, authority: str, path: str) -> Lane | None:
        """``path`` percent-decoded, as the routes and auth rules see it."""
        if self.admin_prefix is not None and path.startswith(self.admin_prefix):
            return None
        if self.router is None:
            return self.single
        chain = self.router.match_path(authority, path)
        return None if chain is None else self.by_chain.get(id(chain))
