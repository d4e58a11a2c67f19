"""Django BasicAuthMiddleware: the outermost layer; a refused request reaches nothing
below, so a protected page can never leave the cache for an unauthenticated client.
The gate (``edgecache.auth``) decides; this face reads the request and answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

from edgecache.auth import Allowed, Challenge, Gate, GateDecision, Open, denial
from edgecache.config import Settings
from edgecache.core.auth import AuthRule
from edgecache.django.convert import GetResponse, Middleware, plain_response, settings_from_django


class BasicAuthMiddleware(Middleware):
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
        super().__init__(get_response)
        self.settings = settings if settings is not None else settings_from_django()[0]
        self.gate = Gate(self.settings, clock)
        self._sleep = sleep

    def call(self, request: HttpRequest) -> HttpResponseBase:
        rule = self._rule(request)
        if rule is None:
            return self.get_response(request)
        decision = self.gate.check(rule, *self._credentials(request))
        if isinstance(decision, Allowed):
            self._allow(request, decision)
            return self.get_response(request)
        if isinstance(decision, Challenge) and decision.delay:
            self._sleep(decision.delay)
        return _refusal(decision)

    async def acall(self, request: HttpRequest) -> HttpResponseBase:
        rule = self._rule(request)
        if rule is None:
            return await self.get_response(request)
        # The password check runs on the gate's thread pool; the loop serves others.
        decision = await self.gate.check_async(rule, *self._credentials(request))
        if isinstance(decision, Allowed):
            self._allow(request, decision)
            return await self.get_response(request)
        if isinstance(decision, Challenge) and decision.delay:
            await asyncio.sleep(decision.delay)
        return _refusal(decision)

    def _rule(self, request: HttpRequest) -> AuthRule | None:
        request.META.pop("HTTP_X_REMOTE_USER", None)
        request.__dict__.pop("headers", None)  # Django's cached view of META
        return self.gate.rule_for(request.path_info)

    @staticmethod
    def _credentials(request: HttpRequest) -> tuple[bytes | None, str]:
        raw = request.META.get("HTTP_AUTHORIZATION")
        authorization = raw.encode("latin-1") if raw is not None else None
        return authorization, request.META.get("REMOTE_ADDR") or "unknown"

    def _allow(self, request: HttpRequest, decision: Allowed) -> None:
        meta = request.META
        if not self.settings.auth_forward_credentials:
            meta.pop("HTTP_AUTHORIZATION", None)
        # META strings are latin-1 code points of the bytes on the wire (PEP 3333).
        user = decision.user.encode("utf-8").decode("latin-1")
        meta["REMOTE_USER"] = meta["HTTP_X_REMOTE_USER"] = user
        request.__dict__.pop("headers", None)


def _refusal(decision: GateDecision) -> HttpResponseBase:
    assert not isinstance(decision, Open | Allowed)
    return plain_response(*denial(decision))
