"""The one small error tree of edgecache."""

from __future__ import annotations


class EdgeCacheError(Exception):
    """Base of every error edgecache raises on purpose."""


class ConfigError(EdgeCacheError, ValueError):
    """A setting is invalid; raised at start, never mid-request. The message names it."""


class StorageError(EdgeCacheError):
    """A store failed. Adapters log it, count it and act as on a miss."""


class UpstreamError(EdgeCacheError):
    """The app or upstream failed; ``status`` is the answer a client should get."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.status = status
