"""``edgecache proxy --workers 3``: three edge processes share one cache (the shared
store) and coalesce across processes."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.proxy.conftest import start_proxy
from tests.proxy.origin import Origin

TOKEN = "workers-test-token"


def _calls(origin: Origin, path: str) -> int:
    return sum(1 for r in origin.requests if r["path"].split("?")[0] == path)


def test_three_workers_one_miss_per_url_and_a_purge_reaches_all(
    origin: Origin, tmp_path: Path
) -> None:
    origin.delay = 0.3  # concurrent misses overlap, in every worker
    args = ("--upstream", origin.url, "--workers", "3", "--admin-token", TOKEN)
    try:
        _three_workers(origin, tmp_path, args)
    finally:
        origin.delay = 0.0


def _three_workers(origin: Origin, tmp_path: Path, args: tuple[str, ...]) -> None:
    with start_proxy(tmp_path, *args) as proxy, ThreadPoolExecutor(30) as pool:
        url = proxy.url + "/cc/workers?cc=max-age=60"

        def get(_: int) -> httpx.Response:
            # A connection each: the kernel spreads them over the three workers.
            return httpx.get(url, timeout=30)

        answers = list(pool.map(get, range(30)))
        assert [a.status_code for a in answers] == [200] * 30
        assert len({a.text for a in answers}) == 1
        assert _calls(origin, "/cc/workers") == 1
        purged = httpx.post(
            proxy.url + "/_edgecache/purge",
            params={"url": "/cc/workers?cc=max-age=60"},
            headers={"authorization": f"Bearer {TOKEN}"},
        )
        assert purged.status_code == 200, purged.text
        # Every worker sees the purge at once: the next request, wherever it lands, misses.
        list(pool.map(get, range(10)))
        assert _calls(origin, "/cc/workers") == 2
        assert "shared cache" in proxy.log()
        assert "Traceback" not in proxy.log(), proxy.log()[-3000:]


def _requests_counted(proxy_url: str) -> float:
    text = httpx.get(
        proxy_url + "/_edgecache/metrics", headers={"authorization": f"Bearer {TOKEN}"}
    ).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        # Answers from the cache or the origin; the metrics answers themselves are "none".
        if line.startswith("edgecache_requests_total{") and 'cache="none"' not in line
    )


def _wait_for_count(proxy_url: str, count: float) -> None:
    deadline = time.monotonic() + 10  # each worker brings its counters up once a second
    while _requests_counted(proxy_url) < count:
        assert time.monotonic() < deadline, _requests_counted(proxy_url)
        time.sleep(0.2)


def test_metrics_are_summed_over_workers_and_keep_a_restarted_ones(
    origin: Origin, tmp_path: Path
) -> None:
    args = ("--upstream", origin.url, "--workers", "2", "--admin-token", TOKEN)
    with start_proxy(tmp_path, *args) as proxy:
        for i in range(10):  # a connection each: spread over both workers
            assert httpx.get(f"{proxy.url}/cc/metrics-{i}?cc=max-age=60").status_code == 200
        _wait_for_count(proxy.url, 10)  # ten misses, in both workers' counters
        children = Path(f"/proc/{proxy.proc.pid}/task/{proxy.proc.pid}/children").read_text()
        victim = int(children.split()[0])
        os.kill(victim, signal.SIGKILL)
        proxy.wait_for_log("starting another", timeout=10)
        for i in range(10):
            assert httpx.get(f"{proxy.url}/cc/metrics-{i}?cc=max-age=60").status_code == 200
        # The dead worker's counts stay in the sum, beside the ten hits after it.
        _wait_for_count(proxy.url, 20)
        # Stopped at once, the replacement perhaps still starting: every worker goes.
        proxy.proc.terminate()
        assert proxy.proc.wait(15) == 0
