"""Reload as nginx users expect it (``kill -HUP``, ``edgecache reload``): the route file
and user files are read again, the cache is kept, open connections go on, and a bad new
configuration is refused with its file, line and key while the old one keeps serving."""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from tests.proxy.conftest import ROOT, Proxy, start_proxy
from tests.proxy.origin import Origin, running_origin

ROUTES = """
[[pool]]
name = "app"
servers = ["{url}"]

[[route]]
path = "/"
pool = "app"
{extra}
"""


@pytest.fixture(scope="module")
def second() -> Iterator[Origin]:
    with running_origin() as o:
        yield o


def _write(path: Path, origin: Origin, extra: str = "") -> None:
    path.write_text(ROUTES.format(url=origin.url, extra=extra))


def _reloaded(proxy: Proxy, count: int) -> str:
    proxy.proc.send_signal(signal.SIGHUP)
    return proxy.wait_for_log(f"reloaded ({count})")


def _get(sock: socket.socket, path: str) -> bytes:
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: t.example\r\n\r\n" % path.encode())
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"cached body "):
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    return data


def test_reload_rereads_routes_keeps_cache_and_connections(
    origin: Origin, second: Origin, tmp_path: Path
) -> None:
    config = tmp_path / "routes.toml"
    _write(config, origin)
    with start_proxy(tmp_path, "--config", str(config)) as proxy:
        with httpx.Client(base_url=proxy.url) as client:
            assert "stored" in client.get("/cached?reload=1").headers["cache-status"]
        kept = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        with kept:
            assert b" 200 " in _get(kept, "/cached?reload=1")
            extra = '[[route.rules]]\nmatch = "."\nheaders = {"X-Reloaded" = "yes"}\n'
            _write(config, origin, extra)
            _reloaded(proxy, 1)
            again = _get(kept, "/cached?reload=1")  # the open connection is answered
            assert kept.recv(1) == b""  # and then closed: its next request meets the new
        assert b" 200 " in again and b"connection: close" in again.lower()
        with httpx.Client(base_url=proxy.url) as client:
            hit = client.get("/cached?reload=1")
            fresh = client.get("/cached?reload=2")
    assert hit.headers["cache-status"].startswith("edgecache; hit")  # the cache was kept
    assert fresh.headers.get("x-reloaded") == "yes"  # the new route file is in force


def test_a_bad_route_file_is_refused_and_the_old_one_serves(origin: Origin, tmp_path: Path) -> None:
    config = tmp_path / "routes.toml"
    _write(config, origin)
    with start_proxy(tmp_path, "--config", str(config)) as proxy:
        config.write_text(config.read_text() + '\n[[route]]\npath = "/x/"\npool = "nope"\n')
        proxy.proc.send_signal(signal.SIGHUP)
        log = proxy.wait_for_log("reload refused")
        answer = httpx.get(f"{proxy.url}/cached?refused=1")
        alive = proxy.proc.poll() is None
    assert alive
    assert f"{config}:" in log and "key 'pool': unknown pool 'nope'" in log
    assert answer.status_code == 200


def test_check_config_validates_without_starting(origin: Origin, tmp_path: Path) -> None:
    config = tmp_path / "routes.toml"
    _write(config, origin)

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "edgecache", "check-config", "--config", str(config)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )

    good = check()
    config.write_text(config.read_text() + '\n[[route]]\npath = "/x/"\ncolour = "blue"\n')
    bad = check()
    assert good.returncode == 0 and "ok" in good.stdout
    assert bad.returncode == 2 and "key 'colour': unknown key" in bad.stderr


def test_edgecache_reload_signals_the_server_of_the_pid_file(
    origin: Origin, tmp_path: Path
) -> None:
    config = tmp_path / "routes.toml"
    pid_file = tmp_path / "edgecache.pid"
    _write(config, origin)
    with start_proxy(tmp_path, "--config", str(config), "--pid-file", str(pid_file)) as proxy:
        assert pid_file.read_text().strip() == str(proxy.proc.pid)
        _write(config, origin, '[[route.rules]]\nmatch = "."\nheaders = {"X-Via-Reload" = "1"}\n')
        done = subprocess.run(
            [sys.executable, "-m", "edgecache", "reload", "--pid-file", str(pid_file)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
        proxy.wait_for_log("reloaded (1)")
        answer = httpx.get(f"{proxy.url}/cached?pid=1")
    assert done.returncode == 0, done.stderr
    assert answer.headers.get("x-via-reload") == "1"
    assert not pid_file.exists()  # removed at exit


def test_reload_under_load_fails_no_request_and_keeps_the_hits(
    origin: Origin, tmp_path: Path
) -> None:
    config = tmp_path / "routes.toml"
    _write(config, origin)
    statuses: list[str] = []
    failures: list[BaseException] = []
    with start_proxy(tmp_path, "--config", str(config)) as proxy:
        httpx.get(f"{proxy.url}/cached?load=1")  # stored

        def load() -> None:
            # Half on one keep-alive connection, half on a new connection each.
            with httpx.Client(base_url=proxy.url, timeout=10) as kept:
                for i in range(400):
                    try:
                        if i % 2:
                            answer = kept.get("/cached?load=1")
                        else:
                            answer = httpx.get(f"{proxy.url}/cached?load=1", timeout=10)
                        assert answer.status_code == 200
                        statuses.append(answer.headers["cache-status"])
                    except Exception as exc:  # counted, then asserted
                        failures.append(exc)

        worker = threading.Thread(target=load)
        worker.start()
        for count in (1, 2):
            while len(statuses) < 100 * count:
                worker.join(0.01)
            _reloaded(proxy, count)
        worker.join(60)
    assert not failures, failures[:3]
    assert len(statuses) == 400
    hits = sum(1 for s in statuses if s.startswith("edgecache; hit"))
    assert hits == 400  # the cache survived both reloads: no request went upstream again


def test_a_certificate_half_renewed_is_refused_and_tls_goes_on(
    origin: Origin, tmp_path: Path
) -> None:
    ca = trustme.CA()
    first, second = ca.issue_cert("127.0.0.1"), ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "live.crt", tmp_path / "live.key"
    first.cert_chain_pems[0].write_to_path(str(certfile))
    first.private_key_pem.write_to_path(str(keyfile))
    client = ssl.create_default_context()
    ca.configure_trust(client)
    args = ("--upstream", origin.url, "--certfile", str(certfile), "--keyfile", str(keyfile))
    with start_proxy(tmp_path, *args, scheme="https", verify=client) as proxy:
        before = httpx.get(proxy.url + "/cached?tls=1", verify=client)
        second.cert_chain_pems[0].write_to_path(str(certfile))  # the key is not replaced yet
        proxy.proc.send_signal(signal.SIGHUP)
        log = proxy.wait_for_log("reload refused")
        after = httpx.get(proxy.url + "/cached?tls=2", verify=client)
    assert before.status_code == 200 and after.status_code == 200  # handshakes still work
    assert "key values mismatch" in log.lower()  # the refusal names why
