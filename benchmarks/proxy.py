"""edgecache proxy against Debian's nginx, same origin, same minute, one core each.

- hits: nginx ``proxy_cache`` vs edgecache's memory cache (goal >= 45% of nginx);
- misses: ``no-store`` answers through nginx's keep-alive upstream pool vs edgecache's
  own keep-alive upstream client, ``edgecache.wire.upstream`` (goal >= 25% of nginx);
- p99 latency of each, from wrk;
- RSS of each proxy process while 1 GB streams through it, down and up (goal: flat).

The proxies run on core 0, the origin (uvicorn) and wrk on core 1. Bodies are the
10 KB page of benchmarks/apps.py, no compression asked for.

    python -m benchmarks.proxy [--seconds 10] [--rounds 2] [--stream-bytes 1000000000]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import threading
import time
import urllib.request

from benchmarks.common import edgecache_proxy, nginx, uvicorn_app, wrk

NGINX_CONF = """
proxy_cache_path {tmp}/cache levels=1:2 keys_zone=c:10m max_size=100m inactive=1h;
upstream origin {{
    server 127.0.0.1:{upstream};
    keepalive 64;
}}
server {{
    listen 127.0.0.1:{port};
    access_log off;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_buffering on;
    location / {{
        proxy_pass http://origin;
        proxy_cache c;
        proxy_cache_valid 200 1h;
    }}
    location /big {{
        proxy_pass http://origin;
        proxy_buffering off;
    }}
    location /upload {{
        proxy_pass http://origin;
        client_max_body_size 4g;
        proxy_request_buffering off;
    }}
}}
"""


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


def warm(port: int) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/page") as resp:
        resp.read()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--stream-bytes", type=int, default=10**9)
    args = parser.parse_args()
    names = ("nginx", "edgecache")
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    streams: dict[tuple[str, str], tuple[int, int, float]] = {}
    with uvicorn_app("benchmarks.apps:origin", core=1) as upstream:
        for _ in range(args.rounds):
            for name in names:
                server = (
                    nginx(NGINX_CONF, upstream=upstream, core=0)
                    if name == "nginx"
                    else edgecache_proxy(
                        "--upstream", f"http://127.0.0.1:{upstream}", "--max-body-size", "4G"
                    )
                )
                with server as port:
                    warm(port)
                    for kind, path in (("hit", "/page"), ("miss", "/miss")):
                        url = f"http://127.0.0.1:{port}{path}"
                        wrk(url, 2)
                        result = wrk(url, args.seconds)
                        assert result["errors"] == 0, (name, kind, result)
                        results.setdefault((name, kind), []).append(result)
                    if (name, "down") not in streams:
                        pid = listener_pid(port)
                        for way in ("down", "up"):
                            streams[(name, way)] = stream_rss(
                                port, pid, args.stream_bytes, upload=way == "up"
                            )
    for kind, goal in (("hit", 0.45), ("miss", 0.25)):
        rps = {n: statistics.median(r["rps"] for r in results[(n, kind)]) for n in names}
        p99 = {n: statistics.median(r["p99_ms"] for r in results[(n, kind)]) for n in names}
        for n in names:
            runs = ", ".join(f"{r['rps']:.0f}" for r in results[(n, kind)])
            print(f"{kind:4s} {n:9s}: {rps[n]:8.0f} req/s  p99 {p99[n]:6.2f} ms  (runs {runs})")
        print(
            f"{kind:4s} edgecache/nginx: {rps['edgecache'] / rps['nginx']:.2f} (goal >= {goal:.2f})"
        )
    for (n, way), (before, peak, elapsed) in sorted(streams.items()):
        print(
            f"{way:4s} {args.stream_bytes / 1e9:.1f} GB through {n:9s}: RSS "
            f"{before / 1024:.0f} MiB before, {peak / 1024:.0f} MiB peak "
            f"({args.stream_bytes / elapsed / 1e6:.0f} MB/s)"
        )


if __name__ == "__main__":
    main()
