"""The lockout attack on basic auth, replayed through a real ``edgecache proxy``
process: malformed headers are no guesses, failures count per (address, user name)
with a larger cap per address, and a DES crypt line is reported as unsupported.

Clients bind distinct loopback source addresses (127.0.0.2, ...), so the proxy sees
them as different addresses, as it would see different hosts."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import httpx
import pytest

from tests.proxy.conftest import Proxy, start_proxy
from tests.proxy.origin import Origin, running_origin

USERS = {"alice": "wonderland", "bob": "builder", "carol": "christmas"}
MALFORMED = ["Basic ", "Basic !!!", "Bearer x"]
DES_LINE = "dave:rl0uE2Iwp9QH."  # htpasswd -d output: 2 salt + 11 hash characters


def client(proxy: Proxy, address: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=proxy.url, transport=transport, timeout=10)


@pytest.fixture(scope="module")
def guarded(origin: Origin, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    tmp = tmp_path_factory.mktemp("auth")
    users = tmp / "users"
    lines = [
        f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(4)).decode()}" for u, p in USERS.items()
    ]
    users.write_text("\n".join([*lines, DES_LINE]) + "\n")
    with start_proxy(
        tmp,
        "--upstream",
        origin.url,
        "--auth",
        f"/echo:{users}:Ops",
        "--auth-failure-delay",
        "0",
        "--auth-max-failures",
        "3",
        "--auth-max-failures-per-address",
        "5",
        "--no-auth-memo",  # every right password is checked, so a lockout would show
        "--access-log",
        "off",
    ) as p:
        yield p


def raw_status(proxy: Proxy, address: str, authorization: str) -> int:
    """The status of one GET sent byte for byte (httpx refuses ``Basic `` itself)."""
    with socket.create_connection(("127.0.0.1", proxy.port), 10, (address, 0)) as sock:
        sock.sendall(
            b"GET /echo HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n"
            b"Authorization: " + authorization.encode() + b"\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def test_malformed_headers_are_refused_and_not_counted(guarded: Proxy) -> None:
    statuses = [raw_status(guarded, "127.0.0.2", value) for value in MALFORMED * 10]
    assert set(statuses) <= {400, 401} and len(statuses) == 30
    with client(guarded, "127.0.0.2") as c:
        # Thirty malformed headers, caps of 3 and 5: had one counted, this would be 429.
        assert c.get("/echo", auth=("alice", "wonderland")).status_code == 200
    assert "basic auth failed" not in guarded.log()  # no guess was recorded


def test_failures_count_per_address_and_user(guarded: Proxy) -> None:
    with client(guarded, "127.0.0.3") as c:
        assert [c.get("/echo", auth=("alice", "nope")).status_code for _ in range(3)] == [
            401,
            401,
            429,
        ]
        assert c.get("/echo", auth=("alice", "wonderland")).status_code == 429  # the pair
        assert c.get("/echo", auth=("bob", "builder")).status_code == 200  # same address
    with client(guarded, "127.0.0.4") as other:
        assert other.get("/echo", auth=("alice", "wonderland")).status_code == 200


def test_success_resets_the_pair(guarded: Proxy) -> None:
    with client(guarded, "127.0.0.5") as c:
        # Without the reset, the 4th failure would make 3 for the pair and get 429. (The
        # address count is not reset by a success: 4 of its 5 are used here.)
        for _ in range(2):
            assert c.get("/echo", auth=("alice", "x")).status_code == 401
            assert c.get("/echo", auth=("alice", "x")).status_code == 401
            assert c.get("/echo", auth=("alice", "wonderland")).status_code == 200


def test_the_address_cap_locks_every_user_from_it(guarded: Proxy) -> None:
    with client(guarded, "127.0.0.6") as c:
        # Five names, one failure each: no pair reaches 3, the address reaches 5.
        names = ["alice", "bob", "nobody1", "nobody2", "carol"]
        assert [c.get("/echo", auth=(n, "x")).status_code for n in names] == [401] * 4 + [429]
        for user, password in USERS.items():
            locked = c.get("/echo", auth=(user, password))
            assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
        assert c.get("/echo").status_code == 429  # even without credentials
    with client(guarded, "127.0.0.7") as other:
        assert other.get("/echo", auth=("bob", "builder")).status_code == 200


def test_des_crypt_line_is_reported_as_unsupported(guarded: Proxy) -> None:
    log = guarded.wait_for_log("DES crypt")
    line = next(line for line in log.splitlines() if "DES crypt" in line)
    assert "line 4" in line and "not supported" in line
    assert "auth_plaintext" not in line and "dave" not in line  # no user names logged
    with client(guarded, "127.0.0.8") as c:
        assert c.get("/echo", auth=("dave", "rl0uE2Iwp9QH.")).status_code == 401


def test_no_password_or_user_name_is_logged(guarded: Proxy) -> None:
    log = guarded.log()
    for user, password in USERS.items():
        assert user not in log and password not in log


def test_a_background_refresh_goes_upstream_as_the_user_who_got_the_stale_answer(
    tmp_path: Path,
) -> None:
    # An origin behind the gate trusts X-Remote-User; an anonymous refresh would get
    # its login page, which would then replace the entry authenticated users get.
    users = tmp_path / "users"
    users.write_text("alice:" + bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode() + "\n")
    with (
        running_origin() as origin,
        start_proxy(
            tmp_path,
            "--upstream",
            origin.url,
            "--auth",
            f"/answer/:{users}:Ops",
            "--auth-failure-delay",
            "0",
        ) as proxy,
    ):
        url = proxy.url + "/answer/p?Cache-Control=max-age%3D1,%20stale-while-revalidate%3D60"
        with httpx.Client(auth=("alice", "pw"), timeout=10) as client:
            client.get(url)
            time.sleep(1.3)
            stale = client.get(url)  # answered stale; the refresh goes in the background
            deadline = time.monotonic() + 5
            while len([r for r in origin.requests if r["path"].startswith("/answer/")]) < 2:
                assert time.monotonic() < deadline, "no background refresh"
                time.sleep(0.05)
    assert "stale-while-revalidate" in stale.headers["cache-status"]
    refresh = [r for r in origin.requests if r["path"].startswith("/answer/")][1]
    assert ("x-remote-user", "alice") in refresh["headers"]
    assert ("x-forwarded-for", "127.0.0.1") in refresh["headers"]


def test_a_routes_header_rules_are_on_its_401_too(tmp_path: Path) -> None:
    # CORS and security headers of a route reach a refused browser as they would an
    # allowed one (in the chain, header rules sit outside the auth gate).
    users = tmp_path / "users"
    users.write_text("alice:" + bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode() + "\n")
    with running_origin() as origin:
        config = tmp_path / "routes.toml"
        config.write_text(
            f'[[pool]]\nname = "app"\nservers = ["{origin.url}"]\n\n'
            f'[[route]]\npath = "/"\npool = "app"\n'
            f'auth = {{user_file = "{users}", realm = "R"}}\n'
            '[[route.rules]]\nmatch = "."\n'
            'headers = {"Access-Control-Allow-Origin" = "https://app.example"}\n'
        )
        args = ("--config", str(config), "--auth-failure-delay", "0")
        with start_proxy(tmp_path, *args) as proxy:
            allowed = httpx.get(proxy.url + "/cached", auth=("alice", "pw"))
            refused = httpx.get(proxy.url + "/cached")
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == "https://app.example"
