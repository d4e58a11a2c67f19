"""Cache-hit throughput of EdgeCache(app) against the same bare app, per server.

Both serve the same 10 KB HTML (benchmarks/apps.py) from one server process pinned to
core 0 (uvicorn with httptools + uvloop, and granian), loaded by wrk on core 1,
alternately, in the same minute. Two kinds of hit: plain (identity) and compressed
(``Accept-Encoding: br``, answered from the stored br copy). Goal: each reaches at
least 85% of the bare app's requests per second.

    python -m benchmarks.hit_throughput [--seconds 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
import urllib.request

from benchmarks.common import SERVERS, wrk

BR = {"Accept-Encoding": "br"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--servers", default="uvicorn,granian")
    args = parser.parse_args()
    for server in args.servers.split(","):
        start_server = SERVERS[server]
        modes = {"bare": ("bare", {}), "hit": ("cached", {}), "br hit": ("cached", BR)}
        results: dict[str, list[float]] = {name: [] for name in modes}
        p99: dict[str, list[float]] = {name: [] for name in modes}
        for _ in range(args.rounds):
            for mode, (app, headers) in modes.items():
                with start_server(f"benchmarks.apps:{app}") as port:
                    url = f"http://127.0.0.1:{port}/page"
                    request = urllib.request.Request(url, headers=headers)
                    with urllib.request.urlopen(request) as first:  # warm: fill the cache
                        first.read()
                    time.sleep(0.5)  # the stored br copy is made on a worker thread
                    wrk(url, seconds=2, headers=headers)
                    r = wrk(url, seconds=args.seconds, headers=headers)
                    assert r["errors"] == 0, r
                    results[mode].append(r["rps"])
                    p99[mode].append(r["p99_ms"])
        bare = statistics.median(results["bare"])
        for mode in modes:
            runs = ", ".join(f"{x:.0f}" for x in results[mode])
            print(
                f"{server:8s} {mode:8s}: {statistics.median(results[mode]):8.0f} req/s "
                f"p99 {statistics.median(p99[mode]):.2f} ms (runs {runs})"
            )
        for mode in ("hit", "br hit"):
            ratio = statistics.median(results[mode]) / bare
            print(f"{server:8s} ratio {mode}/bare: {ratio:.2f}  (goal >= 0.85)")


if __name__ == "__main__":
    main()
