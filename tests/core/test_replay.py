"""core.replay: a replayed hit is the answer the exchange gives, at any later moment
before the entry goes stale, and nothing that could change the answer is replayed."""

from __future__ import annotations

import pytest

from edgecache.core import policy
from edgecache.core.exchange import Exchange, Respond
from edgecache.core.model import Entry, RequestHead
from edgecache.core.replay import ANSWER_CHANGING, replay_key, replay_of
from tests.helpers import OPTIONS, entry, request

T = 1000.0
FRESH60 = entry(("Cache-Control", "max-age=60"), ("Date", "Thu, 01 Jan 1970 00:16:40 GMT"))


def _respond(req: RequestHead, stored: Entry, now: float) -> tuple[Respond, policy.Answer]:
    first = Exchange(req, (stored,), now, OPTIONS, max_entry_bytes=10**6, coalesce=True).first
    assert isinstance(first, Respond)
    return first, first.answer


@pytest.mark.parametrize("name", sorted(ANSWER_CHANGING))
def test_a_field_that_may_change_the_answer_is_never_replayed(name: bytes) -> None:
    assert replay_key([(b"accept", b"*/*"), (name, b"x")]) is None


def test_the_key_is_the_accept_encoding_as_sent() -> None:
    assert replay_key([(b"accept-encoding", b"br"), (b"accept-encoding", b"gzip")]) == b"br,gzip"
    assert replay_key([(b"user-agent", b"curl")]) == b""


def test_a_replay_gives_what_the_exchange_gives_later() -> None:
    req = request()
    respond, answer = _respond(req, FRESH60, T + 5)
    replay = replay_of(respond, answer, (FRESH60,), T + 5, OPTIONS.cache_name)
    assert replay is not None and replay.fresh_until == pytest.approx(T + 60)
    later = T + 31.5
    _, expected = _respond(req, FRESH60, later)
    fields = dict(expected.headers)
    assert replay.fields(later) == (fields[b"age"], fields[b"cache-status"])
    assert replay.body == expected.body


def test_stale_varying_or_refreshing_answers_are_not_replayed() -> None:
    req = request()
    swr = entry(("Cache-Control", "max-age=1, stale-while-revalidate=60"))
    respond, answer = _respond(req, swr, T + 5)  # stale: served while refreshing
    assert replay_of(respond, answer, (swr,), T + 5, OPTIONS.cache_name) is None
    french = request(("Accept-Language", "fr"))
    varying = entry(("Cache-Control", "max-age=60"), ("Vary", "Accept-Language"), req=french)
    respond, answer = _respond(french, varying, T)
    assert replay_of(respond, answer, (varying,), T, OPTIONS.cache_name) is None


def test_no_replay_while_another_variant_varies_on_more() -> None:
    # The answer chosen varies on Accept-Encoding only, but a newer variant of the same
    # URL varies on Accept-Language: a French request must get that one, so nothing of
    # this URL is replayed.
    plain = entry(("Cache-Control", "max-age=60"), ("Vary", "Accept-Encoding"))
    french = request(("Accept-Language", "fr"))
    other = entry(
        ("Cache-Control", "max-age=60"), ("Vary", "Accept-Language"), req=french, at=T + 1
    )
    respond, answer = _respond(request(), plain, T + 2)
    assert replay_of(respond, answer, (plain, other), T + 2, OPTIONS.cache_name) is None
    assert replay_of(respond, answer, (plain,), T + 2, OPTIONS.cache_name) is not None
