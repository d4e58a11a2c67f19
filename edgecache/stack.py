"""EdgeCache(app): recognises a WSGI or an ASGI app and wraps it in the edge chain.

The chain's order is part of the contract (DESIGN.md): auth -> compress -> cache -> app.
The cache layer is here now; compression and auth join in this function as they land.
"""

from __future__ import annotations

import inspect
from typing import Any, Literal

from edgecache import asgi, wsgi
from edgecache.config import Settings
from edgecache.errors import ConfigError

Interface = Literal["auto", "asgi", "wsgi"]


def detect_interface(app: Any) -> Literal["asgi", "wsgi"]:
    """ASGI 3 apps are coroutine functions (or objects whose ``__call__`` is one)."""
    if inspect.iscoroutinefunction(app):
        return "asgi"
    call = getattr(app, "__call__", None)  # noqa: B004 - we need the bound method itself
    if call is not None and inspect.iscoroutinefunction(call):
        return "asgi"
    if callable(app):
        return "wsgi"
    raise ConfigError(f"EdgeCache needs a WSGI or ASGI application, got {app!r}")


def EdgeCache(app: Any, *, interface: Interface = "auto", **options: Any) -> Any:
    """Wrap ``app`` in edgecache's chain; returns the same kind of app (WSGI or ASGI).

    Keyword arguments are settings (see ``Settings``) or ``store=`` / ``clock=``; unset
    settings come from ``EDGECACHE_*`` variables, then defaults.
    """
    store = options.pop("store", None)
    clock = options.pop("clock", None)
    settings = options.pop("settings", None) or Settings.from_env(**options)
    kind = detect_interface(app) if interface == "auto" else interface
    if kind not in ("asgi", "wsgi"):
        raise ConfigError(f"interface={interface!r}: expected 'auto', 'asgi' or 'wsgi'")
    extra: dict[str, Any] = {"store": store}
    if clock is not None:
        extra["clock"] = clock
    if kind == "asgi":
        return asgi.CacheMiddleware(app, settings, **extra)
    return wsgi.CacheMiddleware(app, settings, **extra)
