"""Issue 12: the attacks on the cache, reproduced through a real proxy process, and
shown to fail now. Each test first does what the attacker did, then what the victim
does, and checks the victim gets the origin's own answer for them."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.proxy.conftest import Proxy, start_proxy
from tests.proxy.origin import Origin


def test_fat_get_does_not_poison_the_plain_get(client: httpx.Client, origin: Origin) -> None:
    # The attacker: GET with a body; the origin's answer depends on it and says public.
    attack = client.request("GET", "/reflect/fat", content=b"EVIL")
    assert attack.content == b"answer to body EVIL"  # forwarded as it was, body and all
    assert origin.last()["body_size"] == 4
    assert "detail=request-body" in attack.headers["cache-status"]
    # The victim: a plain GET gets the origin's answer to a plain GET, and it is stored.
    plain = client.get("/reflect/fat")
    assert plain.content == b"answer to body "
    assert "stored" in plain.headers["cache-status"]
    assert client.get("/reflect/fat").headers["cache-status"].startswith("edgecache; hit")
    # A fat GET may still be answered from the stored entry; it does not replace it.
    again = client.request("GET", "/reflect/fat", content=b"EVIL")
    assert again.content == b"answer to body "
    assert client.get("/reflect/fat").content == b"answer to body "
    # HEAD with a body must not update the stored GET either.
    client.request("HEAD", "/reflect/fat", content=b"EVIL")
    assert client.get("/reflect/fat").content == b"answer to body "


def test_chunked_fat_get_does_not_poison(client: httpx.Client, proxy: Proxy) -> None:
    def body() -> object:
        yield b"EV"
        yield b"IL"

    attack = client.request("GET", "/reflect/chunked", content=body())  # type: ignore[arg-type]
    assert attack.content == b"answer to body EVIL"
    assert client.get("/reflect/chunked").content == b"answer to body "


def test_web_cache_deception_page_is_not_stored(client: httpx.Client) -> None:
    # The victim, logged in, is lured to a URL that looks static; the origin ignores the
    # suffix and answers the account page with a month-old Last-Modified, no Cache-Control.
    lured = client.get("/account.php/x.css", headers={"Cookie": "sid=victim"})
    assert lured.content == b"account page of sid=victim"
    status = lured.headers["cache-status"]
    assert "stored" not in status and "detail=credentials-heuristic" in status
    # The attacker, anonymous, asks for the same URL: the origin's anonymous answer.
    stolen = client.get("/account.php/x.css")
    assert stolen.content == b"please log in"
    # Without a cookie the heuristic applies as before (RFC 9111 §4.2.2).
    assert "stored" in stolen.headers["cache-status"]


def test_set_cookie_is_not_replayed(client: httpx.Client) -> None:
    first = client.get("/session/a")
    cookie = first.headers["set-cookie"]
    assert "detail=set-cookie" in first.headers["cache-status"]
    second = client.get("/session/a")
    assert second.headers["set-cookie"] != cookie  # the origin's own, new session
    assert "hit" not in second.headers["cache-status"]


def test_set_cookie_strip_stores_without_the_cookie(origin: Origin, tmp_path: Path) -> None:
    with (
        start_proxy(tmp_path, "--upstream", origin.url, "--cache-set-cookie", "strip") as p,
        httpx.Client(base_url=p.url, timeout=10) as c,
    ):
        first = c.get("/session/strip")
        assert first.headers["set-cookie"].startswith("session=")  # this client's own
        assert "stored" in first.headers["cache-status"]
        hit = c.get("/session/strip")
        assert hit.headers["cache-status"].startswith("edgecache; hit")
        assert "set-cookie" not in hit.headers and hit.content == b"welcome"
