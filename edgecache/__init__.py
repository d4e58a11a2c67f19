"""edgecache: the edge layer nginx plays in front of gunicorn, as Python middleware."""

from edgecache.config import Settings
from edgecache.errors import ConfigError, EdgeCacheError, StorageError, UpstreamError
from edgecache.stack import EdgeCache, purge

__all__ = [
    "ConfigError",
    "EdgeCache",
    "EdgeCacheError",
    "Settings",
    "StorageError",
    "UpstreamError",
    "purge",
]
__version__ = "0.1.0"
