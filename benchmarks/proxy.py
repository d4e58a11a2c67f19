"""edgecache proxy against Debian's nginx, same minute, one core each, access logs on.

- hit: nginx ``proxy_cache`` vs edgecache's memory cache (goal >= 1.2x nginx);
- compressed hit: a stored br copy vs nginx ``proxy_cache`` + ``gzip_comp_level 5``,
  which compresses every hit (goal >= 8x nginx);
- miss: ``no-store`` answers through nginx's keep-alive upstream pool vs edgecache's own
  keep-alive client (goal >= 0.5x nginx);
- p99 latency of each, from wrk (goal: no worse than 1.5x nginx's);
- RSS of each proxy process while 1 GB streams through it, down and up (goal: flat).

Both proxies run with their default access log written to a file (nginx's combined
``access_log``, edgecache's ``--access-log combined``). The proxies run on core 0; the
origin (an nginx serving the 10 KB page of benchmarks/apps.py as a static file, so that
the origin is not the bottleneck) and wrk on core 1. Streams use the uvicorn origin of
benchmarks/apps.py, which counts uploaded bytes.

    python -m benchmarks.proxy [--seconds 10] [--rounds 2] [--stream-bytes 1000000000]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request

from benchmarks.apps import BODY
from benchmarks.common import edgecache_proxy, nginx, uvicorn_app, wrk

ORIGIN_CONF = """
server {{
    listen 127.0.0.1:{port};
    access_log off;
    keepalive_requests 100000;
    default_type text/html;
    location = /page {{ alias {root}/page.html; add_header Cache-Control "max-age=3600"; }}
    location = /miss {{ alias {root}/page.html; add_header Cache-Control "no-store"; }}
}}
"""

NGINX_CONF = """
proxy_cache_path {tmp}/cache levels=1:2 keys_zone=c:10m max_size=100m inactive=1h;
upstream origin {{
    server 127.0.0.1:{upstream};
    keepalive 64;
}}
upstream streams {{
    server 127.0.0.1:{streams};
    keepalive 8;
}}
server {{
    listen 127.0.0.1:{port};
    access_log {tmp}/access.log;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    gzip on;
    gzip_comp_level 5;
    gzip_types text/html;
    location / {{
        proxy_pass http://origin;
        proxy_cache c;
        proxy_cache_valid 200 1h;
    }}
    location /miss {{
        proxy_pass http://origin;
    }}
    location /big {{
        proxy_pass http://streams;
        proxy_buffering off;
    }}
    location /upload {{
        proxy_pass http://streams;
        client_max_body_size 4g;
        proxy_request_buffering off;
    }}
}}
"""

GOALS = {"hit": 1.2, "br hit": 8.0, "miss": 0.5}
P99_GOAL = 1.5


def listener_pid(port: int) -> int:
    """The process listening on ``port`` (the proxy itself, or nginx's worker)."""
    out = subprocess.run(
        ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True
    ).stdout
    pids = [int(p) for p in re.findall(r"pid=(\d+)", out)]
    return max(pids)


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and its children, KiB."""
    total = 0
    pids = [pid]
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        pids += [int(p) for p in out.split()]
    except OSError:
        pass
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def stream_rss(port: int, pid: int, size: int, upload: bool = False) -> tuple[int, int, float]:
    """Stream ``size`` bytes through the proxy with curl, down (or up, chunked); RSS
    before and the peak during."""
    before = rss_kib(pid)
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_kib(pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    if upload:  # chunked from stdin: the origin answers with the byte count it got
        zeros = ["head", "-c", str(size), "/dev/zero"]
        with subprocess.Popen(zeros, stdout=subprocess.PIPE) as src:
            out = subprocess.run(
                ["curl", "-s", "-T", "-", f"http://127.0.0.1:{port}/upload"],
                stdin=src.stdout,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
    else:
        out = subprocess.run(
            [
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{size_download}",
                f"http://127.0.0.1:{port}/big?size={size}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    elapsed = time.monotonic() - started
    done.set()
    sampler.join()
    assert int(out) == size, f"streamed {out} of {size} bytes"
    return before, peak, elapsed


def warm(port: int, coding: str | None = None) -> None:
    headers = {"accept-encoding": coding} if coding else {}
    for _ in range(3):  # the first stores; a br hit then has its copy made off the path
        request = urllib.request.Request(f"http://127.0.0.1:{port}/page", headers=headers)
        with urllib.request.urlopen(request) as resp:
            resp.read()
        time.sleep(0.3)


def edgecache_router(upstream: int, streams: int, log: str) -> object:
    """edgecache with the same two origins as nginx: a route file sends /big and
    /upload to the streaming origin."""
    routes = os.path.join(os.path.dirname(log), "routes.toml")
    with open(routes, "w") as f:
        f.write(
            f"""[[pool]]
name = "origin"
servers = ["http://127.0.0.1:{upstream}"]

[[pool]]
name = "streams"
servers = ["http://127.0.0.1:{streams}"]

[[route]]
path = "/big"
pool = "streams"

[[route]]
path = "/upload"
pool = "streams"

[[route]]
path = "/"
pool = "origin"
"""
        )
    return edgecache_proxy("--config", routes, "--max-body-size", "4G", access_log=log)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--stream-bytes", type=int, default=10**9)
    args = parser.parse_args()
    names = ("nginx", "edgecache")
    cases = (("hit", "/page", None), ("br hit", "/page", "br"), ("miss", "/miss", None))
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    streams: dict[tuple[str, str], tuple[int, int, float]] = {}
    with tempfile.TemporaryDirectory() as root:
        with open(os.path.join(root, "page.html"), "wb") as f:
            f.write(BODY)
        origin = nginx(ORIGIN_CONF, core=1, root=root)
        with origin as upstream, uvicorn_app("benchmarks.apps:origin", core=1) as big:
            for _ in range(args.rounds):
                for name in names:
                    log = os.path.join(root, f"{name}.log")
                    server = (
                        nginx(NGINX_CONF, upstream=upstream, core=0, streams=str(big))
                        if name == "nginx"
                        else edgecache_router(upstream, big, log)
                    )
                    with server as port:  # type: ignore[attr-defined]
                        for kind, path, coding in cases:
                            # nginx cannot answer br from its cache: it gzips each hit
                            asked = "gzip" if coding and name == "nginx" else coding
                            warm(port, asked)
                            headers = {"accept-encoding": asked} if asked else None
                            url = f"http://127.0.0.1:{port}{path}"
                            wrk(url, 2, headers=headers)
                            result = wrk(url, args.seconds, headers=headers)
                            assert result["errors"] == 0, (name, kind, result)
                            results.setdefault((name, kind), []).append(result)
                        if args.stream_bytes and (name, "down") not in streams:
                            pid = listener_pid(port)
                            for way in ("down", "up"):
                                streams[(name, way)] = stream_rss(
                                    port, pid, args.stream_bytes, upload=way == "up"
                                )
    for kind, _, coding in cases:
        rps = {n: statistics.median(r["rps"] for r in results[(n, kind)]) for n in names}
        p99 = {n: statistics.median(r["p99_ms"] for r in results[(n, kind)]) for n in names}
        for n in names:
            runs = ", ".join(f"{r['rps']:.0f}" for r in results[(n, kind)])
            asked = ("gzip" if n == "nginx" else coding) if coding else "identity"
            print(
                f"{kind:6s} {n:9s} ({asked:8s}): {rps[n]:8.0f} req/s  p99 {p99[n]:6.2f} ms"
                f"  (runs {runs})"
            )
        print(
            f"{kind:6s} edgecache/nginx: {rps['edgecache'] / rps['nginx']:.2f} req/s "
            f"(goal >= {GOALS[kind]:.1f}), p99 {p99['edgecache'] / p99['nginx']:.2f} "
            f"(goal <= {P99_GOAL:.1f})"
        )
    for (n, way), (before, peak, elapsed) in sorted(streams.items()):
        print(
            f"{way:4s} {args.stream_bytes / 1e9:.1f} GB through {n:9s}: RSS "
            f"{before / 1024:.0f} MiB before, {peak / 1024:.0f} MiB peak "
            f"({args.stream_bytes / elapsed / 1e6:.0f} MB/s)"
        )


if __name__ == "__main__":
    main()
