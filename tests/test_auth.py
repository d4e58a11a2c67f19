"""Basic-auth gate and middleware (WSGI and ASGI, one scenario table), password
checks against hashes made by real tools, and ``edgecache passwd``."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import bcrypt
import pytest

import edgecache.auth
from edgecache import EdgeCache
from edgecache.asgi import BasicAuthMiddleware as AsgiAuth
from edgecache.auth import Allowed, Gate, GateDecision, verify_password
from edgecache.config import Settings
from edgecache.core.auth import AuthRule
from edgecache.errors import ConfigError
from edgecache.wsgi import BasicAuthMiddleware as WsgiAuth
from tests.drive import KINDS, Spec

PASSWORD = "correct horse"
# Made by Debian's apache2-utils htpasswd (-B -C 5, -m, -s, -2, -5), by hashlib for
# {SSHA} (sha1(password + salt) + salt) and by pyca/bcrypt for $2a$.
VECTORS = {
    "bcrypt-2y": "$2y$05$9lyILRX2wkTemJGP4ozQNOqEnS5keAtp7GD/8yWKkYn9o0uKFqlaa",
    "bcrypt-2a": "$2a$04$kWG7XwEcRNszhFyFjVzX/upB0V2xyiRWqvCnIjoPHP///NKIzy9ae",
    "apr1": "$apr1$gQ3CKaFL$b.dgWfBeM44QWJO1ymz5g/",
    "sha1": "{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=",
    "ssha": "{SSHA}37vsH2l+tvzscUC1Obz+2UZFcnsBAgMEc2FsdHNhbHQ=",
    "sha256-crypt": "$5$f7jwJ/pxpdwIyAiN$2kcHVycmteLCK9WoUnlWiNWpJnGZxXY7I0p1pFWZzt6",
    "sha512-crypt": "$6$3Sz/pFxhfctI7/ZD$p..4BRAx56/w93j/Me..dknCh4cSlbuuzmbGKsZ0DGWeJ/o5Cx9g"
    "RD5dl5Koe2DRMPRyZ401NUZU1fJxR0Wwl.",
}


@pytest.mark.parametrize("scheme", list(VECTORS))
def test_hash_formats(scheme: str) -> None:
    assert verify_password(VECTORS[scheme], PASSWORD)
    assert not verify_password(VECTORS[scheme], "wrong horse")
    assert not verify_password(VECTORS[scheme], "")


def test_bcrypt_2b_and_plain_text() -> None:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    assert hashed.startswith("$2b$") and verify_password(hashed, PASSWORD)
    assert verify_password("plain", "plain") and not verify_password("plain", "plain ")


def test_damaged_hash_is_a_failure_not_a_crash() -> None:
    assert not verify_password("$2y$05$short", PASSWORD)
    assert not verify_password("$apr1$x", PASSWORD)


@pytest.mark.skipif(shutil.which("htpasswd") is None, reason="apache2-utils not installed")
@pytest.mark.parametrize("flag", ["-B", "-m", "-s", "-2", "-5"])
def test_hashes_made_now_by_htpasswd(flag: str) -> None:
    out = subprocess.run(
        ["htpasswd", "-nb", flag, "u", "pässword:1"], capture_output=True, text=True, check=True
    ).stdout.strip()
    stored = out.split(":", 1)[1]
    assert verify_password(stored, "pässword:1") and not verify_password(stored, "x")


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def auth_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def users(tmp_path: Path) -> Path:
    path = tmp_path / "users.htpasswd"
    alice = bcrypt.hashpw(b"wonderland", bcrypt.gensalt(4)).decode()
    nobody = bcrypt.hashpw(b"", bcrypt.gensalt(4)).decode()
    path.write_text(f"alice:{alice}\nbad line\nbob:{VECTORS['apr1']}\nempty:{nobody}\n")
    return path


@pytest.fixture(params=["asgi", "wsgi"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def build(kind: str, users: Path, spec: Spec, clock: Clock, **options: Any) -> Any:
    make_app, _ = KINDS[kind]
    rules = [("/admin/", str(users), "Admin area")]
    settings: dict[str, Any] = {"auth": rules, "auth_failure_delay": 0.0, **options}
    if kind == "asgi":
        return AsgiAuth(make_app(spec), clock=clock, **settings)
    return WsgiAuth(make_app(spec), clock=clock, sleep=lambda s: None, **settings)


def call(kind: str, app: Any, path: str, **headers: str) -> Any:
    return KINDS[kind][1](
        app, path=path, headers={k.replace("_", "-"): v for k, v in headers.items()}
    )


def test_unprotected_path_passes(kind: str, users: Path) -> None:
    spec = Spec()
    app = build(kind, users, spec, Clock())
    assert call(kind, app, "/public").status == 200


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(None, id="no-credentials"),
        pytest.param(auth_header("alice", "looking-glass"), id="wrong-password"),
        pytest.param(auth_header("mallory", "wonderland"), id="unknown-user"),
        pytest.param("Basic %%%", id="bad-base64"),
        pytest.param("Basic " + base64.b64encode(b"alice").decode(), id="no-colon"),
        pytest.param("Basic " + base64.b64encode(b"\xffalice:x").decode(), id="not-utf-8"),
        pytest.param(auth_header("alice", ""), id="empty-password"),
        pytest.param("Bearer token", id="other-scheme"),
    ],
)
def test_refused_with_a_challenge(kind: str, users: Path, header: str | None) -> None:
    spec = Spec()
    app = build(kind, users, spec, Clock())
    reply = call(kind, app, "/admin/", **({"Authorization": header} if header else {}))
    assert reply.status == 401
    assert reply.headers.get(b"www-authenticate") == b'Basic realm="Admin area", charset="UTF-8"'
    assert reply.headers.get(b"cache-control") == b"no-store"
    assert spec.calls == 0  # nothing below ran


@pytest.mark.parametrize("path", ["/admin/", "/admin", "/public/../admin/x", "//admin/x"])
def test_every_spelling_of_the_prefix_is_protected(kind: str, users: Path, path: str) -> None:
    app = build(kind, users, Spec(), Clock())
    assert call(kind, app, path).status == 401


def test_valid_credentials_pass_with_user_and_without_credentials(kind: str, users: Path) -> None:
    seen: dict[str, Any] = {}

    async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
        seen.update(headers=dict(scope["headers"]), user=scope.get("edgecache.user"))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"secret page"})

    def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
        seen.update(
            headers={k: v for k, v in environ.items() if k.startswith("HTTP_")},
            user=environ.get("REMOTE_USER"),
        )
        start_response("200 OK", [])
        return [b"secret page"]

    inner = asgi_app if kind == "asgi" else wsgi_app
    wrapper = AsgiAuth if kind == "asgi" else WsgiAuth
    app = wrapper(inner, auth=[("/admin/", str(users))])
    reply = call(
        kind, app, "/admin/", Authorization=auth_header("alice", "wonderland"), X_Remote_User="root"
    )
    assert reply.status == 200 and reply.body == b"secret page"
    assert seen["user"] == "alice"
    if kind == "asgi":
        assert seen["headers"][b"x-remote-user"] == b"alice"
        assert b"authorization" not in seen["headers"]
    else:
        assert seen["headers"]["HTTP_X_REMOTE_USER"] == "alice"
        assert "HTTP_AUTHORIZATION" not in seen["headers"]
    # A client cannot claim a user on an open path either.
    call(kind, app, "/open", X_Remote_User="root")
    assert "root" not in str(seen["headers"])


def test_forwarding_credentials_is_an_option(kind: str, users: Path) -> None:
    seen: list[Any] = []

    async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(dict(scope["headers"]).get(b"authorization"))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
        seen.append(environ.get("HTTP_AUTHORIZATION"))
        start_response("200 OK", [])
        return [b""]

    inner = asgi_app if kind == "asgi" else wsgi_app
    wrapper = AsgiAuth if kind == "asgi" else WsgiAuth
    app = wrapper(inner, auth=[("/admin/", str(users))], auth_forward_credentials=True)
    call(kind, app, "/admin/", Authorization=auth_header("bob", "correct horse"))
    assert seen[0] is not None


def test_empty_password_user(kind: str, users: Path) -> None:
    app = build(kind, users, Spec(), Clock())
    assert call(kind, app, "/admin/", Authorization=auth_header("empty", "")).status == 200
    assert call(kind, app, "/admin/", Authorization=auth_header("empty", "x")).status == 401


def test_user_file_edited_while_running(kind: str, users: Path) -> None:
    clock = Clock()
    app = build(kind, users, Spec(), clock)
    carol = auth_header("carol", "new")
    assert call(kind, app, "/admin/", Authorization=carol).status == 401
    alice = auth_header("alice", "wonderland")
    assert call(kind, app, "/admin/", Authorization=alice).status == 200
    hashed = bcrypt.hashpw(b"new", bcrypt.gensalt(4)).decode()
    users.write_text(f"carol:{hashed}\n")  # alice removed, carol added
    clock.now += 2  # the file is looked at again after a second
    assert call(kind, app, "/admin/", Authorization=carol).status == 200
    assert call(kind, app, "/admin/", Authorization=alice).status == 401  # memo dropped too


def test_throttling_starts_after_failures_and_ends_after_its_window(kind: str, users: Path) -> None:
    clock = Clock()
    app = build(kind, users, Spec(), clock, auth_max_failures=3, auth_lockout=30)
    wrong = auth_header("alice", "guess")
    assert [call(kind, app, "/admin/", Authorization=wrong).status for _ in range(2)] == [401, 401]
    third = call(kind, app, "/admin/", Authorization=wrong)
    assert third.status == 429 and third.headers.get(b"retry-after") == b"30"
    # Even the right password waits out the lockout from this address.
    right = auth_header("alice", "wonderland")
    assert call(kind, app, "/admin/", Authorization=right).status == 429
    clock.now += 31
    assert call(kind, app, "/admin/", Authorization=right).status == 200


def test_failures_are_slowed(users: Path) -> None:
    slept: list[float] = []
    app = WsgiAuth(
        KINDS["wsgi"][0](Spec()),
        auth=[("/admin/", str(users))],
        sleep=slept.append,
        auth_failure_delay=0.25,
    )
    for _ in range(3):
        call("wsgi", app, "/admin/", Authorization=auth_header("alice", "guess"))
    assert slept == [0.25, 0.5, 0.75]


def test_memo_runs_bcrypt_once(kind: str, users: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda *a: calls.append(1) or real(*a))
    app = build(kind, users, Spec(), Clock())
    for _ in range(20):
        assert (
            call(kind, app, "/admin/", Authorization=auth_header("alice", "wonderland")).status
            == 200
        )
    assert len(calls) == 1
    off = build(kind, users, Spec(), Clock(), auth_memo=False)
    for _ in range(5):
        call(kind, off, "/admin/", Authorization=auth_header("alice", "wonderland"))
    assert len(calls) == 6


def test_cached_protected_page_is_not_served_without_credentials(kind: str, users: Path) -> None:
    spec = Spec(headers=[("Cache-Control", "max-age=600")], chunks=[b"board minutes"])
    make_app, call_app = KINDS[kind]
    app = EdgeCache(make_app(spec), auth=[("/admin/", str(users))], auth_failure_delay=0)
    right = auth_header("alice", "wonderland")
    assert call_app(app, path="/admin/", headers={"Authorization": right}).body == b"board minutes"
    hit = call_app(app, path="/admin/", headers={"Authorization": right})
    assert b"hit" in hit.headers.get(b"cache-status")  # shared among authenticated users
    for headers in (
        {},
        {"Authorization": auth_header("alice", "nope")},
        {"Cache-Control": "only-if-cached"},
    ):
        reply = call_app(app, path="/admin/", headers=headers)
        assert reply.status == 401 and b"board minutes" not in reply.body
    assert spec.calls == 1


def test_missing_user_file_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"EDGECACHE_AUTH.*cannot be read"):
        AsgiAuth(KINDS["asgi"][0](Spec()), auth=[("/admin/", str(tmp_path / "nope"))])


def test_bad_auth_variable_fails_naming_it() -> None:
    from edgecache.config import Settings

    with pytest.raises(ConfigError, match="EDGECACHE_AUTH"):
        Settings.from_env({"EDGECACHE_AUTH": "/admin/"})
    with pytest.raises(ConfigError, match="auth"):
        Settings(auth=[("admin", "/f")])


def test_passwd_command_creates_and_updates(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text("# managed by edgecache\nzoe:{SHA}x\n")

    def run(user: str, password: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "edgecache", "passwd", str(path), user],
            input=password + "\n",
            text=True,
            capture_output=True,
            timeout=30,
        )

    assert "added alice" in run("alice", "first").stderr
    assert "updated alice" in run("alice", "second").stderr
    lines = path.read_text().splitlines()
    assert lines[:2] == ["# managed by edgecache", "zoe:{SHA}x"]
    stored = [line for line in lines if line.startswith("alice:")]
    assert len(stored) == 1 and verify_password(stored[0].split(":", 1)[1], "second")
    assert run("bad:name", "x").returncode == 2
    fresh = tmp_path / "fresh"
    subprocess.run(
        [sys.executable, "-m", "edgecache", "passwd", str(fresh), "u"],
        input="p\n",
        text=True,
        capture_output=True,
        timeout=30,
        check=True,
    )
    assert os.stat(fresh).st_mode & 0o777 == 0o640  # not world-readable


# Issue 12: malformed credentials are no guess, failures count per (address, user
# name) with a cap per address, and password checks never run on the event loop.

MALFORMED = ["Basic", "Basic !!!", "Bearer x", "Basic " + base64.b64encode(b"alice").decode()]


class Recorder:
    """A verify_password that notes its thread and how many run at once."""

    def __init__(self, hold: float = 0.0) -> None:
        self.threads: list[threading.Thread] = []
        self.loops: list[bool] = []
        self.running = self.most = 0
        self._lock = threading.Lock()
        self._hold = hold
        self._real = edgecache.auth.verify_password

    def __call__(self, stored: str, password: str) -> bool:
        with self._lock:
            self.threads.append(threading.current_thread())
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            asyncio.get_running_loop()
            self.loops.append(True)
        except RuntimeError:
            self.loops.append(False)
        time.sleep(self._hold)  # keeps checks overlapping, so the bound shows
        with self._lock:
            self.running -= 1
        return self._real(stored, password)


def test_malformed_credentials_are_not_hashed_nor_counted(
    kind: str, users: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder()
    monkeypatch.setattr(edgecache.auth, "verify_password", recorder)
    app = build(kind, users, Spec(), Clock(), auth_max_failures=1)  # one counted: locked
    for header in MALFORMED * 10:
        assert call(kind, app, "/admin/", Authorization=header).status == 401
    assert recorder.threads == []
    assert (
        call(kind, app, "/admin/", Authorization=auth_header("alice", "wonderland")).status == 200
    )


def gate(users: Path, clock: Clock, **options: Any) -> Gate:
    settings = Settings(auth=(AuthRule("/admin/", str(users)),), auth_failure_delay=0, **options)
    return Gate(settings, clock)


def ask(g: Gate, address: str, user: str, password: str) -> str:
    """The kind of decision, as a word: Allowed, Challenge or Locked."""
    decision = g.check(g.rules[0], auth_header(user, password).encode(), address)
    return type(decision).__name__


def test_a_locked_pair_leaves_other_users_and_addresses_alone(users: Path) -> None:
    clock = Clock()
    g = gate(users, clock, auth_max_failures=2, auth_max_failures_per_address=10, auth_memo=False)
    assert [ask(g, "10.0.0.1", "alice", "x") for _ in range(2)] == ["Challenge", "Locked"]
    assert ask(g, "10.0.0.1", "alice", "wonderland") == "Locked"
    assert ask(g, "10.0.0.1", "bob", "correct horse") == "Allowed"
    assert ask(g, "10.0.0.2", "alice", "wonderland") == "Allowed"
    clock.now += 61  # the lockout served, the pair starts afresh
    assert ask(g, "10.0.0.1", "alice", "wonderland") == "Allowed"


def test_success_resets_the_pair_but_not_the_address(users: Path) -> None:
    g = gate(users, Clock(), auth_max_failures=2, auth_max_failures_per_address=4, auth_memo=False)
    for _ in range(3):  # without the reset, the 2nd failure would lock the pair
        assert ask(g, "10.0.0.1", "alice", "x") == "Challenge"
        assert ask(g, "10.0.0.1", "alice", "wonderland") == "Allowed"
    # Four failures from the address in all: a valid account does not wipe them.
    assert ask(g, "10.0.0.1", "alice", "x") == "Locked"
    assert ask(g, "10.0.0.1", "bob", "correct horse") == "Locked"
    assert ask(g, "10.0.0.9", "bob", "correct horse") == "Allowed"


def test_unknown_names_count_toward_the_address_cap(users: Path) -> None:
    g = gate(users, Clock(), auth_max_failures=3, auth_max_failures_per_address=3)
    assert [ask(g, "10.0.0.1", f"guess{i}", "x") for i in range(3)] == [
        "Challenge",
        "Challenge",
        "Locked",
    ]
    assert ask(g, "10.0.0.1", "alice", "wonderland") == "Locked"


def test_password_checks_run_off_the_event_loop_thread(
    users: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder()
    monkeypatch.setattr(edgecache.auth, "verify_password", recorder)
    app = AsgiAuth(KINDS["asgi"][0](Spec()), auth=[("/admin/", str(users))], auth_memo=False)
    loop_threads: list[threading.Thread] = []

    async def one(header: str) -> None:
        loop_threads.append(threading.current_thread())
        await app(scope(header), receive, send)

    asyncio.run(one(auth_header("alice", "wonderland")))
    asyncio.run(one(auth_header("alice", "nope")))
    assert len(recorder.threads) == 2
    assert not set(recorder.threads) & set(loop_threads)
    assert all(t.name.startswith("edgecache-auth") for t in recorder.threads)
    assert recorder.loops == [False, False]  # no event loop runs where the hash runs


def test_wsgi_checks_run_on_the_pool_too(users: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    monkeypatch.setattr(edgecache.auth, "verify_password", recorder)
    app = build("wsgi", users, Spec(), Clock())
    assert (
        call("wsgi", app, "/admin/", Authorization=auth_header("alice", "wonderland")).status == 200
    )
    assert recorder.threads[0] is not threading.current_thread()
    assert recorder.threads[0].name.startswith("edgecache-auth")


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b""}


async def send(message: MutableMapping[str, Any]) -> None:
    pass


def scope(header: str, address: str = "10.0.0.1") -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": "/admin/",
        "headers": [(b"host", b"test"), (b"authorization", header.encode())],
        "client": (address, 1234),
    }


def test_the_pool_is_bounded_and_parallel_guesses_cannot_overshoot_a_cap(
    users: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(hold=0.05)
    monkeypatch.setattr(edgecache.auth, "verify_password", recorder)
    settings = Settings(
        auth=(AuthRule("/admin/", str(users)),),
        auth_failure_delay=0,
        auth_hash_threads=3,
        auth_max_failures=4,
        auth_max_failures_per_address=4,
    )
    g = Gate(settings, Clock())
    rule = g.rules[0]

    async def storm() -> list[str]:
        # 12 different guesses at once from 12 addresses, then 10 from one address.
        many = [
            g.check_async(rule, auth_header("alice", f"x{i}").encode(), f"10.1.0.{i}")
            for i in range(12)
        ]
        one = [
            g.check_async(rule, auth_header("alice", f"y{i}").encode(), "10.2.0.1")
            for i in range(10)
        ]
        return [type(d).__name__ for d in await asyncio.gather(*many, *one)]

    decisions = asyncio.run(storm())
    assert recorder.most <= 3  # never more threads hashing than the pool has
    assert decisions[:12] == ["Challenge"] * 12
    # From one address, only 4 guesses (the cap) were checked; the rest were refused.
    assert len(recorder.threads) == 12 + 4
    assert sorted(decisions[12:]) == ["Challenge"] * 3 + ["Locked"] * 7


def test_one_check_for_the_same_credentials_sent_at_once(
    users: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(hold=0.05)
    monkeypatch.setattr(edgecache.auth, "verify_password", recorder)
    g = gate(users, Clock(), auth_memo=False)
    header = auth_header("alice", "wonderland").encode()

    async def browser() -> list[GateDecision]:
        return await asyncio.gather(
            *(g.check_async(g.rules[0], header, "10.0.0.1") for _ in range(6))
        )

    assert asyncio.run(browser()) == [Allowed("alice")] * 6
    assert len(recorder.threads) == 1


def test_des_crypt_line_is_logged_as_unsupported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "users"
    path.write_text("dave:rl0uE2Iwp9QH.\n")  # htpasswd -d
    with caplog.at_level(logging.ERROR, logger="edgecache.auth"):
        gate(path, Clock())
    (message,) = [r.getMessage() for r in caplog.records if "line 1" in r.getMessage()]
    assert "DES crypt" in message and "not supported" in message
    assert "auth_plaintext" not in message and "dave" not in message


def test_new_settings_are_validated_naming_them() -> None:
    with pytest.raises(ConfigError, match="auth_max_failures_per_address"):
        Settings(auth_max_failures=10, auth_max_failures_per_address=5)
    with pytest.raises(ConfigError, match="EDGECACHE_AUTH_MAX_FAILURES_PER_ADDRESS"):
        Settings.from_env({"EDGECACHE_AUTH_MAX_FAILURES_PER_ADDRESS": "many"})
    with pytest.raises(ConfigError, match="auth_hash_threads"):
        Settings.from_env({"EDGECACHE_AUTH_HASH_THREADS": "0"})
    defaults = Settings()
    assert defaults.auth_max_failures_per_address > defaults.auth_max_failures
