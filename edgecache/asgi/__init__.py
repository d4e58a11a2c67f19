"""ASGI middlewares: the same class names and options as their WSGI twins."""

from edgecache.asgi.auth import BasicAuthMiddleware
from edgecache.asgi.cache import CacheMiddleware, request_from_scope
from edgecache.asgi.compress import CompressMiddleware

__all__ = ["BasicAuthMiddleware", "CacheMiddleware", "CompressMiddleware", "request_from_scope"]
