"""The handler interface of the wire layer: what a handler is given and what it calls.

The wire layer (``edgecache.wire.connection``) parses a request head, checks it
against the RFC 9112 rules and the limits, and then:

1. calls ``handler.answer_now(request)`` at once, in the parser's callback, with no
   task and no coroutine. An :class:`Answer` (pre-serialised bytes) is written with one
   ``transport.writelines``; this is the cache-hit path.
2. otherwise runs ``await handler.handle(request, reply)`` in a task. The handler
   answers through the :class:`Reply`: ``start`` / ``write`` / ``end`` (or ``abort``),
   reads the request body from ``reply.body()``, learns that the client left from
   ``reply.gone`` / ``reply.on_gone``, and hands an upgraded connection over with
   ``reply.tunnel()``.

Nothing malformed ever reaches a handler: a request that breaks a rule is answered by
the wire layer (400/408/414/431/501/505) and its connection closed.

This module imports nothing but the standard library, so the layers above can code
against it without pulling in httptools or uvloop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import NamedTuple, Protocol
from urllib.parse import unquote

Headers = list[tuple[bytes, bytes]]
"""Header fields in order, names lowercased, values as received."""


class Request:
    """One parsed, validated request head. Built once per request by the wire layer;
    handlers treat it as read-only."""

    __slots__ = (
        "authority",
        "client",
        "context",
        "has_body",
        "headers",
        "keep_alive",
        "method",
        "path",
        "query",
        "scheme",
        "target",
        "upgrade",
        "version",
    )

    def __init__(
        self,
        method: str,
        target: str,
        path: str,
        query: str,
        authority: str,
        scheme: str,
        version: str,
        headers: Headers,
        client: tuple[str, int] | None,
        keep_alive: bool,
        has_body: bool,
        upgrade: bytes | None,
    ) -> None:
        self.method = method
        """``GET``, ``POST``, ... as received (methods are case-sensitive)."""
        self.target = target
        """The request-target as received (latin-1): origin-form ``/a?b``, absolute-form
        ``http://h/a?b`` or ``*`` (only ever seen with OPTIONS)."""
        self.path = path
        """The path as received, still percent-encoded (``/a%20b``); ``/`` for an
        absolute-form target without one, ``*`` for asterisk-form."""
        self.query = query
        """What follows ``?`` (without it), ``""`` when there is none."""
        self.authority = authority
        """Validated, lowercased ``host[:port]``: the absolute-form target's authority
        when there is one (it wins over Host, RFC 9112 §3.2.2), else the Host field.
        ``headers`` then carries this value as its one Host field."""
        self.scheme = scheme
        """``http`` or ``https``: how the client reached us (TLS or not)."""
        self.version = version
        """``1.0``, ``1.1`` or ``2`` (HTTP/2: no upgrade, always kept alive)."""
        self.headers = headers
        self.client = client
        """The peer's (address, port); None for a unix socket."""
        self.keep_alive = keep_alive
        """The client asked to keep the connection (1.1 default, 1.0 ``keep-alive``)."""
        self.has_body = has_body
        """Content-Length > 0 or Transfer-Encoding: chunked."""
        self.upgrade = upgrade
        """The lowercased ``Upgrade`` value when ``Connection: upgrade`` asks for one
        (``b"websocket"``), else None. Answer 101 and call ``reply.tunnel()``, or
        answer anything else (the connection is then closed after the answer)."""
        self.context: object = None
        """The handler's own: what ``answer_now`` learnt and ``handle`` reuses (the
        cache lookup of a miss), so the work is not done twice."""

    def header(self, name: bytes) -> bytes | None:
        """The first value of field ``name`` (lowercase), None when absent."""
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.authority}{self.target} HTTP/{self.version}>"


def decoded_path(path: str) -> str:
    """``Request.path`` percent-decoded, as routes, auth rules and ASGI apps see it."""
    return unquote(path) if "%" in path else path


class Answer(NamedTuple):
    """A whole answer as pre-serialised bytes, for ``Handler.answer_now``.

    ``head`` is the status line and the header fields, each line ending in CRLF, but
    *without* the empty line that ends the head: the wire layer appends the connection
    fields it must (``connection: close`` or ``keep-alive``, HSTS on TLS, a Date when
    ``has_date`` is false), then CRLF, then ``body`` (not for HEAD). The head must
    frame the body itself (``content-length``); the parts are written as they are, in
    one ``transport.writelines``, never copied.
    """

    status: int
    head: Sequence[bytes]
    body: Sequence[bytes] = ()
    has_date: bool = True
    """False: the wire layer adds its own Date (one Date per answer, RFC 9110 §6.6.1)."""
    cache_status: str = ""
    """For the access log."""
    user: str = ""
    """The authenticated user, for the access log (nginx's ``$remote_user``)."""
    outcome: object = None
    """The cache's ``core.exchange.Outcome``, for the request metrics."""
    route: str = ""
    """The route that answered, for the request metrics' label ("" for none)."""


