"""``edgecache serve --workers 3``: one edge with one cache in front of three app
processes, each scenario with Flask under gunicorn and Starlette under uvicorn."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.serve.conftest import Served, serving, wait_for_line


def _get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=30)


def _wait_for_calls(served: Served, path: str, count: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while len(served.calls(path)) < count:
        assert time.monotonic() < deadline, served.calls()
        time.sleep(0.01)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("edges", ["1", "2"], ids=["one-edge", "two-edges-sharing"])
def test_one_cold_url_costs_one_app_call_and_a_purge_one_more(
    tmp_path: Path, app: str, edges: str
) -> None:
    with serving(tmp_path, app, "--workers", "3", "--edge-workers", edges) as served:
        with ThreadPoolExecutor(30) as pool:
            answers = list(pool.map(_get, [served.url + "/cached"] * 30))
        assert [a.status_code for a in answers] == [200] * 30
        assert len({a.text for a in answers}) == 1
        assert len(served.calls("/cached")) == 1
        purged = served.purge("/cached")
        assert purged.status_code == 200, purged.text
        assert _get(served.url + "/cached").status_code == 200
        assert _get(served.url + "/cached").headers["cache-status"].startswith("edgecache; hit")
        assert len(served.calls("/cached")) == 2


def test_a_killed_worker_is_replaced_and_only_its_request_fails(tmp_path: Path, app: str) -> None:
    env = {"SERVE_TEST_SLOW": "3"}
    with serving(tmp_path, app, "--workers", "3", env=env) as served, ThreadPoolExecutor(8) as pool:
        slow = pool.submit(_get, served.url + "/slow")
        _wait_for_calls(served, "/slow", 1)
        victim = served.calls("/slow")[0][1]
        os.kill(victim, signal.SIGKILL)
        assert slow.result().status_code == 502  # it was in flight on the dead worker
        answers = list(pool.map(_get, [served.url + "/pid"] * 40))
        assert [a.status_code for a in answers] == [200] * 40
        pids = {int(a.text) for a in answers}
        assert victim not in pids
        # Three processes at once answer three slow requests: the dead one was replaced.
        started = len(served.calls("/slow"))
        three = [pool.submit(_get, served.url + "/slow") for _ in range(3)]
        assert [f.result().status_code for f in three] == [200] * 3
        assert len({pid for _, pid in served.calls("/slow")[started:]}) == 3
        assert "Traceback" not in served.log()


def _three_pids(served: Served, pool: ThreadPoolExecutor, count: int = 3) -> set[int]:
    """The workers that answer ``count`` slow requests at once (as many URLs: no
    coalescing). Each edge balances by its own counts: with two edges, 9 requests
    put at least 5 on one of them, so that one uses all three workers."""
    started = len(served.calls("/slow"))
    urls = [f"{served.url}/slow?{time.time()}-{i}" for i in range(count)]
    answers = list(pool.map(_get, urls))
    assert [a.status_code for a in answers] == [200] * count
    return {pid for _, pid in served.calls("/slow")[started:]}


@pytest.mark.parametrize("edges", ["1", "2"], ids=["one-edge", "two-edges"])
def test_sighup_replaces_every_worker_and_refuses_no_request(
    tmp_path: Path, app: str, edges: str
) -> None:
    env = {"SERVE_TEST_SLOW": "0.3"}
    args = ("--workers", "3", "--edge-workers", edges)
    count = 3 if edges == "1" else 9
    with serving(tmp_path, app, *args, env=env) as served, ThreadPoolExecutor(count) as pool:
        before = _three_pids(served, pool, count)
        assert len(before) == 3
        served.proc.send_signal(signal.SIGHUP)
        statuses = []
        while "app workers reloaded" not in served.log():
            statuses.append(_get(served.url + "/pid").status_code)
        assert statuses and set(statuses) == {200}
        after = _three_pids(served, pool, count)
        assert len(after) == 3 and not after & before
        # The new workers stay (none dies with the thread that asked for the reload).
        assert _three_pids(served, pool, count) == after
        assert "restarting" not in served.log()
        assert served.proc.poll() is None


def test_sigterm_finishes_the_request_in_flight(tmp_path: Path, app: str) -> None:
    with serving(tmp_path, app, "--workers", "3") as served, ThreadPoolExecutor(1) as pool:
        slow = pool.submit(_get, served.url + "/slow")
        _wait_for_calls(served, "/slow", 1)
        served.proc.send_signal(signal.SIGTERM)
        answer = slow.result()
        assert (answer.status_code, answer.text) == (200, "slow done")
        assert served.proc.wait(40) == 0
        worker = served.calls("/slow")[0][1]
        deadline = time.monotonic() + 5
        while _alive(worker):
            assert time.monotonic() < deadline, "an app worker outlived the edge"
            time.sleep(0.05)


def test_ready_only_once_every_worker_accepts(tmp_path: Path, app: str) -> None:
    # Each worker takes 1.5 s to import the app; once "ready" is said, three slow
    # requests at once are answered by three processes, with no wait for a boot.
    env = {"SERVE_TEST_IMPORT_DELAY": "1.5", "SERVE_TEST_SLOW": "0.5"}
    with serving(tmp_path, app, "--workers", "3", env=env, wait=False) as served:
        wait_for_line(served, "edgecache: ready")
        began = time.monotonic()
        with ThreadPoolExecutor(3) as pool:  # three URLs: no coalescing into one
            answers = list(pool.map(_get, [f"{served.url}/slow?{i}" for i in range(3)]))
        assert time.monotonic() - began < 1.4
        assert [a.status_code for a in answers] == [200] * 3
        assert len({pid for _, pid in served.calls("/slow")}) == 3


def test_an_app_wrapped_in_edgecache_is_refused(tmp_path: Path) -> None:
    with serving(tmp_path, "tests.serve.apps:wrapped_app", wait=False) as served:
        assert served.proc.wait(30) == 2
        assert "already wraps itself in EdgeCache" in served.log()


def test_a_bad_worker_class_fails_at_start_naming_it(tmp_path: Path) -> None:
    with serving(tmp_path, "flask", "--worker-class", "nosuch", wait=False) as served:
        assert served.proc.wait(30) == 2
        assert "setting worker_class" in served.log()
