"""Basic auth core: RFC 7617 credentials and challenges, path rules, htpasswd parsing."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgecache.core.auth import (
    AuthRule,
    Credentials,
    challenge,
    match_rule,
    normalise_path,
    parse_basic,
    parse_htpasswd,
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
