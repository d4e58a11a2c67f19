"""``edgecache`` as a real process: serve, bad settings failing at start naming them,
the help, flags and variables."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx
import pytest

from edgecache import Settings, __version__
from edgecache.cli import build_parser
from edgecache.core.exchange import Outcome
from edgecache.metrics import outcome
from edgecache.settings.flags import flag_variables
from tests.integration.servers import free_socket, wait_for_http
from tests.proxy.origin import running_origin

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
def running(
    *args: str, stderr: IO[str] | None = None, env: dict[str, str] | None = None
) -> Iterator[tuple[int, str]]:
    """``python -m edgecache ARGS --port P``, until it answers; yields (pid, url)."""
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgecache", *args, "--port", str(port)],
        cwd=ROOT,
        stderr=stderr,
        env={**os.environ, **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/private", proc)
        yield proc.pid, url
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def serving(*args: str) -> Iterator[str]:
    with running("serve", *args, "--log-level", "warning") as (_, url):
        yield url


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


# -- the help, flags and variables (issue 14) ------------------------------------------


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_flag_has_a_description() -> None:
    for name, command in _commands().items():
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            text = (action.help or "").split("[EDGECACHE_")[0].strip()
            assert len(text) > 10, (name, action.option_strings or action.dest)


def test_help_lists_choices_and_readable_sizes() -> None:
    result = run_cli("proxy", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "--balance {round-robin,least-conn}" in text
    assert "--access-log {combined,json,off}" in text
    assert "--cache-set-cookie {off,strip,keep}" in text
    assert "default: 256 MiB" in text and "268435456" not in text
    assert "default: 100 MiB" in text and "default: 1m" in text


def test_serve_help_has_no_proxy_only_flags() -> None:
    serve = run_cli("serve", "--help").stdout
    proxy = run_cli("proxy", "--help").stdout
    for flag in ("--upstream", "--balance", "--config", "--trusted-proxies", "--read-timeout"):
        assert flag in proxy and flag not in serve, flag
    assert "--max-bytes" in serve and "--workers" in serve


def test_a_mistyped_flag_shows_the_commands_usage_and_the_nearest_flag() -> None:
    result = run_cli("proxy", "--max-byts", "1G")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: edgecache proxy")
    assert "did you mean --max-bytes?" in result.stderr
    result = run_cli("serve", "examples.hello:app", "--ballance", "least-conn")
    assert result.returncode == 2 and result.stderr.startswith("usage: edgecache serve")


def test_a_bad_flag_value_names_the_setting() -> None:
    result = run_cli("proxy", "--balance", "random")
    assert result.returncode == 2 and result.stderr.startswith("usage: edgecache proxy")
    assert "setting balance (EDGECACHE_BALANCE, --balance) = 'random'" in result.stderr
    assert "round-robin, least-conn" in result.stderr


def test_flags_accept_sizes_and_durations_as_shown() -> None:
    args = build_parser().parse_args(
        ["proxy", "--max-bytes", "256MiB", "--max-entry-bytes", "1 MiB", "--read-timeout", "5m"]
    )
    settings = Settings.from_env(flag_variables(args, Settings.specs()))
    assert settings.max_bytes == 256 * 1024**2 and settings.max_entry_bytes == 1024**2
    assert settings.read_timeout == 300.0


def test_an_unknown_variable_warns_at_start_with_the_nearest_name() -> None:
    result = run_cli(
        "serve",
        "examples.hello:app",
        env={"EDGECACHE_COMPRES": "off", "EDGECACHE_MAX_BYTES": "plenty"},
    )
    assert "EDGECACHE_COMPRES is not a setting" in result.stderr
    assert "did you mean EDGECACHE_COMPRESS?" in result.stderr


def test_the_unknown_variable_warning_is_not_repeated_by_workers() -> None:
    with tempfile.TemporaryFile("w+") as log:
        args = ("serve", "examples.hello:app", "--workers", "2")
        with running(*args, stderr=log, env={"EDGECACHE_COMPRES": "off"}):
            pass
        log.seek(0)
        text = log.read()
    assert text.count("EDGECACHE_COMPRES is not a setting") == 1, text


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"edgecache {__version__}"


# -- validation does not build the app (issue 10) -------------------------------------


def _threads_and_log(store: str, users: str) -> tuple[int, str]:
    """Threads of a started proxy once it answers, and what it logged."""
    with tempfile.TemporaryFile("w+") as log:
        args = ["proxy", "--upstream", "http://127.0.0.1:1"]
        auth = ["--auth", f"/:{users}", "--auth-plaintext", "--store", store]
        with running(*args, *auth, stderr=log) as (pid, _):
            threads = len(os.listdir(f"/proc/{pid}/task"))
        log.seek(0)
        return threads, log.read()


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
def test_the_app_is_built_once_at_start(redis_url: str, tmp_path: Path) -> None:
    """Validation used to build the whole chain once more before serving: every user
    file was loaded (and logged) twice, and a Redis store's two threads leaked."""
    users = tmp_path / "users"
    users.write_text("alice:secret\n")
    memory_threads, log = _threads_and_log("memory", str(users))
    assert log.count(f"loaded 1 users from {users}") == 1, log
    redis_threads, log = _threads_and_log(redis_url, str(users))
    assert log.count(f"loaded 1 users from {users}") == 1, log
    assert redis_threads - memory_threads == 2  # one store's writer and listener