class ClientGone(ConnectionError):
    """The client closed its connection (raised by ``Reply.write`` and the body)."""


class BodyTooLarge(Exception):
    """The request body exceeds ``max_body_size``. Uncaught before ``start``, the wire
    layer answers 413 and closes."""


class BodyTimeout(Exception):
    """The client sent no body bytes for ``send_timeout`` seconds. Uncaught before
    ``start``, the wire layer answers 408 and closes."""


class Tunnel(Protocol):
    """The client's connection after a 101, as raw bytes both ways."""

    async def read(self) -> bytes:
        """The next bytes from the client; ``b""`` once it has closed its side.
        Reading is paused while bytes wait here unread (back-pressure)."""
        ...

    async def write(self, data: bytes) -> None:
        """Send bytes to the client; waits while the transport's buffer is full.
        Raises ClientGone once the client has gone."""
        ...

    def close(self) -> None:
        """Close the client's connection (after what was written is flushed)."""
        ...


class Reply(Protocol):
    """One request's answer, for ``Handler.handle``. Not thread-safe; loop only."""

    # Set by the handler, read by the access log (and the request metrics).
    cache_status: str
    outcome: object
    """The cache's ``core.exchange.Outcome`` for the request metrics; None: no cache."""
    user: str
    upstream_time: float | None
    upstream_error: str
    route: str
    """The route answering, for the request metrics' label."""

    @property
    def gone(self) -> bool:
        """True once the client has closed its connection."""
        ...

    @property
    def started(self) -> bool:
        """True once ``start`` has been called."""
        ...

    def on_gone(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (once, from the loop) when the client leaves before the
        answer is complete: cancel upstream work there. At once when already gone."""
        ...

    def informational(self, status: int, headers: Headers) -> None:
        """Send a 1xx answer (103 Early Hints, 100 Continue) before ``start``. Dropped
        for an HTTP/1.0 client, which cannot receive one (RFC 9110 §15.2)."""
        ...

    def start(self, status: int, headers: Headers, reason: bytes = b"") -> None:
        """Send the final status and head. The wire layer owns framing and the
        connection: it keeps ``content-length`` (else chunks for 1.1, or closes after
        the body for 1.0), drops ``transfer-encoding``/``connection``/``keep-alive``
        from ``headers``, adds ``connection`` as needed, and a Date only when
        ``headers`` has none. No body is sent for HEAD, 1xx, 204 and 304."""
        ...

    async def write(self, data: bytes) -> None:
        """Send body bytes (chunked when so framed). Waits while the transport's write
        buffer is over its high-water mark, up to ``write_timeout``; raises ClientGone
        when the client has left (or did not take the bytes in time)."""
        ...

    def end(self, data: bytes = b"") -> None:
        """Send ``data`` and finish the answer. A body shorter than its declared
        Content-Length closes the connection instead (the client sees it truncated)."""
        ...

    def abort(self) -> None:
        """Close the connection now, mid-answer (an upstream died mid-body): the client
        sees a truncated answer, never a complete-looking one."""
        ...

    def body(self) -> AsyncIterator[bytes]:
        """The request body, chunk by chunk (de-chunked); empty when there is none.
        Sends ``100 Continue`` first when the client expects it. Reading pauses while
        unread bytes pile up. Raises BodyTooLarge (over ``max_body_size``),
        BodyTimeout (nothing for ``send_timeout`` seconds) or ClientGone."""
        ...

    async def tunnel(self) -> Tunnel:
        """After ``start(101, ...)``: the connection as a raw two-way byte stream.
        The bytes the client sent after the request head come first."""
        ...


class Handler(Protocol):
    """What the wire layer calls: one object per server, shared by every connection."""

    def answer_now(self, request: Request) -> Answer | None:
        """The synchronous fast path, called right after the head is parsed: return
        an Answer to write it at once (no task, no coroutine), or None to have
        ``handle`` run in a task. Must not block; exceptions answer 500."""
        ...

    async def handle(self, request: Request, reply: Reply) -> None:
        """Answer ``request`` through ``reply``. Returning without ``start`` answers
        500; returning after ``start`` but without ``end`` aborts (the client sees a
        truncated answer, never a complete-looking one). An exception before
        ``start`` answers 500 (413/408 for BodyTooLarge/BodyTimeout), after it
        aborts. After a 101 and ``tunnel()``, returning closes the connection."""
        ...

    async def startup(self) -> None:
        """Once per process before the first connection is accepted."""
        ...

    async def shutdown(self) -> None:
        """Once per process after the last connection has closed."""
        ...


class BaseHandler:
    """A Handler with no fast path and nothing to start or stop: subclass and write
    ``handle`` (and ``answer_now`` for answers that need no I/O)."""

    def answer_now(self, request: Request) -> Answer | None:
        return None

    async def handle(self, request: Request, reply: Reply) -> None:
        raise NotImplementedError

    async def startup(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None
