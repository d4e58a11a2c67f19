"""WSGI middlewares: the same class names and options as their ASGI twins."""

from edgecache.wsgi.auth import BasicAuthMiddleware
from edgecache.wsgi.cache import CacheMiddleware, request_from_environ
from edgecache.wsgi.compress import CompressMiddleware

__all__ = ["BasicAuthMiddleware", "CacheMiddleware", "CompressMiddleware", "request_from_environ"]
