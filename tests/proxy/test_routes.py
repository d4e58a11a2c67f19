"""Routes, pools, static roots and websockets through ``edgecache proxy`` processes."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import aiohttp
import httpx
import pytest
import trustme

from tests.integration.servers import free_socket
from tests.proxy.conftest import ROOT, start_proxy
from tests.proxy.origin import Origin, running_origin


@pytest.fixture(scope="module")
def three() -> Iterator[list[Origin]]:
    with ExitStack() as stack:
        yield [stack.enter_context(running_origin()) for _ in range(3)]


def test_weighted_round_robin_proportions(three: list[Origin], tmp_path: Path) -> None:
    args = ["--no-cache"]
    for origin, weight in zip(three, (1, 2, 3), strict=True):
        args += ["--upstream", f"{origin.url};weight={weight}"]
    before = [len(o.requests) for o in three]
    with start_proxy(tmp_path, *args) as p, httpx.Client(base_url=p.url) as client:
        for _ in range(1200):
            assert client.get("/echo").status_code == 200
    got = [len(o.requests) - b for o, b in zip(three, before, strict=True)]
    for count, share in zip(got, (1 / 6, 2 / 6, 3 / 6), strict=True):
        assert abs(count / 1200 - share) <= 0.05, got


def test_killed_backend_is_skipped_and_readmitted(tmp_path: Path) -> None:
    with running_origin() as steady:
        holder = free_socket()  # bound, not listening: the backend is "killed"
        flaky_url = f"http://127.0.0.1:{holder.getsockname()[1]}"
        args = [
            "--no-cache",
            "--upstream",
            steady.url,
            "--upstream",
            flaky_url,
            "--max-fails",
            "2",
            "--fail-timeout",
            "3",  # long enough that the 20 requests below stay inside it
        ]
        with start_proxy(tmp_path, *args) as p, httpx.Client(base_url=p.url) as client:
            # Refused connections are retried on the other member: no client sees one.
            assert all(client.get("/echo").status_code == 200 for _ in range(20))
            assert "trying the next" in p.wait_for_log("trying the next")
            refusals = p.log().count("trying the next")
            for _ in range(20):
                client.get("/echo")
            assert p.log().count("trying the next") == refusals  # skipped while down
            # The backend comes back on that port and is admitted again.
            holder.close()
            flaky = _origin_on(int(flaky_url.rsplit(":", 1)[1]))
            with flaky as revived:
                deadline = time.monotonic() + 10
                while not revived.requests:
                    assert time.monotonic() < deadline, "backend never re-admitted"
                    client.get("/echo")
                    time.sleep(0.05)


def _origin_on(port: int):  # type: ignore[no-untyped-def]
    from contextlib import contextmanager

    from tests.proxy import origin as origin_module

    @contextmanager
    def run() -> Iterator[Origin]:
        real = origin_module.free_socket

        def fixed() -> socket.socket:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            return s

        origin_module.free_socket = fixed  # type: ignore[assignment]
        try:
            with running_origin() as o:
                yield o
        finally:
            origin_module.free_socket = real

    return run()


SEED_LIKE = """
[[pool]]
name = "api"
servers = ["{a}", "{b};weight=2"]

[[route]]
path = "/api/"
pool = "api"

[[route]]
path = "/"
static = "{root}"
spa = true
[[route.rules]]
match = "service-worker\\\\.js$"
headers = {{"Cache-Control" = "no-store"}}
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "build"
    root.mkdir()
    (root / "index.html").write_text("<!doctype html><div id=app></div>")
    (root / "service-worker.js").write_text("self.addEventListener('fetch', () => {})")
    (tmp_path / "secret.txt").write_text("outside the root")
    return root


