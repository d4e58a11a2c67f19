"""Django MIDDLEWARE entries, configured in ``settings.py``::

    MIDDLEWARE = ["edgecache.django.EdgeCacheMiddleware", ...]  # first: it is the edge
    EDGECACHE = {"max_bytes": "64M", "compress": True}         # edgecache settings

Unset settings come from ``EDGECACHE_*`` variables, then defaults, as everywhere. The
layers compose as ``EdgeCache(app)`` does (compress -> cache -> views), and
``CacheMiddleware`` and ``CompressMiddleware`` are entries of their own. Sync only:
under ASGI, Django runs them in a thread.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponseBase

from edgecache.django.cache import CacheMiddleware, GetResponse
from edgecache.django.compress import CompressMiddleware
from edgecache.django.convert import settings_from_django

__all__ = ["CacheMiddleware", "CompressMiddleware", "EdgeCacheMiddleware"]


class EdgeCacheMiddleware:
    """The edge chain in one MIDDLEWARE entry, from ``settings.EDGECACHE``."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: GetResponse) -> None:
        settings, extra = settings_from_django()
        if settings.auth:
            # Refused rather than ignored: a page meant to be protected must not be open.
            raise ImproperlyConfigured(
                "settings.EDGECACHE: 'auth' is not offered by the Django middleware; "
                "protect views with django.contrib.auth, or run edgecache proxy in front"
            )
        chain: Any = get_response
        if settings.cache:
            chain = CacheMiddleware(chain, settings, encoded_copies=settings.compress, **extra)
        if settings.compress:
            chain = CompressMiddleware(chain, settings)
        self.chain: GetResponse = chain

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.chain(request)
