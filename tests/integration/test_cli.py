"""``edgecache serve`` as a real process; bad settings fail at start, naming them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tests.integration.servers import free_socket

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgecache", *args],
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )


@contextmanager
def serving(*args: str) -> Iterator[str]:
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgecache",
            "serve",
            *args,
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(url + "/private", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, "edgecache serve exited"
                assert time.monotonic() < deadline, "edgecache serve did not start"
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_wsgi_example_caches() -> None:
    with serving("examples.hello:app") as url:
        first = httpx.get(url + "/")
        second = httpx.get(url + "/")
        assert first.status_code == 200 and "fwd=uri-miss" in first.headers["cache-status"]
        assert second.text == first.text and "hit" in second.headers["cache-status"]
        private = httpx.get(url + "/private")
        assert "detail=private" in private.headers["cache-status"]


def test_bad_app_spec_fails_clearly() -> None:
    result = run_cli("serve", "no_such_module:app")
    assert result.returncode == 2
    assert "no_such_module" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("serve", "examples.hello")
    assert result.returncode == 2 and "module:attribute" in result.stderr


def test_bad_setting_fails_at_start_naming_the_variable() -> None:
    result = run_cli("serve", "examples.hello:app", env={"EDGECACHE_MAX_BYTES": "plenty"})
    assert result.returncode == 2
    assert "EDGECACHE_MAX_BYTES" in result.stderr and "Traceback" not in result.stderr