def test_a_bad_route_file_fails_at_start_without_building(tmp_path: Path) -> None:
    routes = tmp_path / "routes.toml"
    routes.write_text('[[route]]\npath = "/"\nstatic = "/no/such/dir"\n')
    result = run_cli("proxy", "--config", str(routes))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "static root '/no/such/dir' is not a directory" in result.stderr
    result = run_cli("proxy", "--upstream", "http://127.0.0.1:1", "--auth", "/:/no/users")
    assert result.returncode == 2 and "user file '/no/users' cannot be read" in result.stderr
    result = run_cli("serve", "examples.hello:app", "--store", "disk", "--store-path", "/proc/x")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "setting store_path (EDGECACHE_STORE_PATH, --store-path) = '/proc/x'" in result.stderr


# -- request metrics read the cache's outcome (issue 10) --------------------------------


def _requests_by_outcome(url: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    scrape = httpx.get(url + "/_edgecache/metrics", headers={"Authorization": "Bearer tok"})
    return {
        s.labels["cache"]: s.value
        for family in text_string_to_metric_families(scrape.text)
        for s in family.samples
        if s.name == "edgecache_requests_total"
    }


def test_requests_are_counted_by_the_caches_outcome() -> None:
    args = ("serve", "examples.hello:app", "--admin-token", "tok")
    with running(*args, "--log-level", "warning") as (_, url):
        before = _requests_by_outcome(url)  # the start-up probes of /private passed
        assert httpx.get(url + "/").status_code == 200
        assert "hit" in httpx.get(url + "/").headers["cache-status"]
        httpx.get(url + "/private")
        httpx.post(url + "/", content=b"x")
        after = _requests_by_outcome(url)
    assert after["miss"] - before["miss"] == 1
    assert after["hit"] - before["hit"] == 1
    assert after["pass"] - before["pass"] == 2  # private, and a POST
    assert after["none"] - before["none"] == 1  # the first scrape: no cache saw it
    assert after["stale"] == 0


def test_the_outcome_is_never_read_from_cache_status_text() -> None:
    assert [outcome(kind) for kind in Outcome] == ["hit", "stale", "miss", "pass", "none"]
    assert outcome(None) == "none"
    assert outcome("edgecache; hit; detail=stale") == "none"


def test_proxy_requests_are_counted_by_the_caches_outcome() -> None:
    """Hits answered at once and replayed, misses, passes and stale answers through
    the proxy's own handler."""
    with running_origin() as origin:
        args = ("proxy", "--upstream", origin.url, "--admin-token", "tok")
        with running(*args, "--log-level", "warning") as (_, url):
            before = _requests_by_outcome(url)
            statuses = [
                httpx.get(url + path).headers["cache-status"]
                for path in (
                    *["/cc/a?cc=max-age=60"] * 3,  # a miss, a hit, a replayed hit
                    "/cc/b?cc=no-store",
                    *["/cc/c?cc=max-age=0,stale-while-revalidate=60"] * 2,
                )
            ]
            after = _requests_by_outcome(url)
    assert "detail=stale" in statuses[-1] or "fwd=stale" in statuses[-1], statuses
    counted = {kind: after.get(kind, 0) - before.get(kind, 0) for kind in after}
    assert counted == {"hit": 2, "miss": 2, "pass": 1, "stale": 1, "none": 1}, statuses
