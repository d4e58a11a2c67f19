"""Stores: dumb keepers of variants under a primary key, behind one small protocol."""

from edgecache.storage.base import Store, Variants
from edgecache.storage.disk import DiskStore
from edgecache.storage.memory import MemoryStore

__all__ = ["DiskStore", "MemoryStore", "Store", "Variants"]
