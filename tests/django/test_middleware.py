"""edgecache as a Django MIDDLEWARE entry: a real project (``site/``: settings.py,
urls.py, views) on a free port under gunicorn (WSGI: the middleware runs sync) and under
uvicorn (ASGI: it runs async), asked by a real HTTP client. The views count their
calls, so the project itself tells a hit from a miss."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import bcrypt
import httpx
import pytest

from tests.integration.servers import free_socket, wait_for_http

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pytest.importorskip("gunicorn")
pytest.importorskip("django")


USER, PASSWORD = "ops", "django-s3cret"


SERVERS = {
    "gunicorn": ["gunicorn", "--workers", "1", "--threads", "4", "--log-level", "warning"],
    "uvicorn": ["uvicorn", "--log-level", "warning", "--lifespan", "off"],
}
APPS = {
    "gunicorn": "tests.django.site.wsgi:application",
    "uvicorn": "tests.django.site.asgi:application",
}


@pytest.fixture(scope="module", params=sorted(SERVERS))
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    server = request.param
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    users = tmp_path_factory.mktemp("django") / "users"
    users.write_text(f"{USER}:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()}\n")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("EDGECACHE_")},
        "DJANGO_SETTINGS_MODULE": "tests.django.site.settings",
        # An EDGECACHE_* variable beside settings.EDGECACHE, as everywhere.
        "EDGECACHE_AUTH": f"/private/:{users}:Ops",
        "EDGECACHE_AUTH_FAILURE_DELAY": "0",
    }
    bind = ["--bind", f"127.0.0.1:{port}"] if server == "gunicorn" else ["--port", str(port)]
    command = [sys.executable, "-m", *SERVERS[server], *bind, APPS[server]]
    proc = subprocess.Popen(command, cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/calls", proc)
        with httpx.Client(base_url=url, timeout=10) as client:
            yield client
    finally:
        proc.terminate()
        proc.wait(10)


def calls(client: httpx.Client, what: str) -> int:
    counts: dict[str, int] = client.get("/calls").json()
    return counts.get(what, 0)


def test_a_cacheable_view_runs_once_for_two_requests(site: httpx.Client) -> None:
    miss = site.get("/page")
    hit = site.get("/page")
    assert miss.text == hit.text == "page, call 1"
    assert "stored" in miss.headers["cache-status"] and "; hit" in hit.headers["cache-status"]
    assert int(hit.headers["age"]) >= 0 and hit.headers["cache-control"] == "max-age=60"
    assert hit.headers["content-type"] == "text/html; charset=utf-8"
    assert calls(site, "GET /page") == 1
    head = site.head("/page")
    assert (
        head.status_code == 200 and head.content == b"" and "; hit" in head.headers["cache-status"]
    )


def test_an_answer_that_sets_a_cookie_is_not_stored(site: httpx.Client) -> None:
    first, second = site.get("/cookie"), httpx.get(str(site.base_url) + "/cookie")
    assert first.cookies["session"] == "s1" and second.cookies["session"] == "s2"
    assert "httponly" in first.headers["set-cookie"].lower()
    assert "hit" not in second.headers["cache-status"]
    assert calls(site, "GET /cookie") == 2


def test_a_post_invalidates_the_stored_answer(site: httpx.Client) -> None:
    assert site.get("/item").text == "item, call 1"
    assert "; hit" in site.get("/item").headers["cache-status"]
    assert site.post("/item", content=b"x").text == "updated, call 1"
    again = site.get("/item")
    assert again.text == "item, call 2" and "hit" not in again.headers["cache-status"]
    assert calls(site, "GET /item") == 2 and calls(site, "POST /item") == 1


def test_vary_keeps_one_answer_per_language(site: httpx.Client) -> None:
    answers = [site.get("/vary", headers={"Accept-Language": lang}) for lang in ("fr", "de", "fr")]
    assert [a.text for a in answers] == ["language fr", "language de", "language fr"]
    assert "; hit" in answers[2].headers["cache-status"]
    assert "hit" not in answers[1].headers["cache-status"]
    assert calls(site, "GET /vary") == 2


@pytest.mark.parametrize("path, prefix", [("/stream", "chunk"), ("/astream", "async chunk")])
def test_a_streamed_answer_is_stored_while_it_streams(
    site: httpx.Client, path: str, prefix: str
) -> None:
    miss, hit = site.get(path), site.get(path)
    assert miss.text == hit.text == "".join(f"{prefix} {i} of call 1\n" for i in range(5))
    assert "; hit" in hit.headers["cache-status"]
    assert calls(site, f"GET {path}") == 1


def test_answers_are_compressed_and_hits_keep_the_coding(site: httpx.Client) -> None:
    br = {"Accept-Encoding": "br"}
    miss, hit = site.get("/text", headers=br), site.get("/text", headers=br)
    plain = site.get("/text", headers={"Accept-Encoding": "identity"})
    assert miss.headers["content-encoding"] == hit.headers["content-encoding"] == "br"
    assert "accept-encoding" in hit.headers["vary"].lower()
    assert "; hit" in hit.headers["cache-status"] and "; hit" in plain.headers["cache-status"]
    assert "content-encoding" not in plain.headers
    assert miss.text == hit.text == plain.text and plain.text.startswith("call 1\n")
    assert int(hit.headers["content-length"]) < len(plain.content) // 5
    assert calls(site, "GET /text") == 1


def test_a_disallowed_host_is_refused_before_the_cache(site: httpx.Client) -> None:
    site.get("/page")
    refused = site.get("/page", headers={"Host": "evil.example"})
    assert refused.status_code == 400 and "cache-status" not in refused.headers


def test_basic_auth_guards_a_path_before_the_cache(site: httpx.Client) -> None:
    refused = site.get("/private/page")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith('Basic realm="Ops"')
    assert calls(site, "GET /private/page") == 0  # nothing below the gate ran
    spoofed = {"X-Remote-User": "admin"}
    allowed = site.get("/private/page", auth=(USER, PASSWORD), headers=spoofed)
    assert allowed.text == "user ops, header ops, authorization False"
    # The answer is stored, and still no anonymous client gets it from the cache.
    assert site.get("/private/page").status_code == 401
    hit = site.get("/private/page", auth=(USER, PASSWORD))
    assert "; hit" in hit.headers["cache-status"] and hit.text == allowed.text
    assert site.get("/private/page", auth=(USER, "wrong")).status_code == 401
    assert calls(site, "GET /private/page") == 1


def test_a_stale_answer_is_refreshed_in_the_background(site: httpx.Client) -> None:
    assert site.get("/swr").text == "swr, call 1"
    stale = site.get("/swr")  # answered at once from the cache, and a refresh queued
    assert (
        stale.text == "swr, call 1"
        and "detail=stale-while-revalidate" in stale.headers["cache-status"]
    )
    deadline = time.monotonic() + 10
    while calls(site, "GET /swr") < 2:  # the views ran once more, off the request path
        assert time.monotonic() < deadline, "no background refresh"
    assert site.get("/swr").text == "swr, call 2"


def test_a_bad_setting_stops_django_at_start_naming_it() -> None:
    start = (
        "import django; django.setup()\n"
        "from django.core.handlers.wsgi import WSGIHandler\n"
        "WSGIHandler()\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("EDGECACHE_")},
        "DJANGO_SETTINGS_MODULE": "tests.django.site.settings",
        "EDGECACHE_COMPRESS": "sometimes",
    }
    result = subprocess.run(
        [sys.executable, "-c", start], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured: settings.EDGECACHE:" in result.stderr
    assert "compress" in result.stderr.splitlines()[-1]


def test_requests_for_a_cold_page_wait_for_one_call_of_the_view(site: httpx.Client) -> None:
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: site.get("/slow"), range(3)))
    assert {a.text for a in answers} == {"slow, call 1"}
    assert calls(site, "GET /slow") == 1
