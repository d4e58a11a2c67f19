"""The hit path's store lookup: the per-process memory store against the stores that
worker processes can share (the shared LMDB store, the disk store), for a 10 KB page.

    python -m benchmarks.shared_store

Prints microseconds per ``get`` and the ratio to the memory store, measured in the same
run. "shared, changed" is the first get after another process stored a new version
(the record is decoded once); later gets of it cost "shared".
"""

from __future__ import annotations

import tempfile
import time
import timeit

from edgecache.storage import DiskStore, MemoryStore
from edgecache.storage.shared import SharedStore
from tests.helpers import entry

N = 50_000


def _per_call(fn: object, number: int = N) -> float:
    best = min(timeit.repeat(fn, number=number, repeat=5))  # type: ignore[arg-type]
    return best / number * 1e6


def main() -> None:
    variants = (entry(("cache-control", "max-age=600"), body=b"x" * 10_000),)
    folder = tempfile.mkdtemp(prefix="edgecache-bench-")
    memory = MemoryStore(64 * 1024**2, time.time)
    shared = SharedStore(f"{folder}/shared", 64 * 1024**2, time.time)
    disk = DiskStore(f"{folder}/disk", 64 * 1024**2)
    for store in (memory, shared, disk):
        store.put("https://example.com/page", variants, 600)
    key = "https://example.com/page"

    def changed() -> None:
        shared._memo.clear()  # as after another process's put: decode once
        shared.get(key)

    base = _per_call(lambda: memory.get(key))
    rows = [
        ("memory (one process)", base),
        ("shared (LMDB + decoded copy)", _per_call(lambda: shared.get(key))),
        ("shared, changed (decode)", _per_call(changed, 5_000)),
        ("disk (diskcache)", _per_call(lambda: disk.get(key), 5_000)),
    ]
    print(f"{'store':32} {'us/get':>8} {'x memory':>9}")
    for name, cost in rows:
        print(f"{name:32} {cost:8.2f} {cost / base:9.1f}")


if __name__ == "__main__":
    main()
