"""WSGI BasicAuthMiddleware: the outermost layer; a refused request reaches nothing below,
so a protected page can never leave the cache for an unauthenticated client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from edgecache.auth import Allowed, Challenge, Gate, Open, denial
from edgecache.config import Settings
from edgecache.wsgi.cache import Environ, StartResponse, WSGIApp, status_line, str_headers


class BasicAuthMiddleware:
    """HTTP Basic authentication (RFC 7617) for the path prefixes in ``settings.auth``.

    The user name reaches the app as ``REMOTE_USER`` and an ``X-Remote-User`` header
    (one a client sends itself is always removed); the credentials do not, unless
    ``auth_forward_credentials``.
    """

    def __init__(
        self,
        app: WSGIApp,
        settings: Settings | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        **options: Any,
    ) -> None:
        self.app = app
        self.settings = settings or Settings.from_env(**options)
        self.gate = Gate(self.settings, clock)
        self._sleep = sleep

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        environ.pop("HTTP_X_REMOTE_USER", None)
        rule = self.gate.rule_for(environ.get("PATH_INFO", "/"))
        if rule is None:
            return self.app(environ, start_response)
        raw = environ.get("HTTP_AUTHORIZATION")
        authorization = raw.encode("latin-1") if raw is not None else None
        # This request thread waits while a gate pool thread hashes. It would block
        # either way; the hand-off bounds how many hashes run at once and runs them at
        # a lower CPU priority, so request threads serving other paths come first.
        decision = self.gate.check(rule, authorization, environ.get("REMOTE_ADDR", "unknown"))
        if isinstance(decision, Allowed):
            if not self.settings.auth_forward_credentials:
                environ.pop("HTTP_AUTHORIZATION", None)
            # PEP 3333 strings are latin-1 code points of the bytes on the wire.
            user = decision.user.encode("utf-8").decode("latin-1")
            environ["REMOTE_USER"] = environ["HTTP_X_REMOTE_USER"] = user
            return self.app(environ, start_response)
        assert not isinstance(decision, Open)
        if isinstance(decision, Challenge) and decision.delay:
            self._sleep(decision.delay)
        status, headers, body = denial(decision)
        start_response(status_line(status), str_headers(headers))
        return [body]
