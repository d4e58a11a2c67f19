"""Helpers for benchmarks: start servers pinned to a core, run wrk, parse its output."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        sys.exit(f"{tool} is not installed: apt-get install -y {tool} (or run `make bench`)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


@contextmanager
def pinned_module(
    args: list[str], port: int, core: int, stderr: str | None = None
) -> Iterator[int]:
    """``python -m args...`` pinned to ``core``, until it listens on ``port``; stopped
    with SIGTERM when the block ends. ``stderr``: a file it is written to."""
    cmd = ["taskset", "-c", str(core), sys.executable, "-m", *args]
    err = open(stderr, "ab") if stderr else None  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_for_port(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        if err is not None:
            err.close()


def uvicorn_app(spec: str, core: int = 0) -> contextlib.AbstractContextManager[int]:
    """``uvicorn spec`` in its own process, httptools + uvloop."""
    port = free_port()
    return pinned_module(
        [
            "uvicorn",
            spec,
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--http",
            "httptools",
            "--loop",
            "uvloop",
        ],
        port,
        core,
    )


def granian_app(spec: str, core: int = 0) -> contextlib.AbstractContextManager[int]:
    """``granian --interface asgi spec``: one worker, one runtime thread."""
    port = free_port()
    return pinned_module(
        [
            "granian",
            "--interface",
            "asgi",
            "--port",
            str(port),
            "--workers",
            "1",
            "--runtime-threads",
            "1",
            "--no-ws",
            "--log-level",
            "warning",
            spec,
        ],
        port,
        core,
    )


def edgecache_proxy(
    *args: str, core: int = 0, access_log: str | None = None
) -> contextlib.AbstractContextManager[int]:
    """``edgecache proxy ARGS`` pinned to ``core``, warnings only; with ``access_log``
    (a file) its combined access log is written there, else there is none."""
    port = free_port()
    style = "combined" if access_log else "off"
    return pinned_module(
        [
            "edgecache",
            "proxy",
            *args,
            "--port",
            str(port),
            "--access-log",
            style,
            "--log-level",
            "warning",
        ],
        port,
        core,
        stderr=access_log,
    )


SERVERS = {"uvicorn": uvicorn_app, "granian": granian_app}


def wrk(
    url: str,
    seconds: int = 10,
    connections: int = 50,
    core: int = 1,
    headers: dict[str, str] | None = None,
) -> dict[str, float]:
    """Requests/s, p99 latency (ms) and transfer bytes/s from one wrk run."""
    cmd = [
        "taskset",
        "-c",
        str(core),
        require("wrk"),
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        url,
    ]
    for name, value in (headers or {}).items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    p99_ms = float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p99_ms": p99_ms, "errors": float(non2xx.group(1)) if non2xx else 0.0}


@contextmanager
def nginx(
    conf_body: str, upstream: int = 0, core: int = 0, main: str = "", **extra: str
) -> Iterator[int]:
    """Debian's nginx with one worker pinned to ``core``, serving ``conf_body``."""
    import tempfile

    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(binary):
        sys.exit("nginx is not installed: apt-get install -y nginx (or run `make bench`)")
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(
                main
                + ("user root;\n" if os.geteuid() == 0 else "")
                + f"worker_processes 1;\ndaemon off;\npid {tmp}/nginx.pid;\n"
                f"error_log {tmp}/error.log warn;\nevents {{ worker_connections 4096; }}\n"
                f"http {{\n include /etc/nginx/mime.types;\n"
                f" client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;\n"
                f" fastcgi_temp_path {tmp}/fcgi; uwsgi_temp_path {tmp}/uwsgi;\n"
                f" scgi_temp_path {tmp}/scgi;\n"
                + conf_body.format(tmp=tmp, port=port, upstream=upstream, **extra)
                + "}\n"
            )
        proc = subprocess.Popen(["taskset", "-c", str(core), binary, "-c", conf, "-p", tmp])
        try:
            wait_for_port(port)
            yield port
        finally:
            proc.terminate()
            proc.wait(10)
