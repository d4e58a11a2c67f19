"""Django's request and response objects as the core sees them, and back.

Headers come from ``request.META`` (PEP 3333 strings, as the WSGI face reads environ);
a response's headers are ``response.items()`` plus its cookies, which Django keeps
apart and serialises only when it sends the answer.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIRequest
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from edgecache.config import Settings
from edgecache.core.exchange import Answer
from edgecache.core.headers import Headers
from edgecache.core.model import RequestHead
from edgecache.errors import ConfigError
from edgecache.wsgi.cache import environ_with_headers, headers_from_environ

SET_COOKIE = b"set-cookie"
GetResponse = Callable[[HttpRequest], Any]
"""The next handler: returns an HttpResponse, or a coroutine of one in async mode."""


class Middleware:
    """Django's middleware protocol in both modes: async when the handler below is (under
    ASGI, with every middleware below async-capable), else sync. ``call`` and ``acall``
    are the two modes; the work around them is shared."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)  # how Django tells an async middleware

    def __call__(self, request: HttpRequest) -> Any:
        return self.acall(request) if self.is_async else self.call(request)

    def call(self, request: HttpRequest) -> HttpResponseBase:
        raise NotImplementedError

    async def acall(self, request: HttpRequest) -> HttpResponseBase:
        raise NotImplementedError


def settings_from_django() -> tuple[Settings, dict[str, Any]]:
    """The edgecache settings of ``settings.EDGECACHE`` (a dict of edgecache settings;
    unset ones come from ``EDGECACHE_*`` variables, then defaults), and the objects it
    may name beside them (``store``: a Store object; ``clock``)."""
    options = dict(getattr(django_settings, "EDGECACHE", None) or {})
    extra = {name: options.pop(name) for name in ("clock",) if name in options}
    if not isinstance(options.get("store", ""), str):  # a Store object, not the setting
        extra["store"] = options.pop("store")
    try:
        return Settings.from_env(**options), extra
    except ConfigError as exc:
        raise ImproperlyConfigured(f"settings.EDGECACHE: {exc}") from exc


def request_head(request: HttpRequest) -> RequestHead:
    """The core's request head. Host is Django's ``get_host()``: it applies
    ALLOWED_HOSTS (a disallowed Host is refused before any cache lookup) and
    USE_X_FORWARDED_HOST, as the views see it; the scheme honours
    SECURE_PROXY_SSL_HEADER."""
    return RequestHead(
        request.method or "GET",
        request.scheme or "http",
        request.get_host().lower(),
        request.get_full_path(),
        headers_from_environ(request.META),
    )


def forward_with(request: HttpRequest, head: RequestHead, headers: Headers) -> None:
    """Give the views the request with ``headers`` (the cache adds conditionals when it
    revalidates a stored answer)."""
    if headers is head.headers:
        return
    request.META = environ_with_headers(request.META, headers)
    request.__dict__.pop("headers", None)  # Django's cached HttpHeaders view of META


def request_copy(request: HttpRequest) -> HttpRequest | None:
    """A new request like ``request`` with an empty body, for a refresh the cache makes
    once the client's request is finished with; None for a kind unknown here."""
    if isinstance(request, WSGIRequest):
        return WSGIRequest({**request.META, "wsgi.input": io.BytesIO(), "CONTENT_LENGTH": "0"})
    if isinstance(request, ASGIRequest):
        return ASGIRequest(request.scope, io.BytesIO())
    return None


def response_headers(response: HttpResponseBase) -> Headers:
    cookies = ((SET_COOKIE.decode(), c.OutputString()) for c in response.cookies.values())
    return Headers.from_str_pairs([*response.items(), *cookies])


def set_headers(response: HttpResponseBase, pairs: Iterable[tuple[bytes, bytes]]) -> None:
    """Make ``pairs`` the response's headers. Set-Cookie is left to ``response.cookies``
    when it has them (the driver passes an answer's cookies on as they were); a stored
    answer's cookies (an opt-in) are loaded into it."""
    for name in list(response.headers):
        del response.headers[name]
    had_cookies = bool(response.cookies)
    for raw_name, raw_value in pairs:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        if raw_name == SET_COOKIE:
            if not had_cookies:
                response.cookies.load(value)
            continue
        # Django holds one value per name; a list-valued field joins (RFC 9110 §5.3).
        known = response.headers.get(name)
        response.headers[name] = value if known is None else f"{known}, {value}"


def django_response(answer: Answer) -> HttpResponse:
    """An answer from the cache as Django's response."""
    return plain_response(answer.status, answer.headers, answer.body)


def plain_response(
    status: int, headers: Iterable[tuple[bytes, bytes]], body: bytes
) -> HttpResponse:
    response = HttpResponse(body, status=status)
    set_headers(response, headers)
    return response
