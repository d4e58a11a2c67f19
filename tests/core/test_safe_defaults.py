"""Issue 12, "safe by default": the caching rules that close holes an attacker found.

Each test names the RFC section the rule rests on, or the deployed practice it follows
where the RFC allows more than a shared cache should do by default.
"""

from __future__ import annotations

import dataclasses

import pytest

from edgecache.core import policy
from edgecache.core.cache_status import Fwd
from edgecache.core.headers import CACHE_CONTROL
from edgecache.core.model import Entry, RequestHead, has_body
from tests.helpers import OPTIONS, entry, headers, request, request_cc

T = 1000.0
FRESH60 = entry(("Cache-Control", "max-age=60"), ("ETag", '"v1"'))


def decide(req: RequestHead, *variants: Entry, now: float = T) -> policy.Decision:
    return policy.lookup(req, request_cc(req), variants, now, OPTIONS)


def respond(
    req: RequestHead,
    decision: policy.Forward | policy.Bypass,
    status: int,
    *pairs: tuple[str, str],
    now: float = T,
) -> policy.Outcome:
    return policy.on_response(
        req, request_cc(req), decision, status, headers(*pairs), now, now, OPTIONS
    )


# Hole 1: fat GET poisoning (RFC 9110 §9.3.1: a body on GET has no defined semantics)


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        pytest.param((("Content-Length", "4"),), True, id="content-length"),
        pytest.param((("Content-Length", "0"),), False, id="zero-length"),
        pytest.param((("Content-Length", "000"),), False, id="zeros"),
        pytest.param((("Content-Length", "x"),), True, id="unparseable-counts-as-body"),
        pytest.param((("Transfer-Encoding", "chunked"),), True, id="9112-6.1-chunked"),
        pytest.param((), False, id="none"),
    ],
)
def test_9112_6_3_request_has_body(pairs: tuple[tuple[str, str], ...], expected: bool) -> None:
    assert has_body(headers(*pairs)) is expected


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("body", [("Content-Length", "4"), ("Transfer-Encoding", "chunked")])
def test_9110_9_3_1_fat_request_answer_is_not_stored(method: str, body: tuple[str, str]) -> None:
    req = request(body, method=method)
    d = decide(req)
    assert isinstance(d, policy.Forward) and d.upstream_headers is req.headers
    out = respond(req, d, 200, ("Cache-Control", "max-age=60"))
    assert isinstance(out, policy.Pass)
    assert b"detail=request-body" in out.cache_status


def test_9110_9_3_1_fat_request_is_forwarded_as_sent_and_updates_nothing() -> None:
    req = request(("Content-Length", "4"), ("If-None-Match", '"client"'))
    d = decide(req, FRESH60, now=T + 100)  # stale: normally validated with our ETag
    assert isinstance(d, policy.Forward)
    assert d.entry is None and d.upstream_headers is req.headers
    # Neither a 304 nor a 200 refreshes or replaces the stored entry.
    assert isinstance(respond(req, d, 304, ("Cache-Control", "max-age=600")), policy.Pass)
    assert isinstance(respond(req, d, 200, ("Cache-Control", "max-age=600")), policy.Pass)
    head = request(("Content-Length", "4"), method="HEAD")
    hd = decide(head, FRESH60, now=T + 100)
    assert isinstance(hd, policy.Forward)
    out = respond(head, hd, 200, ("Cache-Control", "max-age=90"), ("ETag", '"v1"'))
    assert isinstance(out, policy.Pass) and out.invalidate == ()


def test_fat_request_may_be_answered_from_a_stored_entry() -> None:
    req = request(("Content-Length", "4"))
    assert isinstance(decide(req, FRESH60, now=T + 10), policy.Serve)
    swr = entry(("Cache-Control", "max-age=60, stale-while-revalidate=60"), ("ETag", '"a"'))
    d = decide(req, swr, now=T + 70)
    assert isinstance(d, policy.Serve) and not d.refresh  # no refresh with its headers


# Hole 2: web cache deception (RFC 9111 §4.2.2 allows heuristics; we refuse them here)

LAST_MODIFIED_30_DAYS = ("Last-Modified", "Sun, 01 Nov 1970 00:00:00 GMT")


