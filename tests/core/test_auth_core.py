"""Basic auth core: RFC 7617 credentials and challenges, path rules, htpasswd parsing."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgecache.core.auth import (
    AuthRule,
    Credentials,
    Failures,
    admits,
    challenge,
    count_failure,
    hash_scheme,
    lock_remaining,
    match_rule,
    normalise_path,
    parse_basic,
    parse_htpasswd,
    recent_failures,
)


def basic(raw: bytes) -> bytes:
    return b"Basic " + base64.b64encode(raw)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(basic(b"alice:secret"), Credentials("alice", "secret"), id="7617-2-basic"),
        pytest.param(
            b"basic " + base64.b64encode(b"a:b"),
            Credentials("a", "b"),
            id="7617-2-scheme-case-insensitive",
        ),
        pytest.param(
            basic(b"alice:pa:ss"), Credentials("alice", "pa:ss"), id="7617-2-colon-in-password"
        ),
        pytest.param(
            basic("jürgen:wörd".encode()), Credentials("jürgen", "wörd"), id="7617-2.1-utf-8"
        ),
        pytest.param(basic(b"alice:"), Credentials("alice", ""), id="empty-password"),
        pytest.param(basic(b"alice"), None, id="no-colon"),
        pytest.param(basic(b":secret"), None, id="empty-user"),
        pytest.param(b"Basic !!!notbase64", None, id="bad-base64"),
        pytest.param(basic(b"\xff\xfe:x"), None, id="not-utf-8"),
        pytest.param(b"Bearer abc", None, id="other-scheme"),
        pytest.param(b"Basic", None, id="no-token"),
        pytest.param(b"", None, id="empty"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_parse_basic(value: bytes | None, expected: Credentials | None) -> None:
    assert parse_basic(value) == expected


@given(st.binary(max_size=80))
def test_parse_basic_never_raises(raw: bytes) -> None:
    parse_basic(raw)
    parse_basic(b"Basic " + raw)


@given(st.text(min_size=1, max_size=20).filter(lambda u: ":" not in u), st.text(max_size=20))
def test_parse_basic_round_trip(user: str, password: str) -> None:
    assert parse_basic(basic(f"{user}:{password}".encode())) == Credentials(user, password)


def test_challenge_quotes_realm() -> None:
    assert challenge('Admin "area"') == b'Basic realm="Admin \\"area\\"", charset="UTF-8"'


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/admin/", "/admin/"),
        ("/public/../admin/x", "/admin/x"),
        ("//admin//x", "/admin/x"),
        ("/./admin/", "/admin/"),
        ("/../../admin", "/admin"),
        ("admin", "/admin"),
        ("/", "/"),
    ],
)
def test_normalise_path(path: str, expected: str) -> None:
    assert normalise_path(path) == expected


@given(st.text(max_size=40))
def test_normalise_path_is_idempotent(path: str) -> None:
    once = normalise_path(path)
    assert normalise_path(once) == once and once.startswith("/")


RULES = [
    AuthRule("/admin/", "a.htpasswd", "Admin"),
    AuthRule("/admin/ops/", "o.htpasswd"),
    AuthRule("/", "all.htpasswd", "Site"),
]


def test_longest_prefix_wins() -> None:
    assert match_rule("/admin/ops/x", RULES) == RULES[1]
    assert match_rule("/admin/x", RULES) == RULES[0]
    assert match_rule("/admin", RULES) == RULES[0]  # without the slash, still protected
    assert match_rule("/public", RULES) == RULES[2]
    assert match_rule("/administrator", RULES[:2]) is None


def test_htpasswd_parsing_reports_and_skips_bad_lines() -> None:
    text = "\n".join(
        [
            "# a comment",
            "",
            "alice:$2y$05$weq.Q28xZhZi6npWDR21quurqMmbYHN8y4mN8lqk4xKAD9HVHQmlu",
            "broken line without colon",
            "bob:$apr1$IRT11HYz$HpY7Ht8V0S2EH/BW2g98b0",
            "carol:",
            "dave:plaintext",
            "bob:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=",
        ]
    )
    users, errors = parse_htpasswd(text, allow_plaintext=False)
    assert set(users) == {"alice", "bob"}
    assert users["bob"].startswith("{SHA}")  # a later line for a user wins
    assert [e.line for e in errors] == [4, 6, 7]
    users, errors = parse_htpasswd(text, allow_plaintext=True)
    assert users["dave"] == "plaintext" and [e.line for e in errors] == [4, 6]


@pytest.mark.parametrize(
    ("stored", "scheme"),
    [
        ("rl0uE2Iwp9QH.", "des-crypt"),  # htpasswd -d
        ("./0123456789A", "des-crypt"),
        ("rl0uE2Iwp9QH", "plain"),  # 12 characters
        ("rl0uE2Iwp9QH!", "plain"),  # not crypt's alphabet
        ("$apr1$IRT11HYz$HpY7Ht8V0S2EH/BW2g98b0", "apr1"),
    ],
)
def test_hash_scheme(stored: str, scheme: str) -> None:
    assert hash_scheme(stored) == scheme


def test_des_crypt_lines_are_refused_as_unsupported_even_with_plaintext() -> None:
    text = "dave:rl0uE2Iwp9QH.\nerin:plaintext\n"
    for allow in (False, True):
        users, errors = parse_htpasswd(text, allow_plaintext=allow)
        assert "dave" not in users
        assert errors[0].line == 1 and "DES crypt" in errors[0].message
        assert "auth_plaintext" not in errors[0].message
    assert all("dave" not in e.message and "erin" not in e.message for e in errors)


WINDOW, CAP, LOCKOUT = 60.0, 3, 30.0


def test_failures_lock_at_the_cap_for_the_lockout() -> None:
    f = None
    for second in range(CAP):
        assert lock_remaining(f, 100.0 + second) == 0
        f = count_failure(f, 100.0 + second, WINDOW, CAP, LOCKOUT)
    assert f == Failures(3, 100.0, 102.0 + LOCKOUT)
    assert lock_remaining(f, 110.0) == 22.0
    assert not admits(f, 0, 110.0, WINDOW, CAP)


def test_failures_outside_the_window_or_after_a_served_lockout_start_afresh() -> None:
    f = count_failure(None, 100.0, WINDOW, CAP, LOCKOUT)
    assert recent_failures(f, 160.0, WINDOW) == 1
    assert recent_failures(f, 161.0, WINDOW) == 0
    assert count_failure(f, 161.0, WINDOW, CAP, LOCKOUT) == Failures(1, 161.0)
    locked = Failures(3, 100.0, 120.0)
    assert recent_failures(locked, 119.0, WINDOW) == 3
    assert recent_failures(locked, 120.0, WINDOW) == 0 and admits(locked, 0, 120.0, WINDOW, CAP)


def test_checks_still_running_count_toward_the_cap() -> None:
    f = Failures(1, 100.0)
    assert admits(f, 1, 101.0, WINDOW, CAP)  # 1 failed + 1 running + this one = 3
    assert not admits(f, 2, 101.0, WINDOW, CAP)
    assert admits(None, CAP - 1, 101.0, WINDOW, CAP)
    assert not admits(None, CAP, 101.0, WINDOW, CAP)


@given(st.lists(st.integers(min_value=0, max_value=1000), max_size=30))
def test_a_lock_never_outlasts_the_lockout(times: list[int]) -> None:
    f = None
    for now in sorted(times):
        f = count_failure(f, now, WINDOW, CAP, LOCKOUT)
        assert lock_remaining(f, now) <= LOCKOUT
        assert (lock_remaining(f, now) > 0) == (f.count >= CAP)