def test_a_route_file_like_the_seed(three: list[Origin], site: Path, tmp_path: Path) -> None:
    config = tmp_path / "edgecache.toml"
    config.write_text(SEED_LIKE.format(a=three[0].url, b=three[1].url, root=site))
    with start_proxy(tmp_path, "--config", str(config)) as p, httpx.Client(base_url=p.url) as c:
        api = c.get("/api/echo?x=1")
        assert api.status_code == 200 and api.json()["path"] == "/api/echo?x=1"
        assert c.get("/").text.startswith("<!doctype html>")
        assert c.get("/dashboard/settings").text.startswith("<!doctype html>")  # SPA
        worker = c.get("/service-worker.js")
        assert worker.headers["cache-control"] == "no-store"
        assert "addEventListener" in worker.text


@pytest.mark.parametrize(
    "target",
    [
        b"/../secret.txt",
        b"/%2e%2e/secret.txt",
        b"/%2E%2E%2Fsecret.txt",
        b"/..%2fsecret.txt",
        b"/static/..%2f..%2fsecret.txt",
        b"//../secret.txt",
        b"/.%2e/secret.txt",
    ],
)
def test_traversal_through_a_raw_socket(site: Path, tmp_path: Path, target: bytes) -> None:
    config = tmp_path / "static.toml"
    config.write_text(f'[[route]]\npath = "/"\nstatic = "{site}"\n')
    with start_proxy(tmp_path, "--config", str(config)) as p:
        with socket.create_connection(("127.0.0.1", p.port), timeout=5) as sock:
            sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        assert data.split(b" ")[1] in (b"400", b"404"), data[:80]
        assert b"outside the root" not in data


def _proxy_with(config: Path, text: str) -> subprocess.CompletedProcess[str]:
    config.write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "edgecache", "proxy", "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_route_file_errors_name_line_and_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    result = _proxy_with(
        config,
        '[[pool]]\nname = "api"\nservers = ["http://127.0.0.1:1"]\n\n'
        '[[route]]\npath = "/api/"\npool = "apii"\n',
    )
    assert result.returncode == 2
    assert f"{config}:7: [[route]] #1 key 'pool': unknown pool 'apii'" in result.stderr
    result = _proxy_with(config, '[[route]]\npath = "/"\nstatic = "/srv"\ncolour = "blue"\n')
    assert ":4: [[route]] #1 key 'colour': unknown key" in result.stderr
    result = _proxy_with(config, '[[route]\npath = "/"\n')
    assert result.returncode == 2 and "line 1" in result.stderr


def test_websocket_echo_through_the_proxy_with_tls(origin: Origin, tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    async def talk(url: str) -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(url, ssl=client_ctx, protocols=("chat",)) as ws,
        ):
            assert ws.protocol == "chat"
            await ws.send_str("hello")
            assert (await ws.receive()).data == "echo:hello"
            await ws.send_bytes(b"abc")
            assert (await ws.receive()).data == b"cba"
            await ws.close()
        # aiohttp's documented graceful shutdown: an SSL transport finishes closing
        # only after the session has; without this wait it is left for the collector,
        # whose ResourceWarning then fails whichever test is running at that moment.
        await asyncio.sleep(0.25)

    with start_proxy(
        tmp_path,
        "--upstream",
        origin.url,
        "--certfile",
        str(certfile),
        "--keyfile",
        str(keyfile),
        scheme="https",
        verify=client_ctx,
    ) as p:
        asyncio.run(talk(p.url.replace("https", "wss") + "/ws"))


def test_non_idempotent_requests_are_not_retried(tmp_path: Path) -> None:
    with running_origin() as alive:
        # Bound but not listening: connections are refused, and no other test can
        # take the port meanwhile.
        holder = free_socket()
        dead = f"http://127.0.0.1:{holder.getsockname()[1]}"
        # least-conn with nothing in flight picks the first member, the dead one, every
        # time: a GET is retried on the live one, a POST is not.
        with start_proxy(
            tmp_path,
            "--no-cache",
            "--balance",
            "least-conn",
            "--max-fails",
            "100",
            "--upstream",
            dead,
            "--upstream",
            alive.url,
        ) as p:
            assert httpx.get(p.url + "/echo").status_code == 200
            statuses = [httpx.post(p.url + "/echo", content=b"once").status_code for _ in range(3)]
        holder.close()
        assert statuses == [502, 502, 502]
        assert not [r for r in alive.requests if r["method"] == "POST"]


