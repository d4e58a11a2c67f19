"""The upstream forwarder: one per pool of HTTP backends, with its balancer, its health
prober and a keep-alive connection pool per member (``edgecache.wire.upstream``,
httptools). ``open`` sends a request to a member and returns once the answer's head is
in, or the answer a failure calls for: refused or unreachable -> 502, timeout -> 504,
the client's body too large -> 413 or too slow -> 408. The wire layer's handler
(``proxy.handler``) relays the body and calls ``finished``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterable, Callable
from typing import NamedTuple
from urllib.parse import urlsplit

from edgecache.asgi.types import Message, Receive, Scope, Send
from edgecache.config import Settings, parse_upstreams
from edgecache.core.balancing import Balancer, Member
from edgecache.core.forwarded import (
    ForwardOptions,
    parse_networks,
)
from edgecache.core.upstream import ASGI_KEY as UPSTREAM_ERROR
from edgecache.core.upstream import UpstreamError
from edgecache.wire.types import BodyTimeout, BodyTooLarge, ClientGone
from edgecache.wire.upstream import (
    ConnectError,
    InformationalHook,
    ProtocolError,
    Response,
    UpstreamPool,
    UpstreamTimeout,
)
from edgecache.wire.upstream import UpstreamError as ClientError

log = logging.getLogger("edgecache.proxy")
SMALL_BODY = 256 * 1024
"""Answers up to this size are read whole before their head is sent: one write, and a
body that breaks off is a clear 502 rather than a truncated answer."""

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
        if url.startswith("unix:"):  # a local app worker's socket (edgecache serve)
            self.origin, self.base_path, self.host = url, "", "localhost"
        else:
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
    (BodyTimeout, 408, "Request Timeout"),
    (ClientGone, 0, ""),
)


def _body_failure(exc: BaseException) -> Failure | None:
    """The answer to a failure of the client's own body (the wire layer's reader),
    which the upstream client lets out as it is."""
    for kind, status, text in _BODY_REFUSALS:
        if isinstance(exc, kind):
            return Failure(status, text)
    return None


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

    async def start(self) -> None:
        if self.settings.health_path and self._health is None:
            self._health = asyncio.ensure_future(self._probe_forever())

    async def close(self) -> None:
        if self._health is not None:
            self._health.cancel()
        for place in self.places.values():
            place.pool.close()

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
            except asyncio.CancelledError:
                member.active -= 1  # the client left: the request is no longer in flight
                raise
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
        """Only the ASGI lifespan, which starts and stops the health prober: requests
        reach the pool through ``open`` (the wire layer's ``proxy.handler``)."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        raise RuntimeError(f"the forwarder takes no {scope['type']} scope: use open()")

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