@pytest.mark.parametrize("credential", [("Cookie", "sid=1"), ("Authorization", "Basic eDp5")])
def test_9111_4_2_2_no_heuristic_freshness_for_cookie_or_authorization(
    credential: tuple[str, str],
) -> None:
    from edgecache.core.freshness import effective_cache_control
    from edgecache.core.storability import NotStored, may_store

    for resp in (
        headers(LAST_MODIFIED_30_DAYS),
        headers(LAST_MODIFIED_30_DAYS, ("Cache-Control", "public")),
        headers(LAST_MODIFIED_30_DAYS, ("Cache-Control", "must-revalidate")),
    ):
        req = request(credential)
        cc = effective_cache_control(resp, OPTIONS.targeted_fields)
        verdict = may_store(req, request_cc(req), 200, resp, cc)
        if credential[0] == "Authorization" and CACHE_CONTROL not in resp:
            assert verdict is NotStored.AUTHORIZATION  # §3.5 comes first
        else:
            assert verdict is NotStored.CREDENTIALS_HEURISTIC, resp
        plain = request()
        assert may_store(plain, request_cc(plain), 200, resp, cc) is None
    # Explicit freshness applies as today.
    explicit = headers(LAST_MODIFIED_30_DAYS, ("Cache-Control", "public, max-age=60"))
    req = request(credential)
    cc = effective_cache_control(explicit, OPTIONS.targeted_fields)
    assert may_store(req, request_cc(req), 200, explicit, cc) is None


def test_deceived_page_answer_says_why_it_was_not_stored() -> None:
    req = request(("Cookie", "sid=1"), target="/account.php/x.css")
    d = decide(req)
    assert isinstance(d, policy.Forward)
    out = respond(req, d, 200, LAST_MODIFIED_30_DAYS)
    assert isinstance(out, policy.Pass)
    assert b"detail=credentials-heuristic" in out.cache_status


# Hole 3: Set-Cookie replay (RFC 9111 §3.1 stores every field; deployed CDNs refuse)

COOKIE_PAGE = (("Cache-Control", "public, max-age=30"), ("Set-Cookie", "session=alice"))


@pytest.mark.parametrize(
    ("mode", "stored", "cookie_kept"),
    [
        pytest.param("off", False, False, id="off-not-stored"),
        pytest.param("strip", True, False, id="strip-stored-without-cookie"),
        pytest.param("keep", True, True, id="9111-3.1-keep-stores-everything"),
    ],
)
def test_set_cookie_modes(mode: str, stored: bool, cookie_kept: bool) -> None:
    options = dataclasses.replace(OPTIONS, set_cookie=mode)  # type: ignore[arg-type]
    req = request()
    d = policy.lookup(req, request_cc(req), (), T, options)
    assert isinstance(d, policy.Forward)
    out = policy.on_response(req, request_cc(req), d, 200, headers(*COOKIE_PAGE), T, T, options)
    assert isinstance(out, policy.Store) is stored
    if not stored:
        assert isinstance(out, policy.Pass) and b"detail=set-cookie" in out.cache_status
        return
    e = entry(*COOKIE_PAGE, options=options)
    assert (b"set-cookie" in [n for n, _ in e.headers]) is cookie_kept


def test_9111_3_2_304_with_set_cookie_does_not_plant_it_in_the_entry() -> None:
    req = request()
    d = decide(req, FRESH60, now=T + 100)
    assert isinstance(d, policy.Forward)
    out = respond(req, d, 304, ("ETag", '"v1"'), ("Set-Cookie", "session=bob"), now=T + 100)
    assert isinstance(out, policy.Refreshed)
    assert out.entry.headers.get(b"set-cookie") is None


def test_cache_set_cookie_setting_is_validated() -> None:
    from edgecache.config import Settings
    from edgecache.errors import ConfigError

    assert Settings().policy_options().set_cookie == "off"
    assert Settings.from_env({"EDGECACHE_CACHE_SET_COOKIE": "strip"}).cache_set_cookie == "strip"
    with pytest.raises(ConfigError, match="cache_set_cookie"):
        Settings(cache_set_cookie="yes")  # type: ignore[arg-type]


# Hole 4: stale when the upstream is down (RFC 9111 §4.2.4: a disconnected cache may
# serve stale unless a directive forbids it)