def test_active_health_check_takes_a_backend_out(three: list[Origin], tmp_path: Path) -> None:
    sick, well = three[0], three[1]
    sick.healthy = False
    try:
        with start_proxy(
            tmp_path,
            "--no-cache",
            "--upstream",
            sick.url,
            "--upstream",
            well.url,
            "--health-path",
            "/healthz",
            "--health-interval",
            "0.2",
        ) as p:
            deadline = time.monotonic() + 5
            # Two probes seen: the first one's answer has surely been acted on.
            while sum(r["path"] == "/healthz" for r in sick.requests) < 2:
                assert time.monotonic() < deadline, "no health probe seen"
                time.sleep(0.02)
            before = len([r for r in sick.requests if r["path"] != "/healthz"])
            for _ in range(10):
                assert httpx.get(p.url + "/echo").status_code == 200
            after = len([r for r in sick.requests if r["path"] != "/healthz"])
            assert after == before
    finally:
        sick.healthy = True


def test_compress_static_command(site: Path) -> None:
    (site / "big.css").write_text("body { color: red; }\n" * 200)
    result = subprocess.run(
        [sys.executable, "-m", "edgecache", "compress-static", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "wrote" in result.stderr
    assert (site / "big.css.br").exists() and (site / "big.css.gz").exists()


def test_a_route_sets_its_own_read_timeout_over_its_pools(
    three: list[Origin], tmp_path: Path
) -> None:
    # The seed's /api/ sets proxy_read_timeout 300; here a pool waits 1 s for an
    # answer head and the /api/ route to it waits 3 s.
    config = tmp_path / "timeouts.toml"
    config.write_text(
        f'[[pool]]\nname = "app"\nservers = ["{three[0].url}"]\nread_timeout = 1\n\n'
        '[[route]]\npath = "/api/"\npool = "app"\nread_timeout = 3\n\n'
        '[[route]]\npath = "/"\npool = "app"\n'
    )
    with start_proxy(tmp_path, "--config", str(config)) as proxy:
        patient = httpx.get(f"{proxy.url}/api/slow?s=1.5", timeout=10)
        hasty = httpx.get(f"{proxy.url}/slow?s=1.5", timeout=10)
    assert patient.status_code == 200 and patient.content == b"slow"
    assert hasty.status_code == 504
    bad = _proxy_with(config, '[[route]]\npath = "/"\nstatic = "/srv"\nread_timeout = 3\n')
    assert ":4: [[route]] #1 key 'read_timeout': only a route to a pool has one" in bad.stderr


def test_a_route_opts_in_to_a_default_ttl(three: list[Origin], tmp_path: Path) -> None:
    # nginx's proxy_cache_valid: /assets/ answers that say nothing of caching are
    # fresh for a minute; elsewhere they are not stored, as the RFC has it.
    config = tmp_path / "ttl.toml"
    config.write_text(
        f'[[pool]]\nname = "app"\nservers = ["{three[0].url}"]\n\n'
        '[[route]]\npath = "/answer/assets/"\npool = "app"\ndefault_ttl = "1m"\n\n'
        '[[route]]\npath = "/"\npool = "app"\n'
    )
    with start_proxy(tmp_path, "--config", str(config)) as proxy, httpx.Client() as client:
        assets = [client.get(f"{proxy.url}/answer/assets/app.js") for _ in range(2)]
        plain = [client.get(f"{proxy.url}/answer/page") for _ in range(2)]
    assert "stored" in assets[0].headers["cache-status"]
    assert assets[1].headers["cache-status"].startswith("edgecache; hit; ttl=")
    assert all("stored" not in p.headers["cache-status"] for p in plain)
    assert all("hit" not in p.headers["cache-status"] for p in plain)
