"""Django BasicAuthMiddleware: the outermost layer; a refused request reaches nothing
below, so a protected page can never leave the cache for an unauthenticated client.
The gate (``edgecache.auth``) decides; this face reads the request and answers."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

from edgecache.auth import Allowed, Challenge, Gate, Open, denial
from edgecache.config import Settings
from edgecache.django.cache import GetResponse
from edgecache.django.convert import SyncMiddleware, plain_response, settings_from_django


class BasicAuthMiddleware(SyncMiddleware):
    """HTTP Basic authentication (RFC 7617) for the path prefixes in ``auth``.

    The user name reaches the views as ``REMOTE_USER`` (what Django's
    RemoteUserMiddleware reads) and an ``X-Remote-User`` header (one a client sends
    itself is always removed); the credentials do not, unless
    ``auth_forward_credentials``.
    """

    def __init__(
        self,
        get_response: GetResponse,
        settings: Settings | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.get_response = get_response
        self.settings = settings if settings is not None else settings_from_django()[0]
        self.gate = Gate(self.settings, clock)
        self._sleep = sleep

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        meta = request.META
        meta.pop("HTTP_X_REMOTE_USER", None)
        request.__dict__.pop("headers", None)  # Django's cached view of META
        rule = self.gate.rule_for(request.path_info)
        if rule is None:
            return self.get_response(request)
        raw = meta.get("HTTP_AUTHORIZATION")
        authorization = raw.encode("latin-1") if raw is not None else None
        decision = self.gate.check(rule, authorization, meta.get("REMOTE_ADDR", "unknown"))
        if isinstance(decision, Allowed):
            if not self.settings.auth_forward_credentials:
                meta.pop("HTTP_AUTHORIZATION", None)
            # META strings are latin-1 code points of the bytes on the wire (PEP 3333).
            user = decision.user.encode("utf-8").decode("latin-1")
            meta["REMOTE_USER"] = meta["HTTP_X_REMOTE_USER"] = user
            return self.get_response(request)
        assert not isinstance(decision, Open)
        if isinstance(decision, Challenge) and decision.delay:
            self._sleep(decision.delay)
        return plain_response(*denial(decision))
