"""Issue 12: the attacks on the cache, reproduced through a real proxy process, and
shown to fail now. Each test first does what the attacker did, then what the victim
does, and checks the victim gets the origin's own answer for them."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import httpx

from tests.proxy.conftest import Proxy, start_proxy
from tests.proxy.origin import Origin, running_origin


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


FORBIDDING = ["must-revalidate", "proxy-revalidate", "no-cache", "s-maxage=1"]


def _served_stale(c: httpx.Client, path: str, detail: str) -> None:
    got = c.get(path)
    assert got.status_code == 200, (path, got.status_code, got.text)
    status = got.headers["cache-status"]
    assert "fwd=stale" in status and f"detail={detail}" in status, status
    assert got.content.startswith(b"cc answer") and int(got.headers["age"]) >= 1


def test_upstream_killed_stale_is_served_unless_forbidden(tmp_path: Path) -> None:
    with ExitStack() as upstream:
        origin = upstream.enter_context(running_origin())
        with (
            start_proxy(tmp_path, "--upstream", origin.url) as p,
            httpx.Client(base_url=p.url, timeout=10) as c,
        ):
            paths = ["/cc/plain?cc=max-age=1"] + [f"/cc/{d}?cc=max-age=1,{d}" for d in FORBIDDING]
            for path in paths:
                assert "stored" in c.get(path).headers["cache-status"], path
            upstream.close()  # the upstream is killed: its port refuses connections
            time.sleep(1.2)  # every entry is stale now
            _served_stale(c, paths[0], "upstream-refused")
            for path in paths[1:]:  # each directive forbids serving it stale
                got = c.get(path)
                assert got.status_code == 502, path
                assert "detail=upstream-refused" in got.headers["cache-status"]
            # Again, now that passive health has taken the only upstream out.
            _served_stale(c, paths[0], "upstream-refused")


def test_upstream_timeout_stale_is_served(tmp_path: Path) -> None:
    with (
        running_origin() as origin,
        start_proxy(tmp_path, "--upstream", origin.url, "--read-timeout", "0.5") as p,
        httpx.Client(base_url=p.url, timeout=10) as c,
    ):
        assert "stored" in c.get("/cc/t?cc=max-age=1").headers["cache-status"]
        origin.delay = 2.0
        time.sleep(1.2)
        _served_stale(c, "/cc/t?cc=max-age=1", "upstream-timeout")


def test_stale_on_error_zero_is_off(tmp_path: Path) -> None:
    with (
        running_origin() as origin,
        start_proxy(
            tmp_path, "--upstream", origin.url, "--read-timeout", "0.5", "--stale-on-error", "0"
        ) as p,
        httpx.Client(base_url=p.url, timeout=10) as c,
    ):
        assert "stored" in c.get("/cc/z?cc=max-age=1").headers["cache-status"]
        origin.delay = 2.0
        time.sleep(1.2)
        got = c.get("/cc/z?cc=max-age=1")
        assert got.status_code == 504 and "detail=upstream-timeout" in got.headers["cache-status"]


def test_origin_own_502_is_not_replaced(client: httpx.Client) -> None:
    got = client.get("/status/502")  # the origin's answer, not a failure to reach it
    assert got.status_code == 502 and got.content == b"status body"
    assert "detail=upstream" not in got.headers["cache-status"]


def test_forwarder_names_each_upstream_failure() -> None:
    from edgecache.core.upstream import UpstreamError
    from edgecache.proxy.forward import upstream_error
    from edgecache.wire.upstream_errors import (
        ConnectError,
        ConnectTimeout,
        IncompleteBody,
        ProtocolError,
        ReadTimeout,
        UpstreamClosed,
    )

    assert upstream_error(ConnectError("refused")) is UpstreamError.REFUSED
    assert upstream_error(UpstreamClosed("closed")) is UpstreamError.RESET
    assert upstream_error(ConnectionResetError()) is UpstreamError.RESET
    assert upstream_error(IncompleteBody("cut")) is UpstreamError.RESET
    assert upstream_error(ConnectTimeout("slow")) is UpstreamError.TIMEOUT
    assert upstream_error(ReadTimeout("slow")) is UpstreamError.TIMEOUT
    assert upstream_error(TimeoutError()) is UpstreamError.TIMEOUT
    assert upstream_error(ProtocolError("bad head")) is UpstreamError.INVALID
    assert upstream_error(ValueError()) is None
