"""A real browser through ``edgecache proxy --self-signed`` in front of the aiohttp
origin: a protected path answers the browser's Basic challenge (Playwright's
``http_credentials``) and refuses it 401 without them; a websocket opened by the page
echoes through the proxy's tunnel."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import bcrypt
import pytest

try:
    from playwright.sync_api import Error as PlaywrightError
except ImportError:  # the browser fixture skips these tests and says why
    PlaywrightError = Exception  # type: ignore[misc,assignment]

from tests.proxy.conftest import Proxy, start_proxy
from tests.proxy.origin import Origin, running_origin

USER, PASSWORD = "ops", "browser-s3cret"

# Runs in the page: open a websocket to the page's own host (through the proxy), send a
# text and a binary message, resolve with what came back.
ECHO = """async () => {
  const ws = new WebSocket(`wss://${location.host}/ws`, ["chat"]);
  ws.binaryType = "arraybuffer";
  const replies = [];
  const done = new Promise((resolve, reject) => {
    ws.onmessage = (event) => {
      replies.push(typeof event.data === "string"
        ? event.data : Array.from(new Uint8Array(event.data)));
      if (replies.length === 2) resolve();
    };
    ws.onerror = () => reject(new Error("websocket error"));
  });
  await new Promise((resolve) => { ws.onopen = resolve; });
  ws.send("hello from the page");
  ws.send(new Uint8Array([1, 2, 3]));
  await done;
  const protocol = ws.protocol;
  ws.close();
  return {replies, protocol};
}"""


@pytest.fixture(scope="module")
def echo_origin() -> Iterator[Origin]:
    with running_origin() as origin:
        yield origin


@pytest.fixture(scope="module")
def guarded_proxy(echo_origin: Origin, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    tmp = tmp_path_factory.mktemp("browser-auth")
    users = tmp / "users"
    users.write_text(f"{USER}:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()}\n")
    with start_proxy(
        tmp,
        "--upstream",
        echo_origin.url,
        "--self-signed",
        "--auth",
        f"/echo:{users}:Ops",
        "--auth-failure-delay",
        "0",
        scheme="https",
    ) as p:
        yield p


def test_a_protected_page_answers_the_browsers_challenge(
    browser: Any, guarded_proxy: Proxy, echo_origin: Origin
) -> None:
    # Without credentials the browser gets the 401 and its challenge; Playwright then
    # fails the navigation (it has nothing to answer with), as a user would cancel.
    anonymous = browser.new_context(ignore_https_errors=True)
    try:
        page = anonymous.new_page()
        responses: list[Any] = []
        page.on("response", lambda response: responses.append(response))
        with pytest.raises(PlaywrightError, match="ERR_INVALID_AUTH_CREDENTIALS"):
            page.goto(guarded_proxy.url + "/echo")
        [refused] = responses
        assert refused.status == 401
        assert refused.headers["www-authenticate"].startswith('Basic realm="Ops"')
    finally:
        anonymous.close()
    context = browser.new_context(
        ignore_https_errors=True, http_credentials={"username": USER, "password": PASSWORD}
    )
    try:
        answer = context.new_page().goto(guarded_proxy.url + "/echo")
        assert answer is not None and answer.status == 200  # after the Basic challenge
        seen = dict(echo_origin.last()["headers"])
        assert seen["x-remote-user"] == USER and "authorization" not in seen
    finally:
        context.close()
    # The refused visit reached nothing (Chromium may ask for /favicon.ico besides).
    assert [r["path"] for r in echo_origin.requests].count("/echo") == 1


def test_a_websocket_from_the_page_echoes(browser: Any, guarded_proxy: Proxy) -> None:
    context = browser.new_context(ignore_https_errors=True)
    try:
        page = context.new_page()
        page.goto(guarded_proxy.url + "/cached")  # an open page of the proxy's origin
        result = page.evaluate(ECHO)
        assert result["replies"] == ["echo:hello from the page", [3, 2, 1]]
        assert result["protocol"] == "chat"
    finally:
        context.close()
