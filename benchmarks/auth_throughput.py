"""Requests/s on a basic-auth protected path with a bcrypt user (cost 5, htpasswd -B's
default): the verified-credential memo on and off, against an unprotected path of the
same app, and nginx (auth_basic + proxy_cache, which runs bcrypt on every request).

Every request is a cache hit of the same 10 KB page; the server runs on core 0, wrk on
core 1, in the same minute. Goal: with the memo, within 10% of the unprotected path.

    python -m benchmarks.auth_throughput [--seconds 10] [--rounds 2] [--server uvicorn]
"""

from __future__ import annotations

import argparse
import base64
import statistics
import urllib.request

from benchmarks.apps import BENCH_PASSWORD, BENCH_USER, USER_FILE
from benchmarks.common import SERVERS, nginx, uvicorn_app, wrk

CREDENTIALS = base64.b64encode(f"{BENCH_USER}:{BENCH_PASSWORD}".encode()).decode()
AUTH = {"Authorization": f"Basic {CREDENTIALS}"}

NGINX_CONF = """
proxy_cache_path {tmp}/cache levels=1:2 keys_zone=c:10m max_size=100m inactive=1h;
server {{
    listen 127.0.0.1:{port};
    access_log off;
    location / {{
        auth_basic "bench";
        auth_basic_user_file {user_file};
        proxy_pass http://127.0.0.1:{upstream};
        proxy_cache c;
        proxy_cache_valid 200 1h;
    }}
}}
"""


def measure(port: int, path: str, seconds: int, headers: dict[str, str]) -> float:
    url = f"http://127.0.0.1:{port}{path}"
    req = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(req) as resp:  # fills the cache, checks the password
        resp.read()
    wrk(url, 2, headers=headers)
    result = wrk(url, seconds, headers=headers)
    assert result["errors"] == 0, result
    return result["rps"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--server", default="uvicorn", choices=sorted(SERVERS))
    args = parser.parse_args()
    cases = {
        "unprotected path": ("benchmarks.apps:protected", "/page", {}),
        "protected, memo on": ("benchmarks.apps:protected", "/admin/page", AUTH),
        "protected, memo off": ("benchmarks.apps:protected_no_memo", "/admin/page", AUTH),
    }
    rps: dict[str, list[float]] = {name: [] for name in [*cases, "nginx auth_basic"]}
    with uvicorn_app("benchmarks.apps:bare", core=1) as origin:
        for _ in range(args.rounds):
            for name, (spec, path, headers) in cases.items():
                with SERVERS[args.server](spec, core=0) as port:
                    rps[name].append(measure(port, path, args.seconds, headers))
            with nginx(NGINX_CONF, upstream=origin, core=0, user_file=USER_FILE) as port:
                rps["nginx auth_basic"].append(measure(port, "/page", args.seconds, AUTH))
    base = statistics.median(rps["unprotected path"])
    for name, runs in rps.items():
        value = statistics.median(runs)
        listed = ", ".join(f"{x:.0f}" for x in runs)
        print(f"{name:22s}: {value:8.0f} req/s  ({value / base:.2f} of unprotected; runs {listed})")
    print(f"server: {args.server}; goal: memo on >= 0.90 of unprotected")


if __name__ == "__main__":
    main()
