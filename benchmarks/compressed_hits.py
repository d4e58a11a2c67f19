"""Compressed cache hits: edgecache against nginx (proxy_cache + gzip level 5).

Both sit in front of the same origin (10 KB HTML shaped like a real page,
benchmarks/apps.py:bare under uvicorn on core 1), both run on core 0, and wrk (core 1)
sends ``Accept-Encoding: gzip, deflate, br, zstd``, alternately, in the same minute.
nginx gzips every hit; edgecache (``EdgeCache(app)`` under uvicorn, and under granian)
sends the brotli copy it made once at quality 11.
Goal: edgecache >= 3x nginx's requests/s with >= 15% fewer bytes per response.

    python -m benchmarks.compressed_hits [--seconds 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
import urllib.request

from benchmarks.common import SERVERS, nginx, uvicorn_app, wrk

ACCEPT = {"Accept-Encoding": "gzip, deflate, br, zstd"}

NGINX_CONF = """
proxy_cache_path {tmp}/cache levels=1:2 keys_zone=c:10m max_size=100m inactive=1h;
server {{
    listen 127.0.0.1:{port};
    access_log off;
    gzip on;
    gzip_comp_level 5;
    gzip_proxied any;
    gzip_vary on;
    location / {{
        proxy_pass http://127.0.0.1:{upstream};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_cache c;
        proxy_cache_valid 200 1h;
    }}
}}
"""


def fetch(url: str) -> tuple[int, str]:
    """Body bytes and coding of one response, as the benchmark's client gets it."""
    req = urllib.request.Request(url, headers=ACCEPT)
    with urllib.request.urlopen(req) as resp:
        return len(resp.read()), resp.headers.get("Content-Encoding", "identity")


def warm(url: str) -> tuple[int, str]:
    for _ in range(3):
        fetch(url)
    time.sleep(0.5)  # let edgecache's background encoder finish its stored copy
    return fetch(url)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    names = ("nginx", "edgecache-uvicorn", "edgecache-granian")
    rps: dict[str, list[float]] = {name: [] for name in names}
    size: dict[str, tuple[int, str]] = {}
    with uvicorn_app("benchmarks.apps:bare", core=1) as origin:
        for _ in range(args.rounds):
            for name in names:
                if name == "nginx":
                    server = nginx(NGINX_CONF, upstream=origin, core=0)
                else:
                    server = SERVERS[name.split("-")[1]]("benchmarks.apps:cached", core=0)
                with server as port:
                    url = f"http://127.0.0.1:{port}/page"
                    size[name] = warm(url)
                    rps[name].append(wrk(url, args.seconds, headers=ACCEPT)["rps"])
    for name in names:
        runs = ", ".join(f"{x:.0f}" for x in rps[name])
        body, coding = size[name]
        print(
            f"{name:18s}: {statistics.median(rps[name]):8.0f} req/s (runs {runs}); "
            f"{body} body bytes per response ({coding})"
        )
    base = statistics.median(rps["nginx"])
    for name in names[1:]:
        print(f"{name}/nginx requests/s: {statistics.median(rps[name]) / base:.2f}x (goal >= 3)")
    saved = 1 - size["edgecache-granian"][0] / size["nginx"][0]
    print(f"bytes per response: {saved:.0%} fewer than nginx (goal >= 15%)")


if __name__ == "__main__":
    main()
