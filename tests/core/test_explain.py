"""core.explain without I/O: each next-request action with its rule, each lifetime
source, the memory of reasons, and the words of every NotStored member."""

from __future__ import annotations

import pytest

from edgecache.core.entries import build_entry
from edgecache.core.exchange import Exchange
from edgecache.core.explain import REASON_WORDS, NotStoredMemory, explain, reason_words
from edgecache.core.freshness import effective_cache_control
from edgecache.core.headers import Headers
from edgecache.core.model import Entry, PolicyOptions, RequestHead
from edgecache.core.storability import NotStored

OPTIONS = PolicyOptions()
NOW = 1_800_000_000.0
DATE = b"Fri, 15 Jan 2027 08:00:00 GMT"  # NOW


def request(*fields: tuple[bytes, bytes], method: str = "GET") -> RequestHead:
    return RequestHead(method, "http", "shop", "/p", Headers([(b"host", b"shop"), *fields]))


def stored(*fields: tuple[bytes, bytes], status: int = 200) -> Entry:
    headers = Headers([(b"date", DATE), *fields])
    cc = effective_cache_control(headers, OPTIONS.targeted_fields)
    return build_entry(request(), status, headers, cc, b"body", NOW, NOW, OPTIONS)


NEXT = [
    pytest.param([], (), 0, "forward", "RFC 9111 §4", id="9111-4-nothing-stored"),
    pytest.param(
        [stored((b"cache-control", b"max-age=60"))], (), 10, "hit", "RFC 9111 §4.2", id="hit"
    ),
    pytest.param(
        [stored((b"cache-control", b"max-age=60"), (b"vary", b"accept-language"))],
        ((b"accept-language", b"fr"),),
        0,
        "forward",
        "RFC 9111 §4.1",
        id="9111-4.1-vary-miss",
    ),
    pytest.param(
        [stored((b"cache-control", b"max-age=60"))],
        ((b"cache-control", b"no-cache"),),
        0,
        "revalidate",
        "RFC 9111 §5.2.1",
        id="9111-5.2.1.4-request-no-cache",
    ),
    pytest.param(
        [stored((b"cache-control", b"max-age=1"), (b"etag", b'"a"'))],
        (),
        5,
        "revalidate",
        "RFC 9111 §4.3.1",
        id="9111-4.3.1-stale",
    ),
    pytest.param(
        [stored((b"cache-control", b"max-age=1"))],
        ((b"cache-control", b"max-stale=60"),),
        5,
        "max-stale",
        "RFC 9111 §5.2.1.2",
        id="9111-5.2.1.2-max-stale",
    ),
    pytest.param(
        [stored((b"cache-control", b"max-age=1, stale-while-revalidate=60"))],
        (),
        5,
        "stale-while-revalidate",
        "RFC 5861 §3",
        id="5861-3-swr",
    ),
    pytest.param(
        [stored((b"cache-control", b"max-age=60, no-cache"))],
        (),
        0,
        "revalidate",
        "RFC 9111 §5.2.2.4",
        id="9111-5.2.2.4-no-cache",
    ),
    pytest.param(
        [stored((b"cache-control", b"max-age=1, must-revalidate, stale-while-revalidate=60"))],
        (),
        5,
        "revalidate",
        "RFC 9111 §4.2.4, §5.2.2.2",
        id="9111-5.2.2.2-must-revalidate",
    ),
    pytest.param(
        [],
        ((b"cache-control", b"only-if-cached"),),
        0,
        "gateway-timeout",
        "RFC 9111 §5.2.1.7",
        id="9111-5.2.1.7-only-if-cached",
    ),
]


@pytest.mark.parametrize(("variants", "fields", "later", "action", "rule"), NEXT)
def test_what_the_next_request_gets_and_the_rule(
    variants: list[Entry],
    fields: tuple[tuple[bytes, bytes], ...],
    later: float,
    action: str,
    rule: str,
) -> None:
    got = explain(request(*fields), variants, NOW + later, OPTIONS)
    assert (got.next.action, got.next.rule) == (action, rule)
    assert got.next.cache_status.startswith("edgecache;")
    assert got.as_text().count("\n") >= 2


