"""HTTP/2 hits: edgecache proxy against Debian's nginx, over TLS, same run, one core each.

h2load (``-c 16 -m 10``: 16 connections, 10 streams each) asks for the 10 KB page that
both proxies hold in their cache: nginx with ``proxy_cache`` on an HTTP/2 listener
(``listen ... ssl http2``: Debian's nginx 1.22 predates the ``http2 on`` directive that
1.25 spells it with), edgecache with its memory cache (goal >= 0.5x nginx). The
proxies run on core 0; the origin (an nginx serving the page as a static file, as in
benchmarks/proxy.py) and h2load on core 1. Both write their access log to a file.

    python -m benchmarks.h2 [--seconds 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import re
import ssl
import statistics
import subprocess
import tempfile
import urllib.request

from benchmarks.apps import BODY
from benchmarks.common import edgecache_proxy, nginx, require
from benchmarks.proxy import ORIGIN_CONF
from edgecache.proxy.tls import self_signed_files

NGINX_CONF = """
proxy_cache_path {tmp}/cache levels=1:2 keys_zone=c:10m max_size=100m inactive=1h;
upstream origin {{
    server 127.0.0.1:{upstream};
    keepalive 64;
}}
server {{
    listen 127.0.0.1:{port} ssl http2;
    ssl_certificate {certfile};
    ssl_certificate_key {keyfile};
    ssl_protocols TLSv1.2 TLSv1.3;
    http2_max_concurrent_streams 100;
    keepalive_requests 1000000;
    access_log {tmp}/access.log;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    location / {{
        proxy_pass http://origin;
        proxy_cache c;
        proxy_cache_valid 200 1h;
    }}
}}
"""

GOAL = 0.5


def h2load(url: str, seconds: int, core: int = 1) -> dict[str, float]:
    """Requests/s from one h2load run (16 connections, 10 streams each), pinned."""
    cmd = ["taskset", "-c", str(core), require("h2load"), "-c", "16", "-m", "10"]
    cmd += ["-D", str(seconds), "--warm-up-time", "1", url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    protocol = re.search(r"Application protocol: (\S+)", out)
    assert rps and done and protocol, out
    assert protocol.group(1) == "h2", out
    return {
        "rps": float(rps.group(1)),
        "failed": float(int(done.group(1)) - int(done.group(2))),
    }


def warm(port: int) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    url = f"https://127.0.0.1:{port}/page"
    for _ in range(2):  # the second answer is a hit
        with urllib.request.urlopen(url, context=context) as resp:
            resp.read()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    certfile, keyfile = self_signed_files(["127.0.0.1", "localhost"])
    names = ("nginx", "edgecache")
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as root:
        with open(os.path.join(root, "page.html"), "wb") as f:
            f.write(BODY)
        with nginx(ORIGIN_CONF, core=1, root=root) as upstream:
            for _ in range(args.rounds):
                for name in names:
                    server = (
                        nginx(
                            NGINX_CONF,
                            upstream=upstream,
                            core=0,
                            certfile=certfile,
                            keyfile=keyfile,
                        )
                        if name == "nginx"
                        else edgecache_proxy(
                            "--upstream",
                            f"http://127.0.0.1:{upstream}",
                            "--certfile",
                            certfile,
                            "--keyfile",
                            keyfile,
                            "--http2",
                            access_log=os.path.join(root, "edgecache.log"),
                        )
                    )
                    with server as port:
                        warm(port)
                        url = f"https://127.0.0.1:{port}/page"
                        result = h2load(url, args.seconds)
                        assert result["failed"] == 0, (name, result)
                        results.setdefault(name, []).append(result)
    rps = {n: statistics.median(r["rps"] for r in results[n]) for n in names}
    for n in names:
        runs = ", ".join(f"{r['rps']:.0f}" for r in results[n])
        print(f"h2 hit {n:9s}: {rps[n]:8.0f} req/s  (runs {runs})")
    # Each round runs the two within the same minute: its ratio is the fair one when the
    # machine's load moves between rounds.
    ratios = [
        e["rps"] / n["rps"] for n, e in zip(results["nginx"], results["edgecache"], strict=True)
    ]
    rounds = ", ".join(f"{r:.2f}" for r in ratios)
    print(
        f"h2 hit edgecache/nginx: {statistics.median(ratios):.2f} (rounds {rounds}; "
        f"goal >= {GOAL:.1f})"
    )


if __name__ == "__main__":
    main()
