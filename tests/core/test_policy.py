"""The policy's decisions, section by section: RFC 9111 §4, §5.2.1, RFC 5861, RFC 9211."""

from __future__ import annotations

import pytest

from edgecache.core import policy
from edgecache.core.cache_status import Fwd
from edgecache.core.dates import format_http_date
from edgecache.core.exchange import Exchange, Outcome, Respond
from edgecache.core.model import Entry, RequestHead
from tests.helpers import OPTIONS, entry, headers, request, request_cc

T = 1000.0


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


FRESH60 = entry(("Cache-Control", "max-age=60"), ("ETag", '"v1"'))


# §4: reuse of fresh responses


def test_9111_4_fresh_entry_is_served_with_cache_status() -> None:
    d = decide(request(), FRESH60, now=T + 10)
    assert isinstance(d, policy.Serve)
    assert d.cache_status == b"edgecache; hit; ttl=50"


def test_9111_4_2_stale_entry_is_validated() -> None:
    d = decide(request(), FRESH60, now=T + 61)
    assert isinstance(d, policy.Forward) and d.fwd is Fwd.STALE
    assert d.upstream_headers.get(b"if-none-match") == b'"v1"'


def test_9211_uri_miss_and_vary_miss() -> None:
    assert decide(request()) == policy.Forward(Fwd.URI_MISS, request().headers)
    varied = entry(
        ("Cache-Control", "max-age=60"),
        ("Vary", "Accept-Language"),
        req=request(("Accept-Language", "ko")),
    )
    d = decide(request(("Accept-Language", "en")), varied)
    assert isinstance(d, policy.Forward) and d.fwd is Fwd.VARY_MISS


def test_unsafe_methods_bypass() -> None:
    assert decide(request(method="POST"), FRESH60) == policy.Bypass(Fwd.METHOD)


def test_head_served_from_stored_get_without_body() -> None:
    req = request(method="HEAD")
    d = decide(req, FRESH60)
    assert isinstance(d, policy.Serve)
    a = policy.answer(req, d.entry, d.cache_status, T)
    assert a.status == 200 and a.body == b""
    assert (b"content-length", b"4") in a.headers


# §5.2.1 request directives


def test_9111_5_2_1_1_request_max_age() -> None:
    assert isinstance(
        decide(request(("Cache-Control", "max-age=20")), FRESH60, now=T + 10), policy.Serve
    )
    d = decide(request(("Cache-Control", "max-age=5")), FRESH60, now=T + 10)
    assert isinstance(d, policy.Forward) and d.fwd is Fwd.REQUEST


def test_9111_5_2_1_3_min_fresh() -> None:
    assert isinstance(
        decide(request(("Cache-Control", "min-fresh=40")), FRESH60, now=T + 10), policy.Serve
    )
    assert isinstance(
        decide(request(("Cache-Control", "min-fresh=55")), FRESH60, now=T + 10), policy.Forward
    )


def test_9111_5_2_1_2_max_stale() -> None:
    assert isinstance(
        decide(request(("Cache-Control", "max-stale=30")), FRESH60, now=T + 80), policy.Serve
    )
    assert isinstance(
        decide(request(("Cache-Control", "max-stale=10")), FRESH60, now=T + 80), policy.Forward
    )
    assert isinstance(
        decide(request(("Cache-Control", "max-stale")), FRESH60, now=T + 10**6), policy.Serve
    )


def test_9111_5_2_2_2_must_revalidate_forbids_max_stale() -> None:
    e = entry(("Cache-Control", "max-age=60, must-revalidate"))
    assert isinstance(
        decide(request(("Cache-Control", "max-stale")), e, now=T + 80), policy.Forward
    )


def test_9111_5_2_2_10_s_maxage_implies_proxy_revalidate() -> None:
    e = entry(("Cache-Control", "s-maxage=60, stale-while-revalidate=100"))
    assert isinstance(
        decide(request(("Cache-Control", "max-stale")), e, now=T + 80), policy.Forward
    )
    e = entry(("Cache-Control", "max-age=60, proxy-revalidate"))
    assert isinstance(
        decide(request(("Cache-Control", "max-stale")), e, now=T + 80), policy.Forward
    )


def test_9111_5_2_1_4_request_no_cache_and_pragma() -> None:
    for pair in (("Cache-Control", "no-cache"), ("Pragma", "no-cache")):
        d = decide(request(pair), FRESH60)
        assert isinstance(d, policy.Forward) and d.fwd is Fwd.REQUEST and d.entry is FRESH60


