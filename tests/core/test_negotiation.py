"""Accept-Encoding negotiation (RFC 9110 §12.5.3) and the encoding rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgecache.core.encoding import (
    EncodingRules,
    encoded_headers,
    is_encodable,
    weak_etag,
    with_vary_accept_encoding,
)
from edgecache.core.headers import Headers
from edgecache.core.negotiation import (
    acceptable_codings,
    choose_coding,
    parse_accept_encoding,
    parse_qvalue,
)
from tests.helpers import headers

PREF = ("br", "zstd", "gzip")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, "identity", id="9110-12.5.3-absent-no-preference-identity"),
        pytest.param(b"", "identity", id="9110-12.5.3-empty-identity-only"),
        pytest.param(b"gzip, deflate, br, zstd", "br", id="browser-server-order"),
        pytest.param(b"gzip", "gzip", id="single"),
        pytest.param(b"x-gzip", "gzip", id="9110-8.4.1.3-x-gzip-alias"),
        pytest.param(b"GZIP;Q=1", "gzip", id="case-insensitive"),
        pytest.param(b"*", "br", id="9110-12.5.3-star-any"),
        pytest.param(b"br;q=0, *", "zstd", id="star-except-excluded"),
        pytest.param(b"*;q=0", "identity", id="star-zero-identity-anyway"),
        pytest.param(b"identity;q=0", "identity", id="only-identity-excluded"),
        pytest.param(b"gzip;q=0.5, br;q=0.4", "gzip", id="higher-q-wins"),
        pytest.param(b"gzip;q=0.5, br;q=0.5", "br", id="tie-server-order"),
        pytest.param(b"gzip;q=0.5, identity", "identity", id="identity-preferred-by-q"),
        pytest.param(b"br;q=0", "identity", id="9110-12.4.2-q0-never"),
        pytest.param(b"br;q=abc, gzip", "gzip", id="invalid-q-not-acceptable"),
        pytest.param(b"br;q=1.5, gzip", "gzip", id="q-out-of-range"),
        pytest.param(b"deflate, compress", "identity", id="unsupported-only"),
        pytest.param(b"gzip;q=0.001", "gzip", id="three-decimals"),
    ],
)
def test_choose_coding(value: bytes | None, expected: str) -> None:
    assert choose_coding(value, PREF) == expected


def test_server_preference_is_configurable() -> None:
    assert choose_coding(b"br, gzip", ("gzip", "br")) == "gzip"


@given(st.binary(max_size=120))
def test_negotiation_never_raises_and_never_picks_q0(raw: bytes) -> None:
    coding = choose_coding(raw, PREF)
    accepted = parse_accept_encoding(raw)
    if coding != "identity":
        q = accepted.get(coding, accepted.get("*"))
        assert q is not None and q > 0


def test_qvalue_grammar() -> None:
    assert parse_qvalue("0.5") == 0.5 and parse_qvalue("1") == 1.0
    assert parse_qvalue("2") is None and parse_qvalue(".5") is None and parse_qvalue("") is None


def test_acceptable_set_normalises_many_header_strings() -> None:
    known = ("br", "gzip", "zstd", "deflate")
    variants = {
        acceptable_codings(v, known)
        for v in (b"gzip, deflate, br", b"br,gzip,deflate", b"deflate;q=0.1, gzip, br;q=0.9")
    }
    assert variants == {b"br,deflate,gzip"}


RULES = EncodingRules()
HTML = ("Content-Type", "text/html; charset=utf-8")


@pytest.mark.parametrize(
    ("method", "status", "req", "resp", "expected"),
    [
        pytest.param("GET", 200, [], [HTML], True, id="html"),
        pytest.param(
            "GET",
            200,
            [],
            [("Content-Type", "application/problem+json")],
            True,
            id="structured-suffix",
        ),
        pytest.param("GET", 200, [], [("Content-Type", "image/svg+xml")], True, id="svg"),
        pytest.param("GET", 200, [], [("Content-Type", "image/png")], False, id="png"),
        pytest.param("GET", 200, [], [("Content-Type", "application/zip")], False, id="zip"),
        pytest.param("GET", 200, [], [], False, id="no-type"),
        pytest.param("HEAD", 200, [], [HTML], False, id="head"),
        pytest.param("GET", 204, [], [HTML], False, id="204"),
        pytest.param("GET", 304, [], [HTML], False, id="304"),
        pytest.param("GET", 206, [], [HTML], False, id="206"),
        pytest.param("GET", 200, [("Range", "bytes=0-9")], [HTML], False, id="range-request"),
        pytest.param(
            "GET", 200, [], [HTML, ("Content-Encoding", "gzip")], False, id="already-encoded"
        ),
        pytest.param(
            "GET", 200, [], [HTML, ("Content-Encoding", "identity")], True, id="identity-encoding"
        ),
        pytest.param(
            "GET",
            200,
            [],
            [HTML, ("Cache-Control", "max-age=5, no-transform")],
            False,
            id="9111-5.2.2.6-no-transform",
        ),
        pytest.param("GET", 200, [], [HTML, ("Content-Length", "100")], False, id="too-small"),
        pytest.param("GET", 200, [], [HTML, ("Content-Length", "256")], True, id="min-size"),
    ],
)
def test_is_encodable(
    method: str,
    status: int,
    req: list[tuple[str, str]],
    resp: list[tuple[str, str]],
    expected: bool,
) -> None:
    assert is_encodable(method, status, headers(*req), headers(*resp), RULES) is expected


def test_vary_merged_once() -> None:
    h = with_vary_accept_encoding(headers(("Vary", "Cookie")))
    assert h.get_all(b"vary") == [b"Cookie, Accept-Encoding"]
    assert with_vary_accept_encoding(h) == h
    assert with_vary_accept_encoding(headers(("Vary", "*"))).get(b"vary") == b"*"
    assert with_vary_accept_encoding(Headers()).get(b"vary") == b"Accept-Encoding"


def test_encoded_headers() -> None:
    h = encoded_headers(headers(HTML, ("ETag", '"abc"'), ("Content-Length", "900")), "br", 120)
    assert h.get(b"content-encoding") == b"br"
    assert h.get(b"etag") == b'W/"abc"'
    assert h.get_all(b"content-length") == [b"120"]
    assert weak_etag(b'W/"x"') == b'W/"x"'
