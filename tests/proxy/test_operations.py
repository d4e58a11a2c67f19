"""Running the proxy: TLS termination, redirects, HSTS, auth through the proxy, trusted
proxies, workers, graceful shutdown and clear errors at start."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
import trustme

from tests.proxy.conftest import ROOT, free_port, start_proxy
from tests.proxy.origin import Origin, json_body


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def cert_files(ca: trustme.CA, tmp_path: Path) -> tuple[str, str]:
    cert = ca.issue_cert("localhost", "127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    return str(certfile), str(keyfile)


def test_tls_termination_verified_by_the_client(
    ca: trustme.CA, cert_files: tuple[str, str], origin: Origin, tmp_path: Path
) -> None:
    certfile, keyfile = cert_files
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    redirect_port = free_port()
    with start_proxy(
        tmp_path,
        "--upstream",
        origin.url,
        "--certfile",
        certfile,
        "--keyfile",
        keyfile,
        "--hsts",
        "31536000",
        "--redirect-http-port",
        str(redirect_port),
        scheme="https",
        verify=client_ctx,
    ) as p:
        resp = httpx.get(p.url + "/echo", verify=client_ctx)
        assert resp.status_code == 200
        assert resp.headers["strict-transport-security"] == "max-age=31536000"
        seen = dict(json_body(resp.content)["headers"])
        assert seen["x-forwarded-proto"] == "https"
        # TLS 1.1 is refused; ALPN offers h2, then http/1.1.
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ca.configure_trust(old)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            old.minimum_version = ssl.TLSVersion.TLSv1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        with pytest.raises((ssl.SSLError, httpx.ConnectError)):
            httpx.get(p.url + "/echo", verify=old)
        alpn = ssl.create_default_context()
        ca.configure_trust(alpn)
        alpn.set_alpn_protocols(["h2", "http/1.1"])
        with (
            socket.create_connection(("127.0.0.1", p.port)) as raw,
            alpn.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            assert tls.selected_alpn_protocol() == "h2"
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
        redirect = httpx.get(f"http://127.0.0.1:{redirect_port}/a?b=1")
        assert redirect.status_code == 308
        assert redirect.headers["location"] == f"https://127.0.0.1:{p.port}/a?b=1"


def test_self_signed_says_so_loudly(origin: Origin, tmp_path: Path) -> None:
    with start_proxy(tmp_path, "--upstream", origin.url, "--self-signed", scheme="https") as p:
        assert httpx.get(p.url + "/echo", verify=False).status_code == 200
        assert "SELF-SIGNED" in p.wait_for_log("SELF-SIGNED")


def test_auth_through_the_proxy(origin: Origin, tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("ops:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode() + "\n")
    with start_proxy(
        tmp_path,
        "--upstream",
        origin.url,
        "--auth",
        f"/echo:{users}:Ops",
        "--auth-failure-delay",
        "0",
    ) as p:
        assert httpx.get(p.url + "/echo").status_code == 401
        resp = httpx.get(
            p.url + "/echo", auth=("ops", "s3cret"), headers={"X-Remote-User": "admin"}
        )
        seen = dict(json_body(resp.content)["headers"])
        assert seen["x-remote-user"] == "ops" and "authorization" not in seen
        assert httpx.get(p.url + "/multi").status_code == 200  # open path


def test_trusted_proxy_chain_and_options(origin: Origin, tmp_path: Path) -> None:
    with start_proxy(
        tmp_path,
        "--upstream",
        origin.url,
        "--trusted-proxies",
        "127.0.0.0/8",
        "--forwarded-header",
        "--no-preserve-host",
    ) as p:
        resp = httpx.get(
            p.url + "/echo",
            headers={
                "X-Forwarded-For": "203.0.113.9",
                "X-Forwarded-Proto": "https",
                "Host": "public.example",
            },
        )
        seen = dict(json_body(resp.content)["headers"])
        assert seen["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
        assert seen["x-forwarded-proto"] == "https"
        assert seen["host"] == origin.url.split("//")[1]
        assert seen["forwarded"] == 'for=127.0.0.1;proto=http;host="public.example"'


def test_json_access_log(origin: Origin, tmp_path: Path) -> None:
    with start_proxy(tmp_path, "--upstream", origin.url, "--access-log", "json") as p:
        httpx.get(p.url + "/echo")
        records = [
            json.loads(line)
            for line in p.wait_for_log('"/echo"').splitlines()
            if line.startswith("{") and '"/echo"' in line
        ]
        assert records and records[-1]["status"] == 200
        assert records[-1]["upstream_time"] is not None and "cache" in records[-1]


def test_workers(origin: Origin, tmp_path: Path) -> None:
    with start_proxy(tmp_path, "--upstream", origin.url, "--workers", "2") as p:
        assert all(httpx.get(p.url + "/echo").status_code == 200 for _ in range(10))


def test_graceful_shutdown_finishes_in_flight_requests(origin: Origin, tmp_path: Path) -> None:
    with start_proxy(tmp_path, "--upstream", origin.url, "--read-timeout", "10") as p:
        result: dict[str, Any] = {}

        def slow() -> None:
            result["resp"] = httpx.get(p.url + "/slow?s=1", timeout=10)

        thread = threading.Thread(target=slow)
        thread.start()
        deadline = 50
        while not any(r["path"].startswith("/slow") for r in origin.requests[-3:]):
            deadline -= 1
            assert deadline, "request did not reach the origin"
            threading.Event().wait(0.02)
        p.proc.send_signal(signal.SIGTERM)
        thread.join(10)
        assert result["resp"].status_code == 200 and result["resp"].text == "slow"
        assert p.proc.wait(10) == 0  # a graceful stop


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--upstream", "localhost:8000"], "EDGECACHE_UPSTREAM"),
        (["--upstream", "ftp://x"], "EDGECACHE_UPSTREAM"),
        ([], "upstream"),
        (
            [
                "--upstream",
                "http://127.0.0.1:1",
                "--certfile",
                "/nope.pem",
                "--keyfile",
                "/nope.key",
            ],
            "certfile",
        ),
        (["--upstream", "http://127.0.0.1:1", "--max-bytes", "lots"], "EDGECACHE_MAX_BYTES"),
        (["--upstream", "http://127.0.0.1:1", "--access-log", "xml"], "access_log"),
    ],
)
def test_bad_settings_fail_at_start(args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "edgecache", "proxy", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_port_in_use_fails_clearly() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "edgecache",
                "proxy",
                "--upstream",
                "http://127.0.0.1:1",
                "--port",
                str(port),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_metrics_add_up_across_workers(origin: Origin, tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    with start_proxy(
        tmp_path, "--upstream", origin.url, "--workers", "2", "--admin-token", "tok"
    ) as p:
        for _ in range(20):
            assert httpx.get(p.url + "/cached").status_code == 200

        def scrape() -> dict[str, float]:
            resp = httpx.get(p.url + "/_edgecache/metrics", headers={"Authorization": "Bearer tok"})
            assert resp.status_code == 200
            return {
                s.labels["cache"]: s.value
                for family in text_string_to_metric_families(resp.text)
                for s in family.samples
                if s.name == "edgecache_requests_total"
            }

        # Both workers' counts are in one answer: 20 requests (and the readiness ping).
        # Each worker adds its counts to the shared files once a second (proxy.traffic),
        # so the other worker's last second may still be on its way.
        deadline = time.monotonic() + 5
        while (requests := scrape()).get("hit", 0) + requests.get("miss", 0) < 20:
            assert time.monotonic() < deadline, requests
            time.sleep(0.2)
        assert requests.get("hit", 0) >= 18
        assert httpx.get(p.url + "/_edgecache/metrics").status_code == 401


@pytest.mark.parametrize("workers", ["1", "2"])
def test_temp_directories_go_at_exit(origin: Origin, tmp_path: Path, workers: str) -> None:
    # The self-signed key's folder and (with workers) the metrics and shared cache
    # folders, all made under TMPDIR, are gone once the proxy has stopped on SIGTERM.
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    with start_proxy(
        tmp_path,
        "--upstream",
        origin.url,
        "--self-signed",
        "--workers",
        workers,
        env={"TMPDIR": str(scratch)},
        scheme="https",
    ) as p:
        assert httpx.get(p.url + "/echo", verify=False).status_code == 200
        made = sorted(d.name.rsplit("-", 1)[0] for d in scratch.iterdir())
        several = ["edgecache-cache", "edgecache-metrics", "edgecache-tls"]
        expected = several if workers == "2" else ["edgecache-tls"]
        assert made == expected
        p.proc.send_signal(signal.SIGTERM)
        p.proc.wait(15)  # (exit codes on SIGTERM are tested above)
    assert list(scratch.iterdir()) == []
