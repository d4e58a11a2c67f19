"""``edgecache proxy --workers 3``: three edge processes share one cache (the shared
store) and coalesce across processes."""

from __future__ import annotations

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