def _failed(e: Entry, error: object, now: float) -> policy.Outcome:
    from edgecache.core.upstream import UpstreamError

    assert isinstance(error, UpstreamError)
    req = request()
    d = decide(req, e, now=now)
    assert isinstance(d, policy.Forward)
    return policy.on_response(
        req, request_cc(req), d, error.status, headers(), now, now, OPTIONS, error=error
    )


@pytest.mark.parametrize("error", ["refused", "reset", "timeout", "invalid"])
def test_9111_4_2_4_stale_on_error_serves_with_cache_status(error: str) -> None:
    from edgecache.core.upstream import UpstreamError

    kind = UpstreamError(error)
    e = entry(("Cache-Control", "max-age=60"))
    out = _failed(e, kind, T + 100)
    assert isinstance(out, policy.Serve) and out.entry is e
    assert out.cache_status == f"edgecache; fwd=stale; ttl=-40; detail=upstream-{error}".encode()
    assert policy.on_failure(request_cc(request()), e, T + 360, OPTIONS, error=kind) is not None
    # Past the limit (300 s after freshness): the edge's own 502/504 goes out.
    late = _failed(e, kind, T + 361)
    assert isinstance(late, policy.Pass) and f"detail=upstream-{error}".encode() in (
        late.cache_status
    )


@pytest.mark.parametrize(
    "directive",
    [
        pytest.param("must-revalidate", id="9111-5.2.2.2-must-revalidate"),
        pytest.param("proxy-revalidate", id="9111-5.2.2.8-proxy-revalidate"),
        pytest.param("no-cache", id="9111-5.2.2.4-no-cache"),
        pytest.param("s-maxage=60", id="9111-5.2.2.10-s-maxage"),
    ],
)
def test_9111_4_2_4_stale_on_error_forbidden_by(directive: str) -> None:
    from edgecache.core.upstream import UpstreamError

    e = entry(("Cache-Control", f"max-age=60, {directive}"), ("ETag", '"a"'))
    out = _failed(e, UpstreamError.REFUSED, T + 100)
    assert isinstance(out, policy.Pass)
    assert out.cache_status == b"edgecache; fwd=stale; detail=upstream-refused"


def test_stale_on_error_zero_turns_it_off_and_origin_502_is_not_a_failure() -> None:
    from edgecache.core.upstream import UpstreamError

    e = entry(("Cache-Control", "max-age=60"))
    off = dataclasses.replace(OPTIONS, stale_on_error=0.0)
    reset = UpstreamError.RESET
    assert policy.on_failure(request_cc(request()), e, T + 61, off, error=reset) is None
    # The origin's own 502 (no error attached) is an answer: passed on, as today.
    req = request()
    d = decide(req, e, now=T + 100)
    assert isinstance(d, policy.Forward)
    assert isinstance(respond(req, d, 502, now=T + 100), policy.Pass)


def test_5861_4_stale_if_error_behaviour_unchanged_on_upstream_failure() -> None:
    from edgecache.core.upstream import UpstreamError

    e = entry(("Cache-Control", "max-age=60, must-revalidate, stale-if-error=1000"))
    out = _failed(e, UpstreamError.TIMEOUT, T + 500)
    assert isinstance(out, policy.Serve) and b"detail=stale-if-error" in out.cache_status


def test_stale_on_error_entries_are_kept_long_enough() -> None:
    from edgecache.core.entries import retention

    assert retention(entry(("Cache-Control", "max-age=60")), T, OPTIONS) == 360
    assert retention(entry(("Cache-Control", "max-age=60, must-revalidate")), T, OPTIONS) == 60


def test_upstream_error_statuses() -> None:
    from edgecache.core.upstream import UpstreamError

    assert UpstreamError.TIMEOUT.status == 504
    assert {e.status for e in UpstreamError if e is not UpstreamError.TIMEOUT} == {502}


# RFC 9111 §5.2.2.3 must-understand