def test_9111_5_2_2_4_response_no_cache_always_validates() -> None:
    e = entry(("Cache-Control", "no-cache, max-age=60"), ("ETag", '"a"'))
    d = decide(request(), e, now=T + 1)
    assert isinstance(d, policy.Forward) and d.entry is e


def test_9111_5_2_1_7_only_if_cached() -> None:
    oic = ("Cache-Control", "only-if-cached")
    assert isinstance(decide(request(oic)), policy.GatewayTimeout)
    assert isinstance(decide(request(oic), FRESH60, now=T + 100), policy.GatewayTimeout)
    assert isinstance(decide(request(oic), FRESH60, now=T + 1), policy.Serve)
    a = policy.gateway_timeout(b"edgecache; fwd=miss")
    assert a.status == 504


def test_9111_5_2_1_5_request_no_store_prevents_storing() -> None:
    req = request(("Cache-Control", "no-store"))
    d = decide(req)
    assert isinstance(d, policy.Forward)
    out = respond(req, d, 200, ("Cache-Control", "max-age=60"))
    assert isinstance(out, policy.Pass)


# §4.1 Vary


def test_9111_4_1_vary_selects_among_several_variants() -> None:
    ko = entry(
        ("Cache-Control", "max-age=60"),
        ("Vary", "Accept-Language"),
        body=b"ko",
        req=request(("Accept-Language", "ko")),
    )
    en = entry(
        ("Cache-Control", "max-age=60"),
        ("Vary", "accept-language"),
        body=b"en",
        req=request(("Accept-Language", "en")),
    )
    variants = policy.with_variant(policy.with_variant((), ko, 16), en, 16)
    d = decide(request(("Accept-Language", "ko")), *variants)
    assert isinstance(d, policy.Serve) and d.entry.body == b"ko"
    d = decide(request(("accept-language", "en")), *variants)
    assert isinstance(d, policy.Serve) and d.entry.body == b"en"


def test_9111_4_1_vary_normalises_whitespace_and_lines() -> None:
    stored = entry(
        ("Cache-Control", "max-age=60"),
        ("Vary", "Accept"),
        req=request(("Accept", "text/html, application/json")),
    )
    req = request(("Accept", "text/html"), ("Accept", "application/json"))
    assert isinstance(decide(req, stored), policy.Serve)


def test_9111_4_1_absent_header_only_matches_absent() -> None:
    stored = entry(("Cache-Control", "max-age=60"), ("Vary", "Cookie"), req=request())
    assert isinstance(decide(request(), stored), policy.Serve)
    assert isinstance(decide(request(("Cookie", "sid=1")), stored), policy.Forward)


def test_with_variant_replaces_same_key_and_bounds_count() -> None:
    a = entry(("Cache-Control", "max-age=60"), ("Vary", "X"), req=request(("X", "1")))
    b = entry(("Cache-Control", "max-age=60"), ("Vary", "X"), req=request(("X", "2")))
    a2 = entry(("Cache-Control", "max-age=60"), ("Vary", "X"), req=request(("X", "1")), body=b"new")
    variants = policy.with_variant(policy.with_variant((), a, 2), b, 2)
    variants = policy.with_variant(variants, a2, 2)
    assert [v.body for v in variants] == [b"new", b"body"]
    c = entry(("Cache-Control", "max-age=60"), ("Vary", "X"), req=request(("X", "3")))
    assert len(policy.with_variant(variants, c, 2)) == 2


# §4.3 validation


def test_9111_4_3_1_conditional_request_carries_both_validators() -> None:
    lm = format_http_date(T - 500)
    e = entry(("Cache-Control", "max-age=1"), ("ETag", 'W/"v2"'), ("Last-Modified", lm.decode()))
    req = request(("If-None-Match", '"client"'), ("If-Modified-Since", "garbage"))
    d = decide(req, e, now=T + 5)
    assert isinstance(d, policy.Forward)
    assert d.upstream_headers.get_all(b"if-none-match") == [b'W/"v2"']
    assert d.upstream_headers.get(b"if-modified-since") == lm


