"""EdgeCache(app): recognises a WSGI or an ASGI app and wraps it in the edge chain.

The chain's order is part of the contract (DESIGN.md): auth -> compress -> cache -> app.
Compression sits outside the cache so the cache stores identity bodies and, beside them,
the encoded copies it makes once; auth is outermost, so a refused request reaches
neither.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
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

    Keyword arguments are settings (see ``Settings``), ``store=`` (a setting such as
    ``"disk"``, or a Store object) and ``clock=``; unset settings come from
    ``EDGECACHE_*`` variables, then defaults.
    """
    store = options.pop("store", None)
    if isinstance(store, str):  # the store *setting* ("memory", "disk"), not an object
        options["store"], store = store, None
    clock = options.pop("clock", None)
    settings = options.pop("settings", None) or Settings.from_env(**options)
    kind = detect_interface(app) if interface == "auto" else interface
    if kind not in ("asgi", "wsgi"):
        raise ConfigError(f"interface={interface!r}: expected 'auto', 'asgi' or 'wsgi'")
    extra: dict[str, Any] = {"store": store, "encoded_copies": settings.compress}
    if clock is not None:
        extra["clock"] = clock
    layers = asgi if kind == "asgi" else wsgi
    chain = layers.CacheMiddleware(app, settings, **extra) if settings.cache else app
    if settings.compress:
        chain = layers.CompressMiddleware(chain, settings)
    if settings.auth:
        auth_extra = {"clock": clock} if clock is not None else {}
        chain = layers.BasicAuthMiddleware(chain, settings, **auth_extra)
    return chain


def find_layers(app: Any, wanted: Callable[[Any], bool]) -> list[Any]:
    """The layers inside a chain EdgeCache (or the proxy) built for which ``wanted``
    is true, each once: it follows ``app`` attributes and a router's ``routes``."""
    found, seen = [], set()
    stack = [app]
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if wanted(layer):
            found.append(layer)
        for attr in ("app", "routes"):
            inner = getattr(layer, attr, None)
            if isinstance(inner, list):
                stack.extend(item[1] if isinstance(item, tuple) else item for item in inner)
            elif inner is not None:
                stack.append(inner)
    return found


def cache_layers(app: Any) -> list[Any]:
    """The cache middlewares inside a chain EdgeCache (or the proxy) built."""
    return find_layers(
        app, lambda layer: isinstance(layer, asgi.CacheMiddleware | wsgi.CacheMiddleware)
    )


def purge(
    app: Any, *, url: str | None = None, prefix: str | None = None, tag: str | None = None
) -> int:
    """Purge every cache inside ``app`` by exact URL, URL prefix or surrogate key (each
    store once, however many routes share it)."""
    engines = {id(layer.engine.store): layer.engine for layer in cache_layers(app)}
    return sum(e.purge(url=url, prefix=prefix, tag=tag) for e in engines.values())
