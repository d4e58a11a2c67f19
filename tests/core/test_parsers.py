"""Parsers: Cache-Control (RFC 9111 §5.2), dates (RFC 9110 §5.6.7), lists, Vary, Pragma."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgecache.core.cache_control import (
    DELTA_MAX,
    INVALID,
    format_cache_control,
    parse_cache_control,
    parse_directives,
    request_cache_control,
)
from edgecache.core.dates import format_http_date, parse_http_date
from edgecache.core.headers import Headers, split_list, strip_hop_by_hop
from edgecache.core.vary import parse_vary
from tests.helpers import headers

# 1994-11-06 08:49:37 UTC, the example of RFC 9110 §5.6.7
EPOCH_1994 = 784111777.0


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"Sun, 06 Nov 1994 08:49:37 GMT", id="9110-5.6.7-imf-fixdate"),
        pytest.param(b"Sunday, 06-Nov-94 08:49:37 GMT", id="9110-5.6.7-obsolete-rfc850"),
        pytest.param(b"Sun Nov  6 08:49:37 1994", id="9110-5.6.7-obsolete-asctime"),
        pytest.param(b"  Sun, 06 Nov 1994 08:49:37 GMT ", id="surrounding-whitespace"),
        pytest.param(b"Sun, 06 Nov 1994 08:49:37 gMT", id="9110-5.6.7-lenient-gmt-case"),
        pytest.param(b"sunday, 06-nov-94 08:49:37 gmt", id="lenient-rfc850-case"),
    ],
)
def test_date_forms(raw: bytes) -> None:
    assert parse_http_date(raw, now=EPOCH_1994) == EPOCH_1994


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"0", id="9111-5.3-zero-is-invalid"),
        pytest.param(b"-1", id="negative"),
        pytest.param(b"Sun, 32 Nov 1994 08:49:37 GMT", id="day-out-of-range"),
        pytest.param(b"Sun, 06 Foo 1994 08:49:37 GMT", id="bad-month"),
        pytest.param(b"Sun, 06 Nov 1994 25:49:37 GMT", id="bad-hour"),
        pytest.param(b"Sun, 06 Nov 1994 08:49:37 UTC", id="not-gmt"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff\xfe", id="binary"),
    ],
)
def test_invalid_dates_are_none(raw: bytes) -> None:
    assert parse_http_date(raw) is None


def test_rfc850_two_digit_year_is_recent_past() -> None:
    # RFC 9110 §5.6.7: a year more than 50 years ahead is the most recent past one.
    now = parse_http_date(b"Thu, 26 Nov 2026 00:00:00 GMT")
    assert parse_http_date(b"Friday, 01-Jan-99 00:00:00 GMT", now) == parse_http_date(
        b"Fri, 01 Jan 1999 00:00:00 GMT"
    )
    assert parse_http_date(b"Monday, 01-Jan-30 00:00:00 GMT", now) == parse_http_date(
        b"Tue, 01 Jan 2030 00:00:00 GMT"
    )


@given(st.binary(max_size=64))
def test_date_parser_never_raises(raw: bytes) -> None:
    parse_http_date(raw)


@given(st.integers(min_value=0, max_value=253402300799))
def test_date_round_trip(epoch: int) -> None:
    assert parse_http_date(format_http_date(epoch)) == epoch


CC_TABLE = [
    pytest.param(b"max-age=60", {"max_age": 60}, id="9111-5.2.2.1-max-age"),
    pytest.param(b"MAX-AGE=60", {"max_age": 60}, id="9111-5.2-names-case-insensitive"),
    pytest.param(b'max-age="60"', {"max_age": 60}, id="9111-5.2-quoted-delta-accepted"),
    pytest.param(b"max-age=abc", {"max_age": INVALID}, id="9111-4.2.1-non-integer-invalid"),
    pytest.param(b"max-age=-5", {"max_age": INVALID}, id="9111-1.2.2-negative-invalid"),
    pytest.param(b"max-age", {"max_age": INVALID}, id="9111-1.2.2-missing-value-invalid"),
    pytest.param(
        b"max-age=99999999999999999999999", {"max_age": DELTA_MAX}, id="9111-1.2.2-overflow-is-2^31"
    ),
    pytest.param(
        b"max-age=10, max-age=20",
        {"max_age": INVALID},
        id="9111-4.2.1-conflicting-duplicates-stale",
    ),
    pytest.param(b"max-age=10, max-age=10", {"max_age": 10}, id="same-duplicate-ok"),
    pytest.param(
        b"s-maxage=5, public", {"s_maxage": 5, "public": True}, id="9111-5.2.2.10-s-maxage"
    ),
    pytest.param(
        b'private="Set-Cookie, X-Foo"',
        {"private": False, "private_fields": frozenset({b"set-cookie", b"x-foo"})},
        id="9111-5.2.2.7-private-field-list",
    ),
    pytest.param(b"private", {"private": True}, id="9111-5.2.2.7-private-unqualified"),
    pytest.param(
        b'no-cache="set-cookie"',
        {"no_cache": False, "no_cache_fields": frozenset({b"set-cookie"})},
        id="9111-5.2.2.4-no-cache-field-list",
    ),
    pytest.param(b'no-cache=""', {"no_cache": True}, id="empty-field-list-is-unqualified"),
    pytest.param(
        b"no-store, no-transform, must-revalidate, proxy-revalidate",
        {"no_store": True, "no_transform": True, "must_revalidate": True, "proxy_revalidate": True},
        id="9111-5.2.2-booleans",
    ),
    pytest.param(b"max-stale", {"max_stale": DELTA_MAX}, id="9111-5.2.1.2-max-stale-any"),
    pytest.param(b"max-stale=30", {"max_stale": 30}, id="9111-5.2.1.2-max-stale-value"),
    pytest.param(b"min-fresh=20", {"min_fresh": 20}, id="9111-5.2.1.3-min-fresh"),
    pytest.param(b"only-if-cached", {"only_if_cached": True}, id="9111-5.2.1.7"),
    pytest.param(
        b"stale-while-revalidate=30, stale-if-error=600",
        {"stale_while_revalidate": 30, "stale_if_error": 600},
        id="rfc5861",
    ),
    pytest.param(b" , ,max-age=1 ,, ", {"max_age": 1}, id="empty-members-skipped"),
    pytest.param(
        b'foo="a,b", max-age=3',
        {"max_age": 3, "extensions": {"foo": "a,b"}},
        id="9111-5.2.3-extension-quoted-comma",
    ),
]


@pytest.mark.parametrize(("raw", "expected"), CC_TABLE)
def test_cache_control(raw: bytes, expected: dict[str, object]) -> None:
    cc = parse_cache_control(raw)
    for name, value in expected.items():
        assert getattr(cc, name) == value, name


def test_pragma_no_cache_only_without_cache_control() -> None:
    # RFC 9111 §5.4
    assert request_cache_control(headers(("Pragma", "no-cache"))).no_cache
    assert not request_cache_control(
        headers(("Pragma", "no-cache"), ("Cache-Control", "max-age=5"))
    ).no_cache


def test_cache_control_lines_are_combined() -> None:
    h = headers(("Cache-Control", "public"), ("Cache-Control", "max-age=9"))
    cc = parse_cache_control(h.get_joined(b"cache-control"))
    assert cc.public and cc.max_age == 9


@given(st.binary(max_size=200))
def test_cache_control_parser_never_raises(raw: bytes) -> None:
    parse_cache_control(raw)


_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12)
_arg = st.one_of(
    st.none(), st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
)


@given(st.dictionaries(_token, _arg, max_size=6))
def test_cache_control_round_trip(directives: dict[str, str | None]) -> None:
    assert parse_directives(format_cache_control(directives)) == directives


def test_split_list_respects_quotes() -> None:
    assert split_list(b'a, "b,c", d') == [b"a", b'"b,c"', b"d"]
    assert split_list(b'"x\\",y", z') == [b'"x\\",y"', b"z"]


def test_9111_3_1_hop_by_hop_and_connection_named_fields_dropped() -> None:
    h = headers(
        ("Connection", "close, X-Secret"),
        ("X-Secret", "1"),
        ("Keep-Alive", "5"),
        ("Content-Type", "text/html"),
    )
    assert strip_hop_by_hop(h) == headers(("Content-Type", "text/html"))


def test_vary_parsing() -> None:
    assert parse_vary(headers(("Vary", "Accept-Encoding, accept-language"))) == (
        b"accept-encoding",
        b"accept-language",
    )
    assert parse_vary(headers(("Vary", "Accept"), ("Vary", "*"))) is None
    assert parse_vary(Headers()) == ()


@given(st.binary(max_size=100))
def test_vary_parser_never_raises(raw: bytes) -> None:
    parse_vary(Headers([(b"vary", raw)]))


@given(st.binary(max_size=100))
def test_list_and_age_and_etag_parsers_never_raise(raw: bytes) -> None:
    from edgecache.core.conditional import if_none_match_matches
    from edgecache.core.freshness import parse_age

    split_list(raw)
    assert parse_age(Headers([(b"age", raw)])) >= 0
    if_none_match_matches(raw, b'"x"')


@given(
    st.lists(
        st.text(alphabet="abcdefghij0123456789 ;=/", min_size=1, max_size=10)
        .map(str.strip)
        .filter(bool),
        max_size=6,
    )
)
def test_split_list_round_trip(members: list[str]) -> None:
    joined = ", ".join(members).encode()
    assert split_list(joined) == [m.encode() for m in members]
