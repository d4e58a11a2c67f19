"""Freshness lifetimes and age: RFC 9111 §4.2, RFC 9213 targeted fields."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgecache.core.dates import format_http_date
from edgecache.core.freshness import current_age
from tests.helpers import OPTIONS, entry

T = 1_000_000.0
DATE = ("Date", format_http_date(T).decode())


def lifetime(*pairs: tuple[str, str], status: int = 200) -> float:
    return entry(*pairs, status=status, at=T).freshness_lifetime


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        pytest.param(
            [("Cache-Control", "s-maxage=5, max-age=50")], 5, id="9111-4.2.1-s-maxage-over-max-age"
        ),
        pytest.param(
            [("Cache-Control", "max-age=50"), ("Expires", format_http_date(T + 9).decode()), DATE],
            50,
            id="9111-4.2.1-max-age-over-expires",
        ),
        pytest.param(
            [("Expires", format_http_date(T + 9).decode()), DATE],
            9,
            id="9111-4.2.1-expires-minus-date",
        ),
        pytest.param([("Expires", "0"), DATE], 0, id="9111-5.3-invalid-expires-is-expired"),
        pytest.param(
            [("Expires", format_http_date(T + 9).decode().replace("GMT", "gMT")), DATE],
            9,
            id="9110-5.6.7-lenient-gmt-case-in-expires",
        ),
        pytest.param(
            [
                ("Expires", format_http_date(T + 9).decode()),
                ("Expires", format_http_date(T + 99).decode()),
                DATE,
            ],
            0,
            id="9111-4.2.1-two-expires-is-stale",
        ),
        pytest.param(
            [("Expires", format_http_date(T + 9).decode())],
            9,
            id="9111-4.2.1-no-date-uses-receipt-time",
        ),
        pytest.param([("Cache-Control", "max-age=oops")], 0, id="9111-4.2.1-invalid-is-stale"),
        pytest.param(
            [DATE, ("Last-Modified", format_http_date(T - 1000).decode())],
            100,
            id="9111-4.2.2-heuristic-10-percent",
        ),
        pytest.param(
            [DATE, ("Last-Modified", format_http_date(T - 10**9).decode())],
            86400,
            id="9111-4.2.2-heuristic-capped",
        ),
        pytest.param(
            [DATE, ("Last-Modified", format_http_date(T + 50).decode())],
            0,
            id="9111-4.2.2-future-last-modified",
        ),
        pytest.param([DATE], 0, id="no-default-ttl"),
        pytest.param(
            [("CDN-Cache-Control", "max-age=300"), ("Cache-Control", "max-age=5")],
            300,
            id="9213-2.2-targeted-field-wins",
        ),
        pytest.param(
            [("CDN-Cache-Control", ""), ("Cache-Control", "max-age=5")],
            5,
            id="9213-2.2-invalid-targeted-field-ignored",
        ),
    ],
)
def test_freshness_lifetime(pairs: list[tuple[str, str]], expected: float) -> None:
    assert lifetime(*pairs) == expected


def test_9111_4_2_2_heuristics_only_for_heuristic_statuses_or_public() -> None:
    lm = ("Last-Modified", format_http_date(T - 1000).decode())
    assert lifetime(DATE, lm, status=302) == 0
    assert lifetime(DATE, lm, ("Cache-Control", "public"), status=302) == 100
    assert lifetime(DATE, lm, status=404) == 100


def test_9213_own_target_name_configurable() -> None:
    options = dataclasses.replace(
        OPTIONS, targeted_fields=(b"edge-cache-control", b"cdn-cache-control")
    )
    e = entry(
        ("Edge-Cache-Control", "max-age=7"), ("CDN-Cache-Control", "max-age=70"), options=options
    )
    assert e.freshness_lifetime == 7


def test_9111_4_2_3_age_uses_every_term() -> None:
    # Date says the origin made it 10 s before we got it; Age upstream said 30; the
    # request took 2 s; it has been resident 5 s.
    e = dataclasses.replace(
        entry(("Cache-Control", "max-age=100")),
        request_time=T - 2,
        response_time=T,
        date_value=T - 10,
        age_value=30,
    )
    # corrected_initial_age = max(apparent 10, 30 + 2) = 32; + resident 5
    assert current_age(e, T + 5) == 37
    e2 = dataclasses.replace(e, age_value=0)
    assert current_age(e2, T + 5) == 15  # apparent age 10 wins over delay 2


def test_9111_5_1_age_header_first_member_and_invalid_ignored() -> None:
    assert entry(("Age", "12, 40")).age_value == 12
    assert entry(("Age", "twelve")).age_value == 0


@given(st.floats(min_value=0, max_value=10**7), st.floats(min_value=0, max_value=10**7))
def test_age_grows_with_now(a: float, b: float) -> None:
    e = entry(("Cache-Control", "max-age=100"), at=T)
    lo, hi = sorted((a, b))
    assert current_age(e, T + lo) <= current_age(e, T + hi)
