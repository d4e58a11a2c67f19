"""Byte ranges, RFC 9110 §14."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgecache.core.ranges import UNSATISFIABLE, parse_range


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(b"bytes=0-9", (0, 9), id="9110-14.1.2-first-last"),
        pytest.param(b"bytes=90-", (90, 99), id="open-ended"),
        pytest.param(b"bytes=-10", (90, 99), id="suffix"),
        pytest.param(b"bytes=-500", (0, 99), id="suffix-longer-than-size"),
        pytest.param(b"bytes=50-500", (50, 99), id="end-clamped"),
        pytest.param(b"bytes=100-", UNSATISFIABLE, id="start-past-end"),
        pytest.param(b"bytes=-0", UNSATISFIABLE, id="empty-suffix"),
        pytest.param(b"bytes=0-1,5-6", None, id="several-ranges-whole"),
        pytest.param(b"items=0-1", None, id="other-unit"),
        pytest.param(b"bytes=9-2", None, id="reversed"),
        pytest.param(b"bytes=a-b", None, id="garbage"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_parse_range(value: bytes | None, expected: object) -> None:
    assert parse_range(value, 100) == expected


@given(st.binary(max_size=40), st.integers(min_value=1, max_value=10**6))
def test_never_raises_and_stays_inside(value: bytes, size: int) -> None:
    result = parse_range(b"bytes=" + value, size)
    if isinstance(result, tuple):
        assert 0 <= result[0] <= result[1] < size
