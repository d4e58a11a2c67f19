"""The hit path's cost of the request metrics: counting on against counting off.

The wire layer's whole hit path runs in this process (the parser, the rules, the
proxy's handler, the replayed hit, the answer's bytes handed to a transport that only
counts them), so what is measured is Python's work per hit, in CPU time, without the
kernel's socket costs or the machine's noise from other processes; the best of several
rounds of each, alternated. Counting on is the proxy as it runs (``CountingLog``: status
classes, latency, routes, outcomes); off is a log that does nothing. Both with the
access log off, so the difference is the metrics alone. Goal: <= 3% of the hit's cost.

    python -m benchmarks.metrics_cost [--hits 5000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from benchmarks.common import uvicorn_app
from edgecache.config import Settings
from edgecache.proxy.handler import EdgeHandler
from edgecache.proxy.server import build_app
from edgecache.proxy.traffic import CountingLog
from edgecache.wire.accesslog import AccessLog
from edgecache.wire.config import WireConfig
from edgecache.wire.connection import Connection
from edgecache.wire.server import WireServer

REQUEST = b"GET /page HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"


class CountingTransport:
    """A transport that takes the bytes and counts them."""

    def __init__(self) -> None:
        self.sent = 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 50000) if name == "peername" else default

    def write(self, data: bytes) -> None:
        self.sent += len(data)

    def writelines(self, parts: Any) -> None:
        for part in parts:
            self.sent += len(part)

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


async def _connection(upstream: int, log: AccessLog) -> Connection:
    settings = Settings.from_env(upstream=f"http://127.0.0.1:{upstream}", access_log="off")
    handler = EdgeHandler(build_app(settings), lifespan="on")
    server = WireServer(handler, WireConfig.from_settings(settings), log)
    await server.start()
    conn = Connection(server, "http")
    conn.connection_made(CountingTransport())  # type: ignore[arg-type]
    conn.data_received(REQUEST)  # the miss, in a task
    await asyncio.sleep(0.5)
    for _ in range(100):  # the first hit, then replays
        conn.data_received(REQUEST)
    return conn


def _cpu_per_hit(conn: Connection, hits: int) -> float:
    started = time.process_time()
    for _ in range(hits):
        conn.data_received(REQUEST)
    return (time.process_time() - started) / hits


async def _measure(upstream: int, hits: int, rounds: int) -> dict[str, float]:
    conns = {
        "counting on": await _connection(upstream, CountingLog("off")),
        "counting off": await _connection(upstream, AccessLog("off", counting=False)),
    }
    best = dict.fromkeys(conns, float("inf"))
    for _ in range(rounds):
        for name, conn in conns.items():
            best[name] = min(best[name], _cpu_per_hit(conn, hits))
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hits", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    import uvloop

    with uvicorn_app("benchmarks.apps:origin", core=1) as upstream:
        best = uvloop.run(_measure(upstream, args.hits, args.rounds))
    for name, seconds in best.items():
        print(f"{name:13s}: {seconds * 1e6:6.2f} us of CPU per hit (best of {args.rounds})")
    cost = best["counting on"] / best["counting off"] - 1
    print(f"metrics cost on the hit path: {cost:+.1%} (goal <= 3%)")


if __name__ == "__main__":
    main()
