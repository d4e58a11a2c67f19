from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tests.integration.servers import free_socket
from tests.proxy.origin import Origin, running_origin

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port() -> int:
    sock = free_socket()
    port = int(sock.getsockname()[1])
    sock.close()
    return port


class Proxy:
    def __init__(self, proc: subprocess.Popen[str], url: str, log_path: str) -> None:
        self.proc = proc
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])
        self.log_path = log_path

    def log(self) -> str:
        return _read(self.log_path)

    def wait_for_log(self, text: str, timeout: float = 5.0) -> str:
        """The log once it holds ``text``: lines are written after the answer is sent."""
        deadline = time.monotonic() + timeout
        while text not in (log := self.log()):
            assert time.monotonic() < deadline, f"{text!r} never logged:\n{log}"
            time.sleep(0.02)
        return log


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


@contextmanager
def start_proxy(
    tmp_path: Any,
    *args: str,
    env: dict[str, str] | None = None,
    scheme: str = "http",
    verify: Any = False,
) -> Iterator[Proxy]:
    port = free_port()
    log_path = str(tmp_path / f"proxy-{port}.log")
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("EDGECACHE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgecache", "proxy", "--port", str(port), *args],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env={**clean_env, **(env or {})},
    )
    url = f"{scheme}://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url + "/__ping", timeout=1, verify=verify)
                break
            except httpx.TransportError:
                if proc.poll() is not None:
                    log.close()
                    raise RuntimeError("proxy exited:\n" + _read(log_path)) from None
                if time.monotonic() > deadline:
                    raise RuntimeError("proxy did not start:\n" + _read(log_path)) from None
                time.sleep(0.05)
        yield Proxy(proc, url, log_path)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    with running_origin() as o:
        yield o


@pytest.fixture(scope="module")
def proxy(origin: Origin, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    with start_proxy(
        tmp_path_factory.mktemp("proxy"),
        "--upstream",
        origin.url,
        "--read-timeout",
        "1",
        "--max-body-size",
        "1M",
    ) as p:
        yield p


@pytest.fixture
def client(proxy: Proxy) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy.url, timeout=10) as c:
        yield c


ProxyFactory = Callable[..., Any]
