"""May a shared cache store it? RFC 9111 §3, §3.1, §3.5 and §5.2.2."""

from __future__ import annotations

import pytest

from edgecache.core.freshness import effective_cache_control
from edgecache.core.storability import NotStored, may_store
from tests.helpers import OPTIONS, entry, headers, request, request_cc


def verdict(
    resp: list[tuple[str, str]],
    req: list[tuple[str, str]] | None = None,
    status: int = 200,
    method: str = "GET",
) -> NotStored | None:
    r = request(*(req or []), method=method)
    h = headers(*resp)
    return may_store(
        r, request_cc(r), status, h, effective_cache_control(h, OPTIONS.targeted_fields)
    )


FRESH = ("Cache-Control", "max-age=60")


@pytest.mark.parametrize(
    ("resp", "req", "status", "method", "expected"),
    [
        pytest.param([FRESH], None, 200, "GET", None, id="9111-3-fresh-get"),
        pytest.param([FRESH], None, 200, "POST", NotStored.METHOD, id="9111-3-post-not-stored"),
        pytest.param(
            [FRESH], None, 200, "HEAD", NotStored.METHOD, id="9111-4.3.5-head-updates-only"
        ),
        pytest.param([FRESH], None, 206, "GET", NotStored.STATUS, id="9111-3.3-partial"),
        pytest.param([FRESH], None, 304, "GET", NotStored.STATUS, id="9111-3-304-not-final"),
        pytest.param(
            [("Cache-Control", "max-age=60, no-store")],
            None,
            200,
            "GET",
            NotStored.NO_STORE,
            id="9111-5.2.2.5-response-no-store",
        ),
        pytest.param(
            [FRESH],
            [("Cache-Control", "no-store")],
            200,
            "GET",
            NotStored.NO_STORE,
            id="9111-5.2.1.5-request-no-store",
        ),
        pytest.param(
            [("Cache-Control", "private, max-age=60")],
            None,
            200,
            "GET",
            NotStored.PRIVATE,
            id="9111-5.2.2.7-private",
        ),
        pytest.param(
            [FRESH],
            [("Authorization", "Basic eDp5")],
            200,
            "GET",
            NotStored.AUTHORIZATION,
            id="9111-3.5-authorization",
        ),
        pytest.param(
            [("Cache-Control", "max-age=60, public")],
            [("Authorization", "Basic eDp5")],
            200,
            "GET",
            None,
            id="9111-3.5-authorization-public",
        ),
        pytest.param(
            [("Cache-Control", "s-maxage=60")],
            [("Authorization", "Basic eDp5")],
            200,
            "GET",
            None,
            id="9111-3.5-authorization-s-maxage",
        ),
        pytest.param(
            [("Cache-Control", "max-age=60, must-revalidate")],
            [("Authorization", "Basic eDp5")],
            200,
            "GET",
            None,
            id="9111-3.5-authorization-must-revalidate",
        ),
        pytest.param(
            [FRESH, ("Vary", "*")], None, 200, "GET", NotStored.VARY_STAR, id="9111-4.1-vary-star"
        ),
        pytest.param(
            [FRESH, ("Set-Cookie", "sid=1")],
            None,
            200,
            "GET",
            NotStored.SET_COOKIE,
            id="set-cookie-not-shared",
        ),
        pytest.param(
            [("Cache-Control", "public, max-age=60"), ("Set-Cookie", "a=1")],
            None,
            200,
            "GET",
            NotStored.SET_COOKIE,
            id="set-cookie-not-stored-even-public",
        ),
        pytest.param(
            [("Cache-Control", "s-maxage=60"), ("Set-Cookie", "a=1")],
            None,
            200,
            "GET",
            NotStored.SET_COOKIE,
            id="set-cookie-not-stored-even-s-maxage",
        ),
        pytest.param(
            [("Cache-Control", 'public, max-age=60, no-cache="set-cookie"'), ("Set-Cookie", "a")],
            None,
            200,
            "GET",
            None,
            id="9111-5.2.2.4-no-cache-set-cookie-stripped",
        ),
        pytest.param(
            [("Cache-Control", 'max-age=60, private="Set-Cookie"'), ("Set-Cookie", "a=1")],
            None,
            200,
            "GET",
            None,
            id="9111-5.2.2.7-private-set-cookie-stripped",
        ),
        pytest.param([("ETag", '"x"')], None, 200, "GET", None, id="9111-3-validator-only"),
        pytest.param([], None, 200, "GET", NotStored.NO_FRESHNESS, id="no-default-ttl"),
        pytest.param(
            [("ETag", '"x"')],
            None,
            302,
            "GET",
            NotStored.NO_FRESHNESS,
            id="9111-4.2.2-302-not-heuristic",
        ),
        pytest.param(
            [("Cache-Control", "max-age=60")],
            None,
            503,
            "GET",
            None,
            id="9111-3-explicit-freshness-any-final-status",
        ),
    ],
)
def test_may_store(
    resp: list[tuple[str, str]],
    req: list[tuple[str, str]] | None,
    status: int,
    method: str,
    expected: NotStored | None,
) -> None:
    assert verdict(resp, req, status, method) == expected


def test_9111_3_1_stored_headers_drop_hop_by_hop_private_fields_and_age() -> None:
    e = entry(
        ("Cache-Control", 'max-age=60, private="x-user", no-cache="set-cookie"'),
        ("Connection", "x-conn"),
        ("X-Conn", "1"),
        ("Transfer-Encoding", "chunked"),
        ("X-User", "alice"),
        ("Set-Cookie", "a=1"),
        ("Age", "3"),
        ("Content-Length", "999"),
        ("Content-Type", "text/plain"),
        body=b"12345",
    )
    names = [n for n, _ in e.headers]
    for dropped in (
        b"connection",
        b"x-conn",
        b"transfer-encoding",
        b"x-user",
        b"set-cookie",
        b"age",
    ):
        assert dropped not in names
    assert e.headers.get(b"content-length") == b"5"
    assert e.headers.get(b"content-type") == b"text/plain"
    assert e.age_value == 3