def test_9111_4_3_2_client_conditionals_answered_with_304() -> None:
    lm = format_http_date(T - 500).decode()
    e = entry(
        ("Cache-Control", "max-age=60"),
        ("ETag", '"v1"'),
        ("Last-Modified", lm),
        ("Content-Type", "text/html"),
    )
    for pairs, status in [
        ((("If-None-Match", '"v1"'),), 304),
        ((("If-None-Match", 'W/"v1"'),), 304),  # weak comparison
        ((("If-None-Match", '"other", "v1"'),), 304),
        ((("If-None-Match", "*"),), 304),
        ((("If-None-Match", '"other"'),), 200),
        ((("If-Modified-Since", lm),), 304),
        ((("If-Modified-Since", format_http_date(T - 600).decode()),), 200),
        ((("If-None-Match", '"other"'), ("If-Modified-Since", lm)), 200),  # INM wins
        ((("If-Modified-Since", "not a date"),), 200),
    ]:
        req = request(*pairs)
        d = decide(req, e, now=T + 1)
        assert isinstance(d, policy.Serve)
        a = policy.answer(req, d.entry, d.cache_status, T + 1)
        assert a.status == status, pairs
        if status == 304:
            assert a.body == b""
            names = [n for n, _ in a.headers]
            assert b"etag" in names and b"age" in names and b"content-type" not in names


def test_if_match_and_range_conditions_go_to_the_origin() -> None:
    d = decide(request(("If-Match", '"v1"')), FRESH60)
    assert isinstance(d, policy.Forward) and d.fwd is Fwd.REQUEST and d.entry is None


def test_9111_4_3_4_304_updates_stored_headers_and_restarts_clock() -> None:
    e = entry(
        ("Cache-Control", "max-age=60"), ("ETag", '"v1"'), ("X-Version", "1"), body=b"payload"
    )
    req = request()
    d = decide(req, e, now=T + 100)
    assert isinstance(d, policy.Forward)
    later = T + 100
    out = respond(
        req,
        d,
        304,
        ("Cache-Control", "max-age=120"),
        ("ETag", '"v1"'),
        ("X-Version", "2"),
        ("Content-Length", "0"),
        ("Date", format_http_date(later).decode()),
        now=later,
    )
    assert isinstance(out, policy.Refreshed)
    fresh = out.entry
    assert fresh.body == b"payload"
    assert fresh.headers.get(b"x-version") == b"2"
    assert fresh.headers.get(b"content-length") == b"7"  # §3.2: never from the 304
    assert fresh.freshness_lifetime == 120
    assert b"fwd=stale; fwd-status=304; stored" in out.cache_status
    assert isinstance(decide(req, fresh, now=later + 60), policy.Serve)


def test_9111_4_3_3_200_on_validation_replaces() -> None:
    req = request()
    d = decide(req, FRESH60, now=T + 100)
    assert isinstance(d, policy.Forward)
    out = respond(req, d, 200, ("Cache-Control", "max-age=60"), ("ETag", '"v2"'))
    assert isinstance(out, policy.Store)


def test_9111_4_3_5_head_updates_or_invalidates() -> None:
    e = entry(("Cache-Control", "max-age=60"), ("ETag", '"v1"'), body=b"1234")
    req = request(method="HEAD")
    d = decide(req, e, now=T + 100)
    assert isinstance(d, policy.Forward)
    same = respond(
        req, d, 200, ("Cache-Control", "max-age=90"), ("ETag", '"v1"'), ("Content-Length", "4")
    )
    assert isinstance(same, policy.Refreshed) and same.entry.freshness_lifetime == 90
    changed = respond(req, d, 200, ("Cache-Control", "max-age=90"), ("ETag", '"v2"'))
    assert isinstance(changed, policy.Pass) and changed.invalidate == (req.primary_key,)


# §4.4 invalidation


def test_9111_4_4_unsafe_method_invalidates_target_and_same_origin_locations() -> None:
    req = request(method="POST", target="/items")
    out = respond(
        req,
        policy.Bypass(Fwd.METHOD),
        201,
        ("Location", "/items/7"),
        ("Content-Location", "http://other.example/x"),
    )
    assert isinstance(out, policy.Pass)
    assert out.invalidate == ("http://example.com/items", "http://example.com/items/7")


def test_9111_4_4_error_answers_do_not_invalidate() -> None:
    req = request(method="DELETE")
    out = respond(req, policy.Bypass(Fwd.METHOD), 500)
    assert isinstance(out, policy.Pass) and out.invalidate == ()


# RFC 5861


