"""The engine's writes from two threads: the encoder thread adding a copy to an entry
(a get, then a put) and the loop purging it must not interleave, or the purged entry
comes back with its copy."""

from __future__ import annotations

import threading
import time

from edgecache.config import Settings
from edgecache.engine import Engine
from edgecache.storage import MemoryStore, Variants
from tests.helpers import entry

KEY = "http://example.com/page"


class PausingStore(MemoryStore):
    """A memory store whose reads from the thread named ``copier`` wait for a signal,
    so a test can put the loop's purge right between that thread's get and put."""

    def __init__(self) -> None:
        super().__init__(10**7, time.time)
        self.reading = threading.Event()
        self.go_on = threading.Event()

    def get(self, key: str) -> Variants | None:
        found = super().get(key)
        if threading.current_thread().name == "copier":
            self.reading.set()
            self.go_on.wait(5)
        return found


def test_a_copy_made_of_a_purged_entry_does_not_bring_it_back() -> None:
    store = PausingStore()
    engine = Engine(Settings.from_env(), store, time.time)
    stored = entry(("Cache-Control", "max-age=600"), at=time.time())
    engine.save(KEY, stored)
    copier = threading.Thread(target=engine._save_copy, args=(KEY, stored), name="copier")
    copier.start()
    assert store.reading.wait(5)  # the copier has read the entry, not yet written
    purger = threading.Thread(target=engine.purge, kwargs={"url": KEY})
    purger.start()
    time.sleep(0.2)  # the purge runs now, or waits for the copier's write to finish
    store.go_on.set()
    copier.join(5)
    purger.join(5)
    assert store.get(KEY) is None  # purged, and it stays purged
