"""Django MIDDLEWARE entries, configured in ``settings.py``::

    MIDDLEWARE = ["edgecache.django.EdgeCacheMiddleware", ...]  # first: it is the edge
    EDGECACHE = {"max_bytes": "64M", "compress": True}         # edgecache settings

Unset settings come from ``EDGECACHE_*`` variables, then defaults, as everywhere. The
layers compose as ``EdgeCache(app)`` does (auth -> compress -> cache -> views), and
``BasicAuthMiddleware``, ``CompressMiddleware`` and ``CacheMiddleware`` are entries of
their own. Each runs sync under WSGI and async under ASGI (when the middlewares below
it can too), as Django chooses.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponseBase

from edgecache.django.auth import BasicAuthMiddleware
from edgecache.django.cache import CacheMiddleware
from edgecache.django.compress import CompressMiddleware
from edgecache.django.convert import GetResponse, Middleware, settings_from_django

__all__ = ["BasicAuthMiddleware", "CacheMiddleware", "CompressMiddleware", "EdgeCacheMiddleware"]


class EdgeCacheMiddleware(Middleware):
    """The edge chain in one MIDDLEWARE entry, from ``settings.EDGECACHE``."""

    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)
        settings, extra = settings_from_django()
        chain: Any = get_response
        if settings.cache:
            chain = CacheMiddleware(chain, settings, encoded_copies=settings.compress, **extra)
        if settings.compress:
            chain = CompressMiddleware(chain, settings)
        if settings.auth:
            clock = {"clock": extra["clock"]} if "clock" in extra else {}
            chain = BasicAuthMiddleware(chain, settings, **clock)
        self.chain: GetResponse = chain  # each layer in the mode of get_response

    def call(self, request: HttpRequest) -> HttpResponseBase:
        return self.chain(request)

    async def acall(self, request: HttpRequest) -> HttpResponseBase:
        return await self.chain(request)
