"""RFC 8941 Dictionary parsing and RFC 9213 §2.1 targeted fields."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgecache.core.cache_control import parse_targeted
from edgecache.core.freshness import effective_cache_control
from edgecache.core.structured import ParseError, Token, parse_dictionary
from tests.helpers import OPTIONS, headers


def test_8941_4_2_2_dictionary_members() -> None:
    parsed = parse_dictionary(
        b'max-age=60, no-store, private="set-cookie", l=(1 "a" t);p, b=?0, c=:aGk=:, d=-1.5;q'
    )
    assert parsed == {
        "max-age": (60, {}),
        "no-store": (True, {}),
        "private": ("set-cookie", {}),
        "l": ([(1, {}), ("a", {}), (Token("t"), {})], {"p": True}),
        "b": (False, {}),
        "c": (b"hi", {}),
        "d": (-1.5, {"q": True}),
    }
    assert isinstance(parsed["l"][0][2][0], Token)  # type: ignore[index]
    assert parse_dictionary(b"a=1, a=2") == {"a": (2, {})}  # the last one wins


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"max-age=10000, &&&&&", id="garbage-member"),
        pytest.param(b"max-age=", id="missing-value"),
        pytest.param(b"max-age=1,", id="trailing-comma"),
        pytest.param(b"Max-Age=1", id="uppercase-key"),
        pytest.param(b"a=1.", id="decimal-without-fraction"),
        pytest.param(b"a=1.2345", id="decimal-four-fraction-digits"),
        pytest.param(b"a=1234567890123456", id="integer-over-15-digits"),
        pytest.param(b'a="x', id="unterminated-string"),
        pytest.param(b'a="\\x"', id="bad-escape"),
        pytest.param(b"a=(1 2", id="unterminated-inner-list"),
        pytest.param(b"a=?2", id="bad-boolean"),
        pytest.param(b"a=:!!:", id="bad-base64"),
        pytest.param(b"a b", id="two-keys-without-comma"),
        pytest.param("a=\"é\"".encode(), id="not-ascii"),
    ],
)
def test_8941_invalid_dictionaries_fail(raw: bytes) -> None:
    with pytest.raises(ParseError):
        parse_dictionary(raw)


@given(st.binary(max_size=60))
def test_dictionary_parser_raises_only_parse_error(raw: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse_dictionary(raw)


NO_STORE = ("Cache-Control", "no-store")


@pytest.mark.parametrize(
    "cdn",
    [
        pytest.param("max-age=10000, &&&&&", id="9213-2.1-parse-error"),
        pytest.param('max-age="10000"', id="9213-2.1-string-not-integer"),
        pytest.param("max-age=-5", id="9213-2.1-negative"),
        pytest.param("max-age=1.5", id="9213-2.1-decimal"),
        pytest.param("no-store=5", id="9213-2.1-flag-with-value"),
        pytest.param("", id="9213-2.1-empty"),
    ],
)
def test_9213_2_1_invalid_targeted_field_is_ignored_and_cache_control_applies(cdn: str) -> None:
    cc = effective_cache_control(
        headers(("CDN-Cache-Control", cdn), NO_STORE), OPTIONS.targeted_fields
    )
    assert cc.no_store and cc.max_age is None


def test_9213_2_1_valid_targeted_field_overrides_cache_control() -> None:
    cc = effective_cache_control(
        headers(("CDN-Cache-Control", "max-age=600, stale-if-error=60;x=1"), NO_STORE),
        OPTIONS.targeted_fields,
    )
    assert not cc.no_store and cc.max_age == 600 and cc.stale_if_error == 60


def test_9213_2_1_directive_mapping() -> None:
    cc = parse_targeted(b'no-cache="Set-Cookie", public=?0, must-revalidate, x-ext=tok')
    assert cc is not None
    assert cc.no_cache_fields == frozenset({b"set-cookie"}) and not cc.public
    assert cc.must_revalidate and cc.extensions == {"x-ext": "tok"}
    assert parse_targeted(b"private=tok") is None  # a Token is not a list of field names