@pytest.mark.parametrize(
    ("cc", "status", "expected"),
    [
        pytest.param("max-age=60, must-understand, no-store", 200, None, id="understood-200"),
        pytest.param("max-age=60, must-understand, no-store", 404, None, id="understood-404"),
        pytest.param(
            "max-age=60, must-understand, no-store", 299, "must-understand", id="unknown-299"
        ),
        pytest.param(
            "max-age=60, must-understand", 500, "must-understand", id="not-in-the-list-500"
        ),
        pytest.param("max-age=60, no-store", 200, "no-store", id="no-store-alone"),
        pytest.param(
            "max-age=60, must-understand, private", 200, "private", id="other-rules-still-apply"
        ),
    ],
)
def test_9111_5_2_2_3_must_understand(cc: str, status: int, expected: str | None) -> None:
    from edgecache.core.freshness import effective_cache_control
    from edgecache.core.storability import may_store

    for field in ("Cache-Control", "CDN-Cache-Control"):
        resp = headers((field, cc))
        parsed = effective_cache_control(resp, OPTIONS.targeted_fields)
        req = request()
        reason = may_store(req, request_cc(req), status, resp, parsed)
        assert (None if reason is None else reason.value) == expected, field


def test_9111_5_2_2_3_request_no_store_still_wins() -> None:
    from edgecache.core.freshness import effective_cache_control
    from edgecache.core.storability import NotStored, may_store

    resp = headers(("Cache-Control", "max-age=60, must-understand, no-store"))
    req = request(("Cache-Control", "no-store"))
    cc = effective_cache_control(resp, OPTIONS.targeted_fields)
    assert may_store(req, request_cc(req), 200, resp, cc) is NotStored.NO_STORE


# RFC 9111 §4.1 Vary: normalising content-negotiation lists


@pytest.mark.parametrize(
    ("stored", "incoming", "same"),
    [
        pytest.param("en-US, fr;q=0.5", "fr; q=0.50 ,EN-us", True, id="case-order-whitespace"),
        pytest.param("en-US, fr;q=0.5", "en-us;q=1.0,fr;q=0.5", True, id="q-1-is-default"),
        pytest.param("de;q=0.8, en", "en,de;q=0.800", True, id="weights-order-members"),
        pytest.param("en, fr", "fr, en", False, id="equal-weights-keep-order"),
        pytest.param("en", "en;q=0.5", False, id="different-weights"),
        pytest.param("en, fr;q=0", "en", False, id="q-0-is-meaningful"),
    ],
)
def test_9111_4_1_accept_language_normalised(stored: str, incoming: str, same: bool) -> None:
    e = entry(
        ("Cache-Control", "max-age=60"),
        ("Vary", "Accept-Language"),
        req=request(("Accept-Language", stored)),
    )
    d = decide(request(("Accept-Language", incoming)), e)
    assert isinstance(d, policy.Serve) is same


def test_9111_4_1_accept_media_ranges_normalised_keeping_parameter_values() -> None:
    from edgecache.core.vary import normalise_weighted_list

    assert normalise_weighted_list(b"*/*;q=0.1, Text/HTML;Level=1") == (
        b"text/html;level=1,*/*;q=0.1"
    )
    assert normalise_weighted_list(b"text/plain;format=Flowed") == b"text/plain;format=Flowed"
    e = entry(
        ("Cache-Control", "max-age=60"),
        ("Vary", "Accept, Accept-Charset"),
        req=request(("Accept", "text/html, */*;q=0.1"), ("Accept-Charset", "UTF-8")),
    )
    req = request(("Accept", "*/*; q=0.1,TEXT/html"), ("Accept-Charset", "utf-8"))
    assert isinstance(decide(req, e), policy.Serve)


# RFC 9110 §14: ranges answered from a stored full entry

