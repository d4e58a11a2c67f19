"""Requests/s on a basic-auth protected path with a bcrypt user (cost 5, htpasswd -B's
default): the verified-credential memo on and off, against an unprotected path of the
same app, and nginx (auth_basic + proxy_cache, which runs bcrypt on every request).

Every request is a cache hit of the same 10 KB page; the server runs on core 0, wrk on
core 1, in the same minute. Goal: with the memo, within 10% of the unprotected path.

    python -m benchmarks.auth_throughput [--seconds 10] [--rounds 2] [--server uvicorn]

``--storm``: latency of an unprotected path through ``edgecache proxy`` (a cache hit),
idle and then during a storm of wrong passwords from many addresses (127.0.0.2, ...,
each with its own connection, each guess a fresh password) against a bcrypt cost-10
user. The throttle is opened wide (no delay, caps of a million), so every guess is
hashed: the worst case for the hashing pool. The proxy runs on core 0; the probe (one
request at a time, paced) and the attackers on core 1. Goal: p99 during the storm
within 2x of idle.

    python -m benchmarks.auth_throughput --storm [--seconds 10] [--rounds 2] [--addresses 40]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchmarks.apps import BENCH_PASSWORD, BENCH_USER, USER_FILE
from benchmarks.common import (
    ROOT,
    SERVERS,
    free_port,
    nginx,
    pinned_module,
    uvicorn_app,
    wrk,
)

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


def cost10_user_file() -> str:
    """A bcrypt user at cost 10 (~0.1 s a check), the cost the attack was measured at."""
    import bcrypt

    path = os.path.join(tempfile.gettempdir(), "edgecache-bench-cost10.htpasswd")
    if not os.path.exists(path):
        hashed = bcrypt.hashpw(BENCH_PASSWORD.encode(), bcrypt.gensalt(10)).decode()
        with open(path, "w") as f:
            f.write(f"{BENCH_USER}:{hashed}\n")
    return path


def probe(port: int, seconds: float, pace: float = 0.002) -> list[float]:
    """Latencies (ms) of GET /page, one at a time on one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    out: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        conn.request("GET", "/page")
        resp = conn.getresponse()
        resp.read()
        out.append((time.perf_counter() - start) * 1000)
        assert resp.status == 200, resp.status
        time.sleep(pace)
    conn.close()
    return out


async def _attack(port: int, addresses: int, seconds: float) -> dict[str, int]:
    """Wrong passwords from ``addresses`` source addresses until ``seconds`` pass."""
    answers: dict[str, int] = {}
    deadline = time.monotonic() + seconds

    async def attacker(address: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(address, 0))
        while time.monotonic() < deadline:
            guess = base64.b64encode(f"{BENCH_USER}:{secrets.token_hex(8)}".encode())
            writer.write(
                b"GET /admin/page HTTP/1.1\r\nHost: bench\r\nAuthorization: Basic "
                + guess
                + b"\r\n\r\n"
            )
            head = await reader.readuntil(b"\r\n\r\n")
            status = head.split(b" ", 2)[1].decode()
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            answers[status] = answers.get(status, 0) + 1
        writer.close()

    await asyncio.gather(*(attacker(f"127.0.0.{2 + i}") for i in range(addresses)))
    return answers


def attack_main(port: int, addresses: int, seconds: float) -> None:
    answers = asyncio.run(_attack(port, addresses, seconds))
    print(" ".join(f"{status}={count}" for status, count in sorted(answers.items())))


def _p99(latencies: list[float]) -> float:
    # A probe blocked for the whole phase has one sample: that is its p99.
    return statistics.quantiles(latencies, n=100)[98] if len(latencies) > 1 else latencies[0]


def _summary(latencies: list[float]) -> str:
    return (
        f"p50 {statistics.median(latencies):.2f} ms, p99 {_p99(latencies):.2f} ms,"
        f" max {max(latencies):.2f} ms ({len(latencies)} requests)"
    )


def storm(seconds: int, addresses: int, rounds: int) -> None:
    """Unprotected-path latency idle vs during a wrong-password storm; the p99 ratio.
    Idle and storm phases alternate, ``rounds`` of each, and medians are compared, so a
    burst of load from elsewhere on the machine does not decide the result alone."""
    assert 2 + addresses <= 255, "addresses come from 127.0.0.2 up"
    os.sched_setaffinity(0, {1})  # the probe shares core 1 with the attackers
    port = free_port()
    proxy = [
        "edgecache",
        "proxy",
        "--port",
        str(port),
        "--access-log",
        "off",
        "--log-level",
        "error",  # not a warning line per failed guess on the console
        "--auth",
        f"/admin/:{cost10_user_file()}:bench",
        "--auth-failure-delay",
        "0",
        "--auth-max-failures",
        "1000000",
        "--auth-max-failures-per-address",
        "1000000",
    ]
    idle: list[list[float]] = []
    during: list[list[float]] = []
    answers: list[str] = []
    with uvicorn_app("benchmarks.apps:origin", core=1) as origin:
        upstream = ["--upstream", f"http://127.0.0.1:{origin}"]
        with pinned_module([*proxy, *upstream], port, core=0):
            probe(port, 2)  # fills the cache, warms the connection
            for _ in range(rounds):
                idle.append(probe(port, seconds))
                attack = subprocess.Popen(
                    [
                        *("taskset", "-c", "1", sys.executable, "-m"),
                        "benchmarks.auth_throughput",
                        *("--attack", str(port), "--addresses", str(addresses)),
                        *("--seconds", str(seconds + 3)),
                    ],
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                time.sleep(2)  # the storm reaches its pace: every pool thread busy, a queue
                during.append(probe(port, seconds))
                answers.append(attack.communicate(timeout=seconds + 30)[0].strip())
                time.sleep(1)  # the queue of guesses drains before the next idle phase
    for name, runs in (("idle", idle), ("during storm", during)):
        for i, latencies in enumerate(runs, 1):
            print(f"unprotected path, {name:12s} round {i}: {_summary(latencies)}")
    print(f"storm: {addresses} addresses, one connection each; answers per round: {answers}")
    idle_p99 = statistics.median(_p99(x) for x in idle)
    storm_p99 = statistics.median(_p99(x) for x in during)
    print(f"median p99: idle {idle_p99:.2f} ms, during storm {storm_p99:.2f} ms")
    print(f"p99 during / idle: {storm_p99 / idle_p99:.2f} (goal <= 2.00)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--server", default="uvicorn", choices=sorted(SERVERS))
    parser.add_argument("--storm", action="store_true", help="latency during a password storm")
    parser.add_argument("--addresses", type=int, default=40)
    parser.add_argument("--attack", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.attack:
        attack_main(args.attack, args.addresses, args.seconds)
        return
    if args.storm:
        storm(args.seconds, args.addresses, args.rounds)
        return
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
