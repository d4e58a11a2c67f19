"""Replaying a fresh hit: the answer the exchange gave one request, given again to the
next request that cannot get a different one, without running the policy again.

A fresh hit (``Outcome.HIT``) on a stored 200 answers every request for the same URL,
method and Accept-Encoding alike, until the entry goes stale, as long as the request
carries none of the fields that can change the answer: request cache directives
(§5.2.1), conditionals and ranges (§4.3.2, RFC 9110 §13, §14), credentials and cookies
(which change what may be reused: ``freshness.may_use_heuristic``), a body (fat GET),
and the entry varies on nothing but Accept-Encoding (§4.1), which is in the key. Only
Age and Cache-Status's ttl change from one such answer to the next, and both are
computed here from the same clock the policy reads.

A face keeps ``Replay`` values and checks, at each use, that the store still holds
the same variants (nothing was purged, invalidated or replaced since) and that ``now``
is before ``fresh_until``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from edgecache.core import headers as h
from edgecache.core.cache_status import hit_status
from edgecache.core.exchange import Answer, Outcome, Respond
from edgecache.core.freshness import current_age
from edgecache.core.headers import ACCEPT_ENCODING
from edgecache.core.model import Entry

ANSWER_CHANGING = frozenset(
    {
        h.AUTHORIZATION,
        h.CACHE_CONTROL,
        h.CONTENT_LENGTH,
        h.COOKIE,
        h.IF_MATCH,
        h.IF_MODIFIED_SINCE,
        h.IF_NONE_MATCH,
        h.IF_RANGE,
        h.IF_UNMODIFIED_SINCE,
        h.PRAGMA,
        h.RANGE,
        h.TRANSFER_ENCODING,
    }
)
"""Request fields whose presence may change a stored entry's answer."""


def replay_key(headers: Sequence[tuple[bytes, bytes]]) -> bytes | None:
    """What, besides method and URL, selects a replayed answer: the request's
    Accept-Encoding as sent (b"" when absent); None when the request carries a field
    that may change its answer, so it must go through the exchange."""
    coding = b""
    for name, value in headers:
        if name in ANSWER_CHANGING:
            return None
        if name == ACCEPT_ENCODING:
            coding = value if not coding else coding + b"," + value
    return coding


def _vary_only_on_coding(variants: object) -> bool:
    """Every variant stored for the URL varies on nothing but Accept-Encoding (which is
    in the replay's key): a request that another variant's Vary would select could
    otherwise get this one's answer replayed (§4.1 picks the most recent match)."""
    if not isinstance(variants, tuple | list):
        return False
    return all(
        isinstance(v, Entry) and all(name == ACCEPT_ENCODING for name, _ in v.vary)
        for v in variants
    )


class Replay(NamedTuple):
    """A fresh hit's answer, to give again while ``now < fresh_until``."""

    variants: object
    """What the store held when the answer was made: the same object must still be
    there (the memory store hands out the tuple it keeps)."""
    entry: Entry
    status: int
    stored: list[tuple[bytes, bytes]]
    """The answer's fields but the last two (Age, Cache-Status)."""
    body: bytes
    coding: str
    born: float
    """``now - born`` is the entry's current age (§4.2.3: it grows with the clock)."""
    fresh_until: float
    cache_name: str

    def fields(self, now: float) -> tuple[bytes, bytes]:
        """Age and Cache-Status at ``now``, as ``policy.answer`` writes them."""
        age = now - self.born
        return b"%d" % age, hit_status(self.cache_name, self.entry.freshness_lifetime - age)


def replay_of(
    respond: Respond, answer: Answer, variants: object, now: float, cache_name: str
) -> Replay | None:
    """A replay of ``answer`` (what the runtime made of ``respond``, for a request whose
    ``replay_key`` was not None), or None when later requests may get another."""
    entry = respond.entry
    if (
        entry is None
        or respond.outcome is not Outcome.HIT
        or respond.refresh is not None
        or respond.copy is not None
        or entry.status != 200
        or answer.status != 200
        or not _vary_only_on_coding(variants)
        or [name for name, _ in answer.headers[-2:]] != [h.AGE, h.CACHE_STATUS]
    ):
        return None
    age = current_age(entry, now)
    fresh_until = now + entry.freshness_lifetime - age
    if fresh_until <= now:
        return None
    born = now - age
    stored = answer.headers[:-2]
    return Replay(
        variants,
        entry,
        answer.status,
        stored,
        answer.body,
        respond.coding,
        born,
        fresh_until,
        cache_name,
    )
