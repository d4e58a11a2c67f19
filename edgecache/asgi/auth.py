"""ASGI BasicAuthMiddleware: the outermost layer; a refused request reaches nothing below,
so a protected page can never leave the cache for an unauthenticated client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from edgecache.asgi.types import ASGIApp, Receive, Scope, Send
from edgecache.auth import X_REMOTE_USER, Allowed, Challenge, Gate, Open, denial
from edgecache.config import Settings
from edgecache.core.headers import AUTHORIZATION

USER_KEY = "edgecache.user"
LOG_KEY = "edgecache.log"
"""The access log's note in the scope (set by the server layer when it logs)."""


class BasicAuthMiddleware:
    """HTTP Basic authentication (RFC 7617) for the path prefixes in ``settings.auth``.

    The user name reaches the app as ``scope["edgecache.user"]`` and an
    ``X-Remote-User`` header (one a client sends itself is always removed); the
    credentials do not, unless ``auth_forward_credentials``.
    """

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings | None = None,
        *,
        clock: Callable[[], float] = time.time,
        **options: Any,
    ) -> None:
        self.app = app
        self.settings = settings or Settings.from_env(**options)
        self.gate = Gate(self.settings, clock)
        # Request fields an allowed request loses: the client's own X-Remote-User, and
        # its credentials unless the upstream is to see them.
        self.dropped = {X_REMOTE_USER} | (
            set() if self.settings.auth_forward_credentials else {AUTHORIZATION}
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        rule = self.gate.rule_for(scope["path"])
        if rule is None:
            if any(name == X_REMOTE_USER for name, _ in headers):
                scope = {**scope, "headers": [h for h in headers if h[0] != X_REMOTE_USER]}
            await self.app(scope, receive, send)
            return
        authorization = next((v for n, v in headers if n == AUTHORIZATION), None)
        client = scope.get("client")
        # The password check runs on the gate's thread pool: bcrypt takes ~100 ms at
        # cost 10, and the event loop serves every other request meanwhile.
        address = client[0] if client else "unknown"
        decision = await self.gate.check_async(rule, authorization, address)
        if isinstance(decision, Allowed):
            note = scope.get(LOG_KEY)
            if note is not None:  # the scope is copied below: tell the access log here
                note["user"] = decision.user
            kept = [h for h in headers if h[0] not in self.dropped]
            kept.append((X_REMOTE_USER, decision.user.encode("utf-8")))
            await self.app({**scope, "headers": kept, USER_KEY: decision.user}, receive, send)
            return
        assert not isinstance(decision, Open)
        if isinstance(decision, Challenge) and decision.delay:
            await asyncio.sleep(decision.delay)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        status, out, body = denial(decision)
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": body})
