"""The upstream forwarder: an ASGI app that streams requests to a pool of HTTP backends
over our keep-alive upstream client (``edgecache.wire.upstream``, httptools) and streams
the answers back. Websocket upgrades are tunnelled by ``websocket.py`` (still aiohttp).

Failures become answers, never tracebacks: refused or unreachable upstream -> 502,
timeout -> 504, oversized body -> 413, slow client body -> 408. An upstream that dies
mid-body has its connection, and the client's, closed without the final chunk, so no
cache below or client above takes a truncated body for a whole one. A client that goes
away cancels the upstream request.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

from edgecache.asgi.types import Message, Receive, Scope, Send
from edgecache.config import Settings, parse_upstreams
from edgecache.core.balancing import Balancer, Member
from edgecache.core.forwarded import (
    ForwardOptions,
    downstream_response_headers,
    parse_networks,
    upstream_request_headers,
)
from edgecache.core.headers import CONTENT_LENGTH, TRANSFER_ENCODING, Headers
from edgecache.core.upstream import ASGI_KEY as UPSTREAM_ERROR
from edgecache.core.upstream import UpstreamError
from edgecache.metrics import UPSTREAM_BYTES
from edgecache.proxy.websocket import close_websocket_client, tunnel_websocket
from edgecache.wire.types import BodyTimeout as WireBodyTimeout
from edgecache.wire.types import BodyTooLarge as WireBodyTooLarge
from edgecache.wire.types import ClientGone as WireClientGone
from edgecache.wire.upstream import (
    ConnectError,
    InformationalHook,
    ProtocolError,
    Response,
    UpstreamPool,
    UpstreamTimeout,
)
from edgecache.wire.upstream import UpstreamError as ClientError

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger("edgecache.proxy")
LOG_KEY = "edgecache.log"
"""A dict the access log puts in the scope; the forwarder notes upstream facts in it."""


SMALL_BODY = 256 * 1024
"""Answers up to this size are relayed without a disconnect watcher (two fewer tasks)."""


class BodyTooLarge(Exception):
    pass


class ClientTooSlow(Exception):
    pass


class ClientGone(Exception):
    """The client hung up while sending its body: nobody is left to answer."""


MAX_IDLE = 128
"""Idle keep-alive connections kept per upstream (nginx's ``keepalive`` directive)."""
IDLE_TIMEOUT = 30.0
"""Seconds an idle upstream connection is kept."""


def _plain(
    status: int, text: str, extra: list[tuple[bytes, bytes]] | None = None
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = f"{status} {text}\n".encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *(extra or []),
    ]
    return status, headers, body


async def send_plain(
    send: Send, status: int, text: str, error: UpstreamError | None = None
) -> None:
    """A short answer of the edge's own; ``error`` marks it as standing for a failed
    upstream, so the cache above may answer from a stale entry instead."""
    status, headers, body = _plain(status, text)
    start: Message = {"type": "http.response.start", "status": status, "headers": headers}
    if error is not None:
        start[UPSTREAM_ERROR] = error
    await send(start)
    await send({"type": "http.response.body", "body": body})


def upstream_error(exc: BaseException) -> UpstreamError | None:
    """The kind of failure an upstream client error stands for; None for our own bugs."""
    if isinstance(exc, UpstreamTimeout | TimeoutError):
        return UpstreamError.TIMEOUT
    if isinstance(exc, ConnectError):  # refused, unreachable, DNS
        return UpstreamError.REFUSED
    if isinstance(exc, ProtocolError):  # e.g. an unparseable status line or head
        return UpstreamError.INVALID
    if isinstance(exc, ClientError | OSError):  # closed or reset before the answer
        return UpstreamError.RESET
    return None


class _Upstream:
    """Where one pool member is: origin for the URL, base path, Host, and its
    connections."""

    __slots__ = ("base_path", "host", "origin", "pool")

    def __init__(self, url: str, settings: Settings) -> None:
        parts = urlsplit(url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.base_path = parts.path.rstrip("/")
        self.host = parts.netloc
        self.pool = UpstreamPool(
            self.origin,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            # The upstream not taking our request bytes is a slow upstream too.
            send_timeout=settings.read_timeout,
            max_idle=MAX_IDLE,
            idle_timeout=IDLE_TIMEOUT,
        )


class Opened(NamedTuple):
    """A request under way at a pool member: its answer's head is in."""

    member: Member
    place: _Upstream
    response: Response
    elapsed: float
    """Seconds until the answer's head came (the access log's upstream time)."""


class Failure(NamedTuple):
    """The answer a failed forward calls for. ``status`` 0: the client left while
    sending its body, so nobody is left to answer."""

    status: int
    text: str
    error: UpstreamError | None = None
    """Set when the upstream failed: a stale entry may answer instead (stale-on-error)."""
    note: str = ""
    """Why, for the access log."""


_BODY_REFUSALS: tuple[tuple[type[BaseException], int, str], ...] = (
    (BodyTooLarge, 413, "Content Too Large"),
    (WireBodyTooLarge, 413, "Content Too Large"),
    (ClientTooSlow, 408, "Request Timeout"),
    (WireBodyTimeout, 408, "Request Timeout"),
    (ClientGone, 0, ""),
    (WireClientGone, 0, ""),
)


def _body_failure(exc: BaseException) -> Failure | None:
    """The answer to a failure of the client's own body (the ASGI face's reader or the
    wire layer's), which the upstream client lets out as it is."""
    for kind, status, text in _BODY_REFUSALS:
        if isinstance(exc, kind):
            return Failure(status, text)
    return None


def request_target(scope: Scope) -> str:
    """The client's path and query as received, for the upstream request line."""
    path: bytes = scope.get("raw_path") or scope["path"].encode()
    target = path.decode("latin-1")
    if scope.get("query_string"):
        target += "?" + scope["query_string"].decode("latin-1")
    return target


IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


class Forwarder:
    """Sends every request on to one member of a pool of upstreams.

    A request whose connection to a member fails is retried on the next member when it
    is idempotent and has no body to resend (RFC 9110 §9.2.2); other failures answer
    502/504 at once. Failures count towards a member's passive health.
    """

    def __init__(
        self,
        settings: Settings,
        upstreams: list[tuple[str, int]] | None = None,
        balancer: Balancer | None = None,
    ) -> None:
        self.settings = settings
        if balancer is None:
            pairs = upstreams if upstreams is not None else parse_upstreams(settings.upstream)
            balancer = Balancer(
                [Member(url, weight) for url, weight in pairs],
                settings.balance,
                settings.max_fails,
                settings.fail_timeout,
            )
        self.balancer = balancer
        self.places = {m: _Upstream(m.url, settings) for m in balancer.members}
        self.options = ForwardOptions(
            trusted=parse_networks(settings.trusted_proxies),
            preserve_host=settings.preserve_host,
            forwarded_header=settings.forwarded_header,
            drop_accept_encoding=settings.compress,
        )
        self._health: asyncio.Task[None] | None = None
        self.websocket_session: aiohttp.ClientSession | None = None
        """Made by ``websocket.py`` at the first upgrade: websockets still use aiohttp."""

    async def start(self) -> None:
        if self.settings.health_path and self._health is None:
            self._health = asyncio.ensure_future(self._probe_forever())

    async def close(self) -> None:
        if self._health is not None:
            self._health.cancel()
        for place in self.places.values():
            place.pool.close()
        await close_websocket_client(self)

    async def _probe_forever(self) -> None:
        """Active health: GET health_path on every member; a failure takes it out until
        the next probe succeeds."""
        interval = self.settings.health_interval
        while True:
            for member, place in self.places.items():
                try:
                    async with asyncio.timeout(interval):
                        healthy = await self._probe(place)
                except (ClientError, OSError):  # TimeoutError is an OSError
                    healthy = False
                if healthy:
                    self.balancer.succeeded(member)
                else:  # out until a probe succeeds, with no gap between probes
                    member.down_until = math.inf
            await asyncio.sleep(interval)

    async def _probe(self, place: _Upstream) -> bool:
        target = place.base_path + self.settings.health_path
        response = await place.pool.request("GET", target, [(b"host", place.host.encode())])
        async with response:
            async for _ in response:  # read to the end: the connection stays usable
                pass
        return response.status < 400

    async def open(
        self,
        method: str,
        target: str,
        fields: Callable[[_Upstream], list[tuple[bytes, bytes]]],
        body: AsyncIterable[bytes] | None,
        on_informational: InformationalHook | None = None,
        read_timeout: float | None = None,
    ) -> Opened | Failure:
        """Send a request to a member of the pool (``target`` is the client's path and
        query; ``fields`` makes the upstream request's header fields for a member) and
        return once the final answer's head is in, or the answer the failure calls for.
        Shared by every face: the ASGI app below and the wire layer's own handler.
        ``finished`` must be called once the answer's body has been relayed.
        ``read_timeout``: a route's own, over the pool's."""
        retry = method in IDEMPOTENT and body is None
        tried: list[Member] = []
        while True:
            member = self.balancer.pick(time.monotonic(), tried)
            if member is None:  # every upstream is out (passive or active health)
                return Failure(502, "Bad Gateway", UpstreamError.REFUSED, "no upstream")
            tried.append(member)
            place = self.places[member]
            path = place.base_path + target
            started = time.monotonic()
            member.active += 1
            try:
                response = await place.pool.request(
                    method,
                    path,
                    fields(place),
                    body,
                    on_informational=on_informational,
                    read_timeout=read_timeout,
                )
            except Exception as exc:
                member.active -= 1
                refused = _body_failure(exc)  # what the body reader raised, as it is
                if refused is not None:
                    return refused
                self.balancer.failed(member, time.monotonic())
                if retry and isinstance(exc, ConnectError) and len(tried) < len(self.places):
                    log.warning(
                        "upstream %s refused %s %s; trying the next", place.origin, method, path
                    )
                    continue
                return self._failed(place, method, path, exc)
            return Opened(member, place, response, time.monotonic() - started)

    def finished(self, opened: Opened) -> None:
        """The answer of ``open`` is relayed (or abandoned): its member is free again."""
        opened.member.active -= 1
        opened.response.close()
        if opened.response.status < 500:
            self.balancer.succeeded(opened.member)

    def _failed(self, place: _Upstream, method: str, path: str, exc: Exception) -> Failure:
        error = upstream_error(exc)
        if error is UpstreamError.TIMEOUT:
            log.warning("upstream %s timed out for %s %s", place.origin, method, path)
            return Failure(504, "Gateway Timeout", error, "timeout")
        if error is None:
            raise exc
        log.warning("upstream %s failed for %s %s: %s", place.origin, method, path, exc)
        return Failure(502, "Bad Gateway", error, type(exc).__name__)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] == "websocket":
            await tunnel_websocket(self, scope, receive, send)
            return
        if scope["type"] != "http":
            return
        note: dict[str, Any] = scope.get(LOG_KEY, {})
        headers = Headers(scope["headers"])
        declared = headers.get(CONTENT_LENGTH)
        if (
            declared is not None
            and declared.isdigit()
            and int(declared) > (self.settings.max_body_size)
        ):
            await send_plain(send, 413, "Content Too Large")
            return
        has_body = (declared is not None and declared != b"0") or TRANSFER_ENCODING in headers
        body = _BodyReader(receive, self.settings.max_body_size, self.settings.send_timeout)
        opened = await self.open(
            scope["method"],
            request_target(scope),
            lambda place: self.upstream_fields(scope, headers, place),
            body.stream() if has_body else None,
        )
        if isinstance(opened, Failure):
            if opened.status == 0:
                note["client_gone"] = True  # no one to answer, and not the upstream's fault
                return
            if opened.error is not None:
                note["upstream_error"] = opened.note
            await send_plain(send, opened.status, opened.text, opened.error)
            return
        response = opened.response
        note["upstream_status"] = response.status
        note["upstream_time"] = opened.elapsed
        try:
            await self._relay(scope, receive, send, response, body, note, opened.place.origin)
        finally:
            self.finished(opened)

    def target(self, scope: Scope, place: _Upstream) -> str:
        return place.base_path + request_target(scope)

    def upstream_headers(
        self, scope: Scope, headers: Headers, place: _Upstream
    ) -> list[tuple[str, str]]:
        """``upstream_fields`` as text, for the websocket tunnel's aiohttp client."""
        return [
            (n.decode("latin-1"), v.decode("latin-1"))
            for n, v in self.upstream_fields(scope, headers, place)
        ]

    def upstream_fields(
        self, scope: Scope, headers: Headers, place: _Upstream
    ) -> list[tuple[bytes, bytes]]:
        client = scope.get("client")
        return upstream_request_headers(
            headers,
            client[0] if client else None,
            scope.get("edgecache.user"),
            scope.get("scheme", "http"),
            scope.get("http_version", "1.1"),
            place.host,
            self.options,
        )

    async def _relay(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        response: Response,
        body: _BodyReader,
        note: dict[str, Any],
        origin: str,
    ) -> None:
        headers = downstream_response_headers(
            response.headers, response.http_version, self.options.via_name
        )
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        length = response.content_length
        if scope["method"] == "HEAD" or response.status in (204, 304):
            await send({"type": "http.response.body", "body": b""})  # never a body
            return
        if not body.done or (length is not None and length <= SMALL_BODY):
            # A small body is relayed at once, and a client still owing its own body
            # cannot be listened to for a hang-up: no watcher task for either.
            await self._stream_body(send, response, note, origin)
            return
        streaming = asyncio.ensure_future(self._stream_body(send, response, note, origin))
        watcher = asyncio.ensure_future(_wait_disconnect(receive))
        done, _ = await asyncio.wait({streaming, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if streaming in done:
            watcher.cancel()
            streaming.result()
            return
        streaming.cancel()  # the client left: stop reading the upstream
        note["client_gone"] = True
        response.close()
        await asyncio.gather(streaming, return_exceptions=True)

    async def _stream_body(
        self, send: Send, response: Response, note: dict[str, Any], origin: str
    ) -> None:
        sent = 0
        try:
            length = response.content_length
            if length is not None and length <= SMALL_BODY:
                whole = await response.read()  # raises when short: httptools counts
                UPSTREAM_BYTES.inc(len(whole))
                await send({"type": "http.response.body", "body": whole})
                return
            async for chunk in response:
                sent += len(chunk)
                UPSTREAM_BYTES.inc(len(chunk))
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except (ClientError, OSError) as exc:  # IncompleteBody, BodyTimeout
            # Returning without the final message makes the server close the client's
            # connection: the body is not passed off, or cached, as complete.
            note["upstream_error"] = f"broken body: {type(exc).__name__}"
            log.warning(
                "upstream %s broke off after %d body bytes: %s",
                origin,
                sent,
                exc or type(exc).__name__,
            )
            response.close()
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return


class _BodyReader:
    """The client's request body as an async stream, bounded in size and in time."""

    def __init__(self, receive: Receive, limit: int, timeout: float) -> None:
        self._receive = receive
        self._limit = limit
        self._timeout = timeout
        self.done = True
        self.refusal: tuple[int, str] | None = None

    async def stream(self) -> AsyncIterator[bytes]:
        self.done = False
        size = 0
        while True:
            try:
                message = await asyncio.wait_for(self._receive(), self._timeout)
            except TimeoutError:
                self.refusal = (408, "Request Timeout")
                raise ClientTooSlow from None
            if message["type"] == "http.disconnect":
                raise ClientGone("client went away during its upload")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._limit:
                self.refusal = (413, "Content Too Large")
                raise BodyTooLarge
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                self.done = True
                return
