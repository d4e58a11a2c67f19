"""``edgecache serve`` as a real process tree: the edge and its app workers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.proxy.conftest import ROOT, free_port

APPS = {"flask": "tests.serve.apps:flask_app", "starlette": "tests.serve.apps:starlette_app"}
TOKEN = "serve-test-token"


@dataclass
class Served:
    proc: subprocess.Popen[str]
    url: str
    log_path: Path
    calls_path: Path

    def log(self) -> str:
        return self.log_path.read_text()

    def calls(self, path: str | None = None) -> list[tuple[str, int]]:
        """What reached an app process: (path, pid) per call, in order."""
        if not self.calls_path.exists():
            return []
        lines = [line.split() for line in self.calls_path.read_text().splitlines()]
        return [(p, int(pid)) for p, pid in lines if path is None or p == path]

    def purge(self, url: str) -> httpx.Response:
        return httpx.post(
            self.url + "/_edgecache/purge",
            params={"url": url},
            headers={"authorization": f"Bearer {TOKEN}"},
        )


def wait_for_line(served: Served, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in served.log():
        if served.proc.poll() is not None:
            raise RuntimeError("edgecache serve exited:\n" + served.log())
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {text!r} in time:\n" + served.log())
        time.sleep(0.02)


@contextmanager
def serving(
    tmp_path: Path, app: str, *args: str, env: dict[str, str] | None = None, wait: bool = True
) -> Iterator[Served]:
    port = free_port()
    log_path, calls_path = tmp_path / f"serve-{port}.log", tmp_path / f"calls-{port}"
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("EDGECACHE_")}
    command = [sys.executable, "-m", "edgecache", "serve", APPS.get(app, app)]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [*command, "--port", str(port), "--admin-token", TOKEN, *args],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env={**clean_env, "SERVE_TEST_CALLS": str(calls_path), **(env or {})},
        )
    served = Served(proc, f"http://127.0.0.1:{port}", log_path, calls_path)
    try:
        if wait:
            wait_for_line(served, "edgecache: ready")
        yield served
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(params=sorted(APPS))
def app(request: pytest.FixtureRequest) -> str:
    """Each scenario with Flask (WSGI, under gunicorn) and Starlette (ASGI, uvicorn)."""
    return str(request.param)
