"""``edgecache`` as a real process: serve, bad settings failing at start naming them,
the help, flags and variables."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from edgecache import Settings, __version__
from edgecache.cli import build_parser
from edgecache.settings.flags import flag_variables
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


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"edgecache {__version__}"
