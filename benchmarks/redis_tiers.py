"""Hit throughput from the Redis tier and the local tier, against the plain memory
store, in the same run: three ``edgecache proxy`` processes (core 0) in front of the
same origin, redis-server and wrk on core 1.

- memory: ``--store memory``;
- local tier: ``--store redis://...`` (hits come from the node's memory);
- Redis tier: the same with ``--local-ttl 0.001``, so every hit is read from Redis.

    python -m benchmarks.redis_tiers [--seconds 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

from benchmarks.common import edgecache_proxy, free_port, uvicorn_app, wait_for_port, wrk


@contextlib.contextmanager
def redis_server(core: int = 1) -> Iterator[int]:
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is not installed: apt-get install -y redis-server")
    port = free_port()
    proc = subprocess.Popen(
        [
            "taskset",
            "-c",
            str(core),
            "redis-server",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield port
    finally:
        proc.kill()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    rps: dict[str, list[float]] = {}
    with uvicorn_app("benchmarks.apps:origin", core=1) as origin, redis_server() as rport:
        store = f"redis://127.0.0.1:{rport}/0"
        cases = {
            "memory store": (),
            "redis, local tier": ("--store", store, "--redis-prefix", "bench-local"),
            "redis, Redis tier": (
                "--store",
                store,
                "--redis-prefix",
                "bench-remote",
                "--local-ttl",
                "0.001",
            ),
        }
        for _ in range(args.rounds):
            for name, extra in cases.items():
                with edgecache_proxy("--upstream", f"http://127.0.0.1:{origin}", *extra) as port:
                    url = f"http://127.0.0.1:{port}/page"
                    with urllib.request.urlopen(url) as resp:
                        resp.read()
                    time.sleep(0.2)  # the entry's write to Redis is asynchronous
                    wrk(url, 2)
                    result = wrk(url, args.seconds)
                    assert result["errors"] == 0, (name, result)
                    rps.setdefault(name, []).append(result["rps"])
    base = statistics.median(rps["memory store"])
    for name, runs in rps.items():
        value = statistics.median(runs)
        listed = ", ".join(f"{x:.0f}" for x in runs)
        print(f"{name:18s}: {value:8.0f} req/s ({value / base:.2f} of memory; runs {listed})")


if __name__ == "__main__":
    main()