def test_5861_3_stale_while_revalidate_serves_and_refreshes() -> None:
    e = entry(("Cache-Control", "max-age=60, stale-while-revalidate=30"), ("ETag", '"a"'))
    d = decide(request(), e, now=T + 80)
    assert isinstance(d, policy.Serve) and d.refresh
    assert b"detail=stale-while-revalidate" in d.cache_status and b"ttl=-20" in d.cache_status
    assert isinstance(decide(request(), e, now=T + 95), policy.Forward)


def test_5861_4_stale_if_error_on_5xx_and_on_failure() -> None:
    e = entry(("Cache-Control", "max-age=60, stale-if-error=100"), ("ETag", '"a"'))
    req = request()
    d = decide(req, e, now=T + 120)
    assert isinstance(d, policy.Forward)
    out = respond(req, d, 503, now=T + 120)
    assert isinstance(out, policy.Serve) and b"stale-if-error" in out.cache_status
    assert policy.on_failure(request_cc(req), e, T + 150, OPTIONS) is not None
    assert policy.on_failure(request_cc(req), e, T + 200, OPTIONS) is None
    # A 404 is an answer, not an error: it passes through.
    assert not isinstance(respond(req, d, 404, now=T + 120), policy.Serve)


def test_5861_4_request_stale_if_error_and_must_revalidate() -> None:
    plain = entry(("Cache-Control", "max-age=60"))
    req = request(("Cache-Control", "stale-if-error=600"))
    assert policy.on_failure(request_cc(req), plain, T + 200, OPTIONS) is not None
    strict = entry(("Cache-Control", "max-age=60, must-revalidate"))
    assert policy.on_failure(request_cc(req), strict, T + 200, OPTIONS) is None


def test_answers_from_cache_always_carry_age_and_cache_status() -> None:
    e = entry(("Cache-Control", "max-age=60"), ("Age", "7"))
    a = policy.answer(request(), e, b"edgecache; hit", T + 3)
    assert a.headers.count((b"age", b"10")) == 1
    assert (b"cache-status", b"edgecache; hit") in a.headers


def test_upstream_cache_status_is_kept_and_ours_appended() -> None:
    e = entry(("Cache-Control", "max-age=60"), ("Cache-Status", "origin-cache; hit"))
    a = policy.answer(request(), e, b"edgecache; hit", T)
    assert [v for n, v in a.headers if n == b"cache-status"] == [
        b"origin-cache; hit",
        b"edgecache; hit",
    ]


def test_entry_serialisation_round_trip() -> None:
    from edgecache.core.model import decode_variants, encode_variants

    a = entry(("Cache-Control", "max-age=60"), ("Vary", "X"), req=request(("X", "1")))
    b = entry(("Cache-Control", "max-age=60"), ("Vary", "X"), req=request(), body=b"\x00\xff")
    assert decode_variants(encode_variants((a, b))) == (a, b)


def test_9111_4_1_accept_encoding_variants_keyed_by_accepted_set() -> None:
    stored = entry(
        ("Cache-Control", "max-age=60"),
        ("Vary", "Accept-Encoding"),
        req=request(("Accept-Encoding", "gzip, deflate, br")),
    )
    same = request(("Accept-Encoding", "br;q=0.9, gzip, deflate"))
    assert isinstance(decide(same, stored), policy.Serve)
    narrower = request(("Accept-Encoding", "gzip"))
    assert isinstance(decide(narrower, stored), policy.Forward)


@pytest.mark.parametrize(
    ("cache_control", "request_cc", "now", "outcome"),
    [
        pytest.param("max-age=60", "", T + 10, Outcome.HIT, id="fresh"),
        pytest.param("max-age=60", "max-stale=30", T + 80, Outcome.STALE, id="9111-5.2.1.2"),
        pytest.param(
            "max-age=60, stale-while-revalidate=30", "", T + 80, Outcome.STALE, id="5861-3"
        ),
    ],
)
def test_the_outcome_of_a_served_entry_comes_from_the_decision(
    cache_control: str, request_cc: str, now: float, outcome: Outcome
) -> None:
    """Stale or fresh is the policy's decision (Serve.stale), not Cache-Status text."""
    stored = entry(("Cache-Control", cache_control), ("ETag", '"v1"'))
    asked = request(("Cache-Control", request_cc)) if request_cc else request()
    first = Exchange(asked, (stored,), now, OPTIONS, max_entry_bytes=10**6, coalesce=True).first
    assert isinstance(first, Respond) and first.outcome is outcome