def test_unsafe_methods_bypass() -> None:
    got = explain(request(method="DELETE"), [], NOW, OPTIONS)
    assert (got.next.action, got.next.rule) == ("bypass", "RFC 9111 §4.4")


SOURCES = [
    pytest.param((b"cache-control", b"s-maxage=90, max-age=10"), "s-maxage", 90, id="s-maxage"),
    pytest.param((b"cache-control", b"max-age=10"), "max-age", 10, id="max-age"),
    pytest.param((b"expires", b"Fri, 15 Jan 2027 08:05:00 GMT"), "expires", 300, id="expires"),
    pytest.param(
        (b"last-modified", b"Fri, 15 Jan 2027 07:00:00 GMT"), "heuristic", 360, id="heuristic"
    ),
    pytest.param((b"etag", b'"only-a-validator"'), "none", 0, id="none"),
]


@pytest.mark.parametrize(("field", "source", "lifetime"), SOURCES)
def test_where_each_lifetime_comes_from(
    field: tuple[bytes, bytes], source: str, lifetime: float
) -> None:
    (variant,) = explain(request(), [stored(field)], NOW, OPTIONS).variants
    assert (variant.lifetime_source, variant.freshness_lifetime) == (source, lifetime)
    assert variant.lifetime_why


def test_cdn_cache_control_is_named_as_the_source() -> None:
    entry = stored((b"cache-control", b"max-age=5"), (b"cdn-cache-control", b"max-age=300"))
    (variant,) = explain(request(), [entry], NOW, OPTIONS).variants
    assert variant.directives_from == "cdn-cache-control"
    assert variant.freshness_lifetime == 300


def exchange_for(fields: tuple[tuple[bytes, bytes], ...]) -> Exchange:
    exchange = Exchange(request(), (), NOW, OPTIONS, max_entry_bytes=100, coalesce=False)
    exchange.on_head(200, Headers([(b"date", DATE), *fields]), NOW)
    return exchange


def test_the_memory_notes_a_refusal_and_forgets_it_once_stored() -> None:
    memory = NotStoredMemory(limit=2)
    memory.record(exchange_for(((b"cache-control", b"private"),)), NOW)
    key = request().primary_key
    note = memory.get(key)
    assert note is not None and note.reason is NotStored.PRIVATE
    got = explain(request(), [], NOW + 3, OPTIONS, note)
    assert got.not_stored is not None
    assert (got.not_stored.reason, got.not_stored.ago) == ("private", 3)
    fine = exchange_for(((b"cache-control", b"max-age=60"),))
    fine.on_body(b"x")
    fine.on_end(NOW)
    memory.record(fine, NOW)
    assert memory.get(key) is None


def test_the_memory_is_bounded() -> None:
    memory = NotStoredMemory(limit=2)
    for path in ("/a", "/b", "/c"):
        exchange = Exchange(
            request()._replace(target=path), (), NOW, OPTIONS, max_entry_bytes=1, coalesce=False
        )
        exchange.on_head(200, Headers([(b"cache-control", b"no-store")]), NOW)
        memory.record(exchange, NOW)
    assert memory.get("http://shop/a") is None
    assert memory.get("http://shop/c") is not None


def test_a_body_over_the_limit_is_too_large() -> None:
    exchange = exchange_for(((b"cache-control", b"max-age=60"),))
    exchange.on_body(b"x" * 101)
    assert exchange.not_stored is NotStored.TOO_LARGE
    assert "max_entry_bytes (100 bytes)" in reason_words(NotStored.TOO_LARGE, exchange.limit)


def test_every_reason_has_words_and_a_rule() -> None:
    assert set(REASON_WORDS) == set(NotStored)
    assert all(words and rule for words, rule in REASON_WORDS.values())
