"""How the hit path's cost changes with the number of stored entries (goal: flat).

Calls the ASGI CacheMiddleware in process (no server, no sockets), with 1 thousand to
1 million entries in the memory store, hitting random stored keys. Prints microseconds
per hit and the ratio to the 1 thousand case, measured in the same run.

    python -m benchmarks.hit_scaling [--hits 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from typing import Any

from benchmarks.apps import bare
from edgecache.asgi import CacheMiddleware, request_from_scope
from edgecache.config import Settings


def scope_for(i: int) -> dict[str, Any]:
    path = f"/item/{i}"
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "scheme": "http",
        "headers": [(b"host", b"bench.local"), (b"user-agent", b"wrk"), (b"accept", b"*/*")],
    }


async def _send(_message: Any) -> None:
    return None


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b""}


async def measure(entries: int, hits: int) -> float:
    app = CacheMiddleware(bare, Settings(max_bytes=64 * 1024**3))
    await app(scope_for(0), _receive, _send)  # one real miss builds the entry
    key0 = request_from_scope(scope_for(0)).primary_key
    variants = app.engine.store.get(key0)
    assert variants is not None
    template = key0[: -len("/item/0")]
    for i in range(1, entries):  # the same entry object under many keys: cheap to fill
        app.engine.store.put(f"{template}/item/{i}", variants, 3600)
    scopes = [scope_for(random.randrange(entries)) for _ in range(hits)]
    start = time.perf_counter()
    for scope in scopes:
        await app(scope, _receive, _send)
    return (time.perf_counter() - start) / hits * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hits", type=int, default=200_000)
    args = parser.parse_args()
    base = None
    for entries in (1_000, 10_000, 100_000, 1_000_000):
        us = asyncio.run(measure(entries, args.hits))
        base = base or us
        print(f"{entries:>9,} entries: {us:6.2f} us per hit  (x{us / base:.2f} of 1,000)")


if __name__ == "__main__":
    main()
