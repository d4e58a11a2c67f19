"""Two ``edgecache proxy`` nodes sharing one real redis-server: shared entries, purge
by tag across nodes, Redis killed and restarted mid-test, metrics scraped."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.proxy.conftest import Proxy, start_proxy
from tests.proxy.origin import Origin
from tests.redis_server import RedisServer

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None,
    reason="redis-server is not installed (.ci/run installs it)",
)
TOKEN = "s3cret-admin-token"


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


def until(check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def status(node: Proxy, path: str) -> str:
    resp = httpx.get(node.url + path, timeout=5)
    assert resp.status_code == 200
    assert "surrogate-key" not in resp.headers
    return resp.headers["cache-status"]


def metrics(node: Proxy) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = httpx.get(node.url + "/_edgecache/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == 200
    values = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def test_two_nodes_share_one_redis(
    redis_server: RedisServer, origin: Origin, tmp_path: Path
) -> None:
    store = redis_server.url
    args = [
        "--upstream",
        origin.url,
        "--store",
        store,
        "--redis-prefix",
        f"t-{uuid.uuid4().hex[:8]}",
        "--admin-token",
        TOKEN,
    ]
    with start_proxy(tmp_path, *args) as a, start_proxy(tmp_path, *args) as b:
        # Stored through A, a hit on B.
        assert "stored" in status(a, "/tagged/1")
        until(lambda: "hit" in status(b, "/tagged/1"), "B never saw A's entry")
        for path in ("/tagged/2", "/tagged/3"):
            status(a, path)
        calls = len(origin.requests)
        # A purge by tag on B is obeyed by A.
        purge = httpx.post(
            b.url + "/_edgecache/purge?tag=catalog", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert purge.status_code == 200 and purge.json()["purged"] >= 3
        assert "fwd=uri-miss" in status(a, "/tagged/2")
        assert len(origin.requests) == calls + 1
        # Without the token, nothing.
        assert httpx.post(a.url + "/_edgecache/purge?tag=catalog").status_code == 401

        # Redis dies: both nodes keep answering.
        redis_server.stop()
        for node in (a, b):
            for i in range(5):
                assert httpx.get(node.url + f"/tagged/down-{i}", timeout=5).status_code == 200
        assert any(k[0] == "edgecache_store_errors_total" and v > 0 for k, v in metrics(a).items())
        # It comes back: caching across nodes resumes by itself.
        redis_server.start()

        def shared_again() -> bool:
            status(a, "/tagged/after")
            return "hit" in status(b, "/tagged/after")

        until(shared_again, "caching did not resume after Redis came back", timeout=10)
        hits = metrics(b)[("edgecache_requests_total", (("cache", "hit"),))]
        assert hits >= 2
