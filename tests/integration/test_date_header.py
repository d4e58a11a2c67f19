"""One Date per answer under the host servers, as the README says: uvicorn adds a
second Date to cached answers unless run with --no-date-header; gunicorn always sends
exactly one, its own. Real servers, real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import parsedate_to_datetime

import httpx
import pytest

from tests.integration.servers import free_socket, wait_for_http

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@contextmanager
def host_server(*command: str) -> Iterator[str]:
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    proc = subprocess.Popen(
        [sys.executable, "-m", *(c.replace("PORT", str(port)) for c in command)], cwd=ROOT
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_http(url + "ready", proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _dates(url: str) -> tuple[list[str], list[str]]:
    """The Date fields of a miss and of the hit that follows it."""
    miss = httpx.get(url)
    hit = httpx.get(url)
    assert "hit" in hit.headers["cache-status"] and "hit" not in miss.headers["cache-status"]
    return miss.headers.get_list("date"), hit.headers.get_list("date")


UVICORN = ("uvicorn", "tests.integration.date_apps:asgi", "--port", "PORT")


def test_uvicorn_adds_a_second_date_to_cached_answers() -> None:
    with host_server(*UVICORN, "--log-level", "warning") as url:
        miss, hit = _dates(url)
    assert len(miss) == 1 and len(hit) == 2


def test_uvicorn_without_its_date_header_leaves_the_stored_one() -> None:
    with host_server(*UVICORN, "--log-level", "warning", "--no-date-header") as url:
        miss, hit = _dates(url)
    assert miss == [] and len(hit) == 1  # the app set none; the stored answer got one


def test_gunicorn_always_sends_one_date_of_its_own() -> None:
    pytest.importorskip("gunicorn")
    app = "tests.integration.date_apps:wsgi"
    with host_server("gunicorn", "-b", "127.0.0.1:PORT", "--log-level", "warning", app) as url:
        miss, hit = _dates(url)
        time.sleep(1.1)  # the stored Date is now a second old; gunicorn's is not
        later = httpx.get(url)
    assert len(miss) == 1 and len(hit) == 1 and len(later.headers.get_list("date")) == 1
    # Its Date is the time of sending, not the stored one; Age says how old it is.
    sent, first = (parsedate_to_datetime(d) for d in (later.headers["date"], miss[0]))
    assert (sent - first).total_seconds() >= 1 and int(later.headers["age"]) >= 1
