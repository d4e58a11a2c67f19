"""Python's CPU per request, in one process, without the kernel's socket costs or the
machine's noise from other processes (CPU time, best of several rounds):

- ``EdgeCache(app)``'s hit against the bare ASGI app (benchmarks/apps.py), each called
  with a fixed http scope: what the middleware adds to a hit under any server;
- the wire layer's whole miss path (``edgecache proxy``'s handler over the upstream
  client, to a uvicorn origin's ``no-store`` page): what a miss costs the edge, with
  its socket reads and writes to the origin included.

    python -m benchmarks.cpu_per_request [--requests 5000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from benchmarks.apps import bare, cached
from benchmarks.common import uvicorn_app
from benchmarks.metrics_cost import CountingTransport, _connection
from edgecache.proxy.traffic import CountingLog

SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/page",
    "raw_path": b"/page",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk"), (b"accept", b"*/*")],
    "client": ("127.0.0.1", 5000),
    "server": ("127.0.0.1", 8000),
}
MISS = b"GET /miss HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: dict[str, Any]) -> None:
    return None


async def _asgi(app: Any, requests: int) -> float:
    started = time.process_time()
    for _ in range(requests):
        await app(dict(SCOPE), _receive, _send)
    return (time.process_time() - started) / requests


async def _misses(upstream: int, requests: int, rounds: int) -> float:
    conn = await _connection(upstream, CountingLog("off"))
    transport = conn.transport
    assert isinstance(transport, CountingTransport)
    loop = asyncio.get_running_loop()

    async def one() -> None:
        # The answer is whole once the page's 10 KB have been handed to the transport.
        target = transport.sent + 10240
        done = loop.create_future()
        write, writelines = transport.write, transport.writelines

        def check() -> None:
            if transport.sent >= target and not done.done():
                done.set_result(None)

        transport.write = lambda data: (write(data), check())[0]  # type: ignore[method-assign]
        transport.writelines = lambda parts: (writelines(parts), check())[0]  # type: ignore[method-assign]
        conn.data_received(MISS)
        await done
        transport.write, transport.writelines = write, writelines  # type: ignore[method-assign]
        await asyncio.sleep(0)  # the exchange's bookkeeping after its last write

    for _ in range(200):
        await one()
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(requests // 5):
            await one()
        best = min(best, (time.process_time() - started) / (requests // 5))
    return best


async def _measure(upstream: int, requests: int, rounds: int) -> dict[str, float]:
    await _asgi(cached, 100)  # the first request stores the page
    best = {"bare ASGI app": float("inf"), "EdgeCache(app) hit": float("inf")}
    for _ in range(rounds):
        best["bare ASGI app"] = min(best["bare ASGI app"], await _asgi(bare, requests))
        best["EdgeCache(app) hit"] = min(best["EdgeCache(app) hit"], await _asgi(cached, requests))
    best["wire miss (proxy)"] = await _misses(upstream, requests, rounds)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    import uvloop

    with uvicorn_app("benchmarks.apps:origin", core=1) as upstream:
        best = uvloop.run(_measure(upstream, args.requests, args.rounds))
    for name, seconds in best.items():
        print(f"{name:20s}: {seconds * 1e6:7.2f} us of CPU per request (best of {args.rounds})")
    added = best["EdgeCache(app) hit"] - best["bare ASGI app"]
    print(f"EdgeCache(app) adds {added * 1e6:.2f} us of Python to a hit")


if __name__ == "__main__":
    main()
