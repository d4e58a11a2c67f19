"""The wire layer's hit path (``proxy.handler``, ``core.replay``) through a real proxy:
a replayed hit is the answer the exchange would give, and never outlives its entry."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.proxy.conftest import Proxy, start_proxy
from tests.proxy.origin import Origin

TOKEN = "hits-token"


@pytest.fixture
def edge(origin: Origin, tmp_path: Path) -> Iterator[Proxy]:
    with start_proxy(tmp_path, "--upstream", origin.url, "--admin-token", TOKEN) as proxy:
        yield proxy


def _calls(origin: Origin, path: str) -> int:
    return sum(1 for r in origin.requests if r["path"] == path)


def test_replayed_hits_age_and_count_down(edge: Proxy, origin: Origin) -> None:
    with httpx.Client(base_url=edge.url) as client:
        first = client.get("/cached?replay=age")
        assert "stored" in first.headers["cache-status"]
        answers = []
        for _ in range(3):
            answers.append(client.get("/cached?replay=age"))
            time.sleep(0.6)
    ages = [int(a.headers["age"]) for a in answers]
    ttls = [int(a.headers["cache-status"].rsplit("ttl=", 1)[1]) for a in answers]
    assert all(a.headers["cache-status"].startswith("edgecache; hit") for a in answers)
    assert ages == sorted(ages) and ages[-1] >= 1  # the age grows with the clock
    # max-age=60: what is gone from the ttl is in the age
    assert all(59 <= age + ttl <= 60 for age, ttl in zip(ages, ttls, strict=True))
    assert all(a.content == first.content for a in answers)
    assert len(answers[0].headers.get_list("date")) == 1  # one Date, the stored one
    assert answers[0].headers["date"] == first.headers["date"]
    assert _calls(origin, "/cached?replay=age") == 1  # the hits never reached it


def test_a_purge_ends_the_replay(edge: Proxy, origin: Origin) -> None:
    url = "/cached?replay=purge"
    with httpx.Client(base_url=edge.url) as client:
        client.get(url)
        assert client.get(url).headers["cache-status"].startswith("edgecache; hit")
        assert client.get(url).headers["cache-status"].startswith("edgecache; hit")
        before = len(origin.requests)
        purged = client.post(
            "/_edgecache/purge",
            params={"url": f"{edge.url}{url}"},
            headers={"authorization": f"Bearer {TOKEN}"},
        )
        assert purged.status_code == 200 and purged.json()["purged"] == 1
        again = client.get(url)
    assert "fwd=uri-miss" in again.headers["cache-status"]  # not the replayed hit
    assert len(origin.requests) == before + 1


def test_conditionals_ranges_and_codings_are_not_replayed_blindly(edge: Proxy) -> None:
    url = "/cached?replay=shape"
    with httpx.Client(base_url=edge.url) as client:
        client.get(url)
        for _ in range(2):  # warm the replay of the plain request
            whole = client.get(url, headers={"accept-encoding": "identity"})
        assert whole.status_code == 200
        revalidated = client.get(
            url, headers={"accept-encoding": "identity", "if-none-match": '"c1"'}
        )
        assert revalidated.status_code == 304 and revalidated.content == b""
        part = client.get(url, headers={"accept-encoding": "identity", "range": "bytes=0-4"})
        assert part.status_code == 206 and part.content == whole.content[:5]
        fresh = client.get(
            url, headers={"accept-encoding": "identity", "cache-control": "no-cache"}
        )
        assert "fwd=request" in fresh.headers["cache-status"]
        brotli = client.get(url, headers={"accept-encoding": "br"})
        brotli2 = client.get(url, headers={"accept-encoding": "br"})
    assert "content-encoding" not in whole.headers
    assert brotli.headers.get("content-encoding") == "br"
    assert brotli2.headers.get("content-encoding") == "br"
    assert brotli2.content == whole.content  # httpx decodes br


def test_a_body_that_dies_before_the_head_left_is_a_502_and_never_stored(
    edge: Proxy, origin: Origin
) -> None:
    # /die promises 100000 bytes and sends 1000: small enough to be read whole before
    # the head is sent, so the client gets a clear 502, not a truncated 200.
    with httpx.Client(base_url=edge.url) as client:
        answers = [client.get("/die") for _ in range(2)]
    assert [a.status_code for a in answers] == [502, 502]
    assert all("stored" not in a.headers.get("cache-status", "") for a in answers)
    assert _calls(origin, "/die") == 2  # nothing was kept to answer the second
    assert "not storing" in edge.wait_for_log("broke off")