RANGED = entry(
    ("Cache-Control", "max-age=60"),
    ("ETag", '"r1"'),
    ("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
    ("Content-Type", "text/plain"),
    body=b"0123456789",
)


def ranged(*pairs: tuple[str, str], e: Entry = RANGED, method: str = "GET") -> policy.Answer:
    req = request(*pairs, method=method)
    d = decide(req, e, now=T + 1)
    assert isinstance(d, policy.Serve), d
    return policy.answer(req, d.entry, d.cache_status, T + 1, coding="br")


@pytest.mark.parametrize(
    ("value", "body", "content_range"),
    [
        pytest.param("bytes=2-5", b"2345", b"bytes 2-5/10", id="9110-14.1.2-first-last"),
        pytest.param("bytes=7-", b"789", b"bytes 7-9/10", id="9110-14.1.2-open-ended"),
        pytest.param("bytes=-3", b"789", b"bytes 7-9/10", id="9110-14.1.2-suffix"),
        pytest.param("bytes=8-100", b"89", b"bytes 8-9/10", id="9110-14.1.2-end-clamped"),
    ],
)
def test_9110_14_single_range_is_206(value: str, body: bytes, content_range: bytes) -> None:
    a = ranged(("Range", value))
    assert a.status == 206 and a.body == body and a.final
    h = dict(a.headers)
    assert h[b"content-range"] == content_range
    assert h[b"content-length"] == str(len(body)).encode()
    assert [n for n, _ in a.headers].count(b"content-length") == 1
    assert b"age" in h and b"cache-status" in h and h[b"etag"] == b'"r1"'


def test_9110_15_5_17_unsatisfiable_range_is_416() -> None:
    a = ranged(("Range", "bytes=10-"))
    assert a.status == 416 and a.body == b""
    assert dict(a.headers)[b"content-range"] == b"bytes */10"


@pytest.mark.parametrize(
    ("pairs", "status"),
    [
        pytest.param((("If-Range", '"r1"'),), 206, id="9110-13.1.5-etag-matches"),
        pytest.param((("If-Range", '"old"'),), 200, id="9110-13.1.5-etag-differs"),
        pytest.param((("If-Range", 'W/"r1"'),), 200, id="9110-13.1.5-weak-never-matches"),
        pytest.param(
            (("If-Range", "Sun, 06 Nov 1994 08:49:37 GMT"),), 206, id="9110-13.1.5-date-exact"
        ),
        pytest.param(
            (("If-Range", "Sun, 06 Nov 1994 08:49:38 GMT"),), 200, id="9110-13.1.5-date-differs"
        ),
    ],
)
def test_9110_13_1_5_if_range(pairs: tuple[tuple[str, str], ...], status: int) -> None:
    a = ranged(("Range", "bytes=0-1"), *pairs)
    assert a.status == status
    assert a.body == (b"01" if status == 206 else b"0123456789")


def test_9110_14_whole_representation_when_range_does_not_apply() -> None:
    assert ranged(("Range", "bytes=0-1,4-5")).status == 200  # several ranges: the whole
    assert ranged(("Range", "items=0-1")).status == 200
    assert ranged(("If-Range", '"r1"')).status == 200  # If-Range without Range: ignored
    head = ranged(("Range", "bytes=0-1"), method="HEAD")
    assert head.status == 200 and head.body == b""  # §14.2: Range is for GET
    # §13.2.2: If-None-Match is evaluated before Range.
    assert ranged(("Range", "bytes=0-1"), ("If-None-Match", '"r1"')).status == 304


def test_9110_13_1_5_if_range_kept_when_the_cache_validates() -> None:
    req = request(("Range", "bytes=0-1"), ("If-Range", '"old"'), ("If-None-Match", '"c"'))
    d = decide(req, RANGED, now=T + 100)  # stale: validated with our ETag
    assert isinstance(d, policy.Forward) and d.entry is RANGED
    assert d.upstream_headers.get(b"if-none-match") == b'"r1"'
    assert d.upstream_headers.get(b"if-range") == b'"old"'  # no range of a newer one


def test_encoded_entries_are_never_ranged() -> None:
    encoded = entry(
        ("Cache-Control", "max-age=60"), ("Content-Encoding", "gzip"), body=b"\x1f\x8b..."
    )
    assert ranged(("Range", "bytes=0-1"), e=encoded).status == 200
    # Our own encoded copy is not what a Range request gets: identity bytes are ranged.
    copy = dataclasses.replace(RANGED, encoded={"br": ([(b"content-encoding", b"br")], b"BR")})
    a = ranged(("Range", "bytes=0-1"), e=copy)
    assert a.status == 206 and a.body == b"01"


def test_upstream_failure_without_stale_entry_marks_like_an_uncacheable_answer() -> None:
    from edgecache.core.storability import REQUEST_REASONS, NotStored
    from edgecache.core.upstream import UpstreamError

    req = request()
    d = decide(req)
    assert isinstance(d, policy.Forward)
    out = policy.on_response(
        req, request_cc(req), d, 504, headers(), T, T, OPTIONS, error=UpstreamError.TIMEOUT
    )
    assert isinstance(out, policy.Pass) and out.reason is NotStored.UPSTREAM_ERROR
    assert out.reason not in REQUEST_REASONS  # later misses skip coalescing for a while
    assert out.cache_status == b"edgecache; fwd=uri-miss; detail=upstream-timeout"


# RFC 9111 §3.3-3.4: a stored 206 reused for the same or a contained range

PART = (
    ("Cache-Control", "max-age=60"),
    ("ETag", '"p1"'),
    ("Content-Range", "bytes 10-19/100"),
)


def test_9111_3_3_206_with_validator_and_one_range_is_stored() -> None:
    from edgecache.core.freshness import effective_cache_control
    from edgecache.core.storability import NotStored, may_store

    def verdict(*pairs: tuple[str, str]) -> NotStored | None:
        req = request(("Range", "bytes=10-19"))
        resp = headers(*pairs)
        cc = effective_cache_control(resp, OPTIONS.targeted_fields)
        return may_store(req, request_cc(req), 206, resp, cc)

    assert verdict(*PART) is None
    assert verdict(PART[0], PART[2]) is NotStored.STATUS  # no validator
    assert verdict(PART[0], ("ETag", 'W/"p1"'), PART[2]) is NotStored.STATUS  # weak
    assert verdict(PART[0], PART[1], ("Content-Range", "bytes 10-19/*")) is NotStored.STATUS
    assert verdict(PART[0], PART[1]) is NotStored.STATUS  # no Content-Range


def test_9111_3_4_stored_part_answers_the_same_or_a_contained_range() -> None:
    part = entry(*PART, status=206, body=b"ABCDEFGHIJ")
    for value, body, content_range in [
        ("bytes=10-19", b"ABCDEFGHIJ", b"bytes 10-19/100"),
        ("bytes=12-14", b"CDE", b"bytes 12-14/100"),
    ]:
        req = request(("Range", value))
        d = decide(req, part, now=T + 1)
        assert isinstance(d, policy.Serve), value
        a = policy.answer(req, d.entry, d.cache_status, T + 1)
        assert a.status == 206 and a.body == body
        h = dict(a.headers)
        assert h[b"content-range"] == content_range
        assert h[b"content-length"] == str(len(body)).encode()
    # Anything it does not contain goes to the origin: fwd=partial (RFC 9211 §2.2).
    for pairs in (
        (("Range", "bytes=5-12"),),
        (("Range", "bytes=15-25"),),
        (),
        (("Range", "bytes=10-12"), ("If-Range", '"other"')),
    ):
        d = decide(request(*pairs), part, now=T + 1)
        assert isinstance(d, policy.Forward) and d.fwd is Fwd.PARTIAL and d.entry is None
    d = decide(request(("Range", "bytes=10-12"), method="HEAD"), part, now=T + 1)
    assert isinstance(d, policy.Forward)


def test_9111_3_4_full_answer_replaces_a_stored_part() -> None:
    part = entry(*PART, status=206, body=b"ABCDEFGHIJ")
    full = entry(("Cache-Control", "max-age=60"), ("ETag", '"p1"'), body=b"x" * 100)
    variants = policy.with_variant((part,), full, 16)
    assert variants == (full,)


# Opt-in: a default lifetime where the origin gives none (nginx's proxy_cache_valid)
DEFAULT_TTL = dataclasses.replace(OPTIONS, default_ttl=60.0)


def test_no_default_ttl_unless_the_operator_opts_in() -> None:
    req = request()
    bare = entry(("Content-Type", "text/html"))
    assert bare.freshness_lifetime == 0
    given = entry(("Content-Type", "text/html"), options=DEFAULT_TTL)
    assert given.freshness_lifetime == 60
    explicit = entry(("Cache-Control", "max-age=5"), options=DEFAULT_TTL)
    assert explicit.freshness_lifetime == 5  # the origin's word wins
    found = entry(("Content-Type", "text/html"), status=302, options=DEFAULT_TTL)
    assert found.freshness_lifetime == 0  # temporary answers keep none
    decision = policy.lookup(req, request_cc(req), (given,), T + 30, DEFAULT_TTL)
    assert isinstance(decision, policy.Serve)


def test_a_default_ttl_never_stores_a_credentialed_answer() -> None:
    # Like the heuristic it stands in for (web cache deception, §4.2.2).
    req = request(("Cookie", "session=1"))
    outcome = policy.on_response(
        req,
        request_cc(req),
        decide(req),
        200,
        headers(("Content-Type", "text/html")),
        T,
        T,
        DEFAULT_TTL,
    )
    assert isinstance(outcome, policy.Pass)
