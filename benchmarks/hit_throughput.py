"""Cache-hit throughput of EdgeCache(app) against the same bare app, per server.

Both serve the same 10 KB HTML (benchmarks/apps.py) from one server process pinned to
core 0 (uvicorn with httptools + uvloop, and granian), loaded by wrk on core 1,
alternately, in the same minute. Goal: the cached hit reaches at least 80% of the bare
app's requests per second.

    python -m benchmarks.hit_throughput [--seconds 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import urllib.request

from benchmarks.common import SERVERS, wrk


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--servers", default="uvicorn,granian")
    args = parser.parse_args()
    for server in args.servers.split(","):
        start_server = SERVERS[server]
        results: dict[str, list[float]] = {"bare": [], "cached": []}
        p99: dict[str, list[float]] = {"bare": [], "cached": []}
        for _ in range(args.rounds):
            for name in ("bare", "cached"):
                with start_server(f"benchmarks.apps:{name}") as port:
                    url = f"http://127.0.0.1:{port}/page"
                    with urllib.request.urlopen(url) as first:  # warm: fill the cache
                        first.read()
                    wrk(url, seconds=2)
                    r = wrk(url, seconds=args.seconds)
                    assert r["errors"] == 0, r
                    results[name].append(r["rps"])
                    p99[name].append(r["p99_ms"])
        bare, cached = (statistics.median(results[n]) for n in ("bare", "cached"))
        for label, name in (("bare app", "bare"), ("EdgeCache hit", "cached")):
            runs = ", ".join(f"{x:.0f}" for x in results[name])
            print(
                f"{server:8s} {label:14s}: {statistics.median(results[name]):8.0f} req/s "
                f"p99 {statistics.median(p99[name]):.2f} ms (runs {runs})"
            )
        print(f"{server:8s} ratio cached/bare: {cached / bare:.2f}  (goal >= 0.80)")


if __name__ == "__main__":
    main()
