"""The wire runner as a real process: TLS (hardened, ALPN, HSTS) with the redirect
listener, workers under the supervisor, graceful SIGTERM, the user in the access log."""

from __future__ import annotations

import signal
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import trustme

from tests.proxy.conftest import free_port, start_proxy
from tests.proxy.origin import Origin, json_body


def test_tls_hsts_alpn_and_redirect(origin: Origin, tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    certfile, keyfile = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    client = ssl.create_default_context()
    ca.configure_trust(client)
    redirect_port = free_port()
    with start_proxy(
        tmp_path,
        "--upstream",
        origin.url,
        "--certfile",
        str(certfile),
        "--keyfile",
        str(keyfile),
        "--hsts",
        "600",
        "--redirect-http-port",
        str(redirect_port),
        scheme="https",
        verify=client,
    ) as p:
        resp = httpx.get(p.url + "/echo", verify=client)
        assert resp.headers["strict-transport-security"] == "max-age=600"
        assert dict(json_body(resp.content)["headers"])["x-forwarded-proto"] == "https"
        client.set_alpn_protocols(["h2", "http/1.1"])
        with (
            socket.create_connection(("127.0.0.1", p.port)) as raw,
            client.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            assert tls.selected_alpn_protocol() == "h2"  # HTTP/2 is on by default
        moved = httpx.get(f"http://127.0.0.1:{redirect_port}/a?b=1")
        assert moved.status_code == 308
        assert moved.headers["location"] == f"https://127.0.0.1:{p.port}/a?b=1"
        assert "strict-transport-security" not in moved.headers  # not over plain HTTP
        assert "ready" in p.log()


def test_workers_and_sigterm(origin: Origin, tmp_path: Path) -> None:
    with start_proxy(tmp_path, "--upstream", origin.url, "--workers", "2") as p:
        assert all(httpx.get(p.url + "/echo").status_code == 200 for _ in range(10))
        p.proc.send_signal(signal.SIGTERM)
        assert p.proc.wait(40) == 0
    # Nobody listens any more: the workers went with the supervisor.
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", p.port)) != 0


def test_sigterm_lets_the_request_under_way_finish(origin: Origin, tmp_path: Path) -> None:
    with start_proxy(
        tmp_path, "--upstream", origin.url, "--read-timeout", "10"
    ) as p:
        result: dict[str, Any] = {}

        def slow() -> None:
            result["resp"] = httpx.get(p.url + "/slow?s=1", timeout=10)

        thread = threading.Thread(target=slow)
        thread.start()
        for _ in range(250):
            if any(r["path"].startswith("/slow") for r in origin.requests[-3:]):
                break
            threading.Event().wait(0.02)
        p.proc.send_signal(signal.SIGTERM)
        thread.join(15)
        assert result["resp"].status_code == 200 and result["resp"].text == "slow"
        assert p.proc.wait(10) == 0


def test_access_log_names_the_authenticated_user(origin: Origin, tmp_path: Path) -> None:
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
        assert httpx.get(p.url + "/echo?who=1", auth=("ops", "s3cret")).status_code == 200
        line = [x for x in p.wait_for_log("/echo?who=1").splitlines() if "/echo?who=1" in x][-1]
        assert line.split()[2] == "ops"  # $remote_user
        assert "s3cret" not in p.log()
