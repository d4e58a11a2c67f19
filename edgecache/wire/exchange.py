"""One request's life on a connection: the Reply a handler answers through, the
request body it reads, and the bytes the wire layer frames for it.

Framing is ours, not the handler's: Content-Length is kept when given, otherwise an
HTTP/1.1 answer is chunked and an HTTP/1.0 one ends with the connection. A Date is
added only when the handler sent none, so there is one per answer (RFC 9110 §6.6.1).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from edgecache.wire.config import WireConfig
from edgecache.wire.framing import (
    CHUNKED,
    CLOSE,
    CONTINUE,
    CRLF,
    KEEP_ALIVE,
    LAST_CHUNK,
    DateField,
    plain_answer,
    status_line,
)
from edgecache.wire.handling import wake
from edgecache.wire.types import (
    Answer,
    BodyTimeout,
    BodyTooLarge,
    ClientGone,
    Headers,
    Request,
    Tunnel,
)


class Host(Protocol):
    """What an exchange asks of the server its connection belongs to."""

    @property
    def stopping(self) -> bool: ...

    @property
    def date(self) -> DateField: ...


class Link(Protocol):
    """What an exchange asks of its connection (``wire.connection.Connection``), named
    here so the two modules do not import each other."""

    body_deadline: float
    body_waiting: Exchange | None

    @property
    def config(self) -> WireConfig: ...

    @property
    def server(self) -> Host: ...

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    @property
    def transport(self) -> asyncio.Transport: ...

    @property
    def hsts(self) -> bytes: ...

    @property
    def lost(self) -> bool: ...

    @property
    def retiring(self) -> bool: ...

    @property
    def write_paused(self) -> bool: ...

    async def drain(self) -> None: ...

    def exchange_done(self, exchange: Exchange, aborted: bool = False) -> None: ...

    def pause_for_body(self) -> None: ...

    def resume_for_body(self, exchange: Exchange) -> None: ...

    def resume_for_tunnel(self) -> None: ...

    def stop_reading(self) -> None: ...

    def open_tunnel(self) -> RawTunnel: ...


HIGH_WATER = 256 * 1024
"""Unread request body bytes past which reading from the client pauses."""
LOW_WATER = 64 * 1024
_FRAMING = frozenset((b"connection", b"keep-alive", b"transfer-encoding", b"proxy-connection"))
"""Fields the wire layer sets itself; a handler's are dropped."""


class Exchange:
    """The wire layer's Reply (see ``types.Reply``) and the request body's buffer."""

    __slots__ = (
        "_body_begun",
        "_gone_callbacks",
        "_head",
        "_length",
        "bodyless",
        "buffered",
        "cache_status",
        "chunked",
        "chunks",
        "complete",
        "conn",
        "declared",
        "error",
        "expect_continue",
        "finished",
        "gone",
        "keep_alive",
        "outcome",
        "overruled",
        "received",
        "request",
        "route",
        "sent",
        "started",
        "started_at",
        "status",
        "task",
        "tunnelled",
        "upstream_error",
        "upstream_time",
        "user",
        "waiter",
    )

    def __init__(self, conn: Link, request: Request, expect: bool, declared: int | None) -> None:
        self.conn = conn
        self.request = request
        # An upgrade request not taken up by a tunnel ends its connection: the parser
        # stopped at its head and cannot go on reading requests after it.
        self.keep_alive = request.keep_alive and request.upgrade is None and not conn.retiring
        self.expect_continue = expect
        self.declared = declared
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.received = 0
        self.complete = not request.has_body
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self._body_begun = False
        self.started = False
        self.finished = False
        self.tunnelled = False
        self.overruled = False
        """The wire layer answered in the handler's place: its answer is dropped."""
        self.status = 0
        self.sent = 0
        self._length: int | None = None
        self.chunked = False
        self.bodyless = False
        self._head = b""
        self.gone = False
        self._gone_callbacks: list[Callable[[], None]] = []
        self.task: asyncio.Task[None] | None = None
        self.cache_status = ""
        self.outcome: object = None
        self.route = ""
        self.user = ""
        self.upstream_time: float | None = None
        self.upstream_error = ""
        self.started_at = time.time()

    # -- the request body, fed by the connection's parser callbacks -----------------

    def feed(self, data: bytes) -> None:
        if self.error is not None or self.finished:
            return  # refused or answered: the rest is dropped, and the connection ends
        self.received += len(data)
        self.chunks.append(data)
        self.buffered += len(data)
        if self.received > self.conn.config.max_body_size:
            # The chunk that crosses the limit is still handed over, so a handler that
            # counts for itself sees the excess first and answers in its own words.
            self.error = BodyTooLarge()
            self.keep_alive = False
            self.conn.stop_reading()
        elif self.buffered > HIGH_WATER:
            self.conn.pause_for_body()
        if self.waiter is not None:
            self.conn.body_deadline = self.conn.loop.time() + self.conn.config.body_timeout
            self._wake()

    def feed_end(self) -> None:
        self.complete = True
        self._wake()

    def _wake(self, error: BaseException | None = None) -> None:
        wake(self.waiter, error)

    def body_broken(self) -> None:
        """Bad body framing (a bad chunk size): 400 from us if nothing was answered
        yet; the handler sees a client that left, and its answer goes nowhere."""
        self.keep_alive = False
        self.error = ClientGone()
        if not self.started:
            self.fail(400, "Bad Request")
            self.overruled = True
        self._wake(self.error)

    def body_timed_out(self) -> None:
        self.keep_alive = False
        self.error = BodyTimeout()
        self._wake(self.error)

    def client_left(self) -> None:
        if self.gone:
            return
        self.gone = True
        self._wake(ClientGone())
        callbacks, self._gone_callbacks = self._gone_callbacks, []
        for callback in callbacks:
            callback()

    def body(self) -> Exchange:
        return self

    def __aiter__(self) -> Exchange:
        return self

    async def __anext__(self) -> bytes:
        if not self._body_begun:
            self._body_begun = True
            if self.declared is not None and self.declared > self.conn.config.max_body_size:
                self.keep_alive = False
                raise BodyTooLarge
            if self.expect_continue and not self.complete and not self.started:
                self.expect_continue = False
                self.conn.transport.write(CONTINUE)
        while True:
            if self.chunks:
                chunk = self.chunks.popleft()
                self.buffered -= len(chunk)
                if self.buffered < LOW_WATER:
                    self.conn.resume_for_body(self)
                return chunk
            if self.error is not None:
                raise self.error
            if self.complete:
                raise StopAsyncIteration
            if self.gone:
                raise ClientGone
            await self._wait_body()

    async def _wait_body(self) -> None:
        conn = self.conn
        self.waiter = conn.loop.create_future()
        conn.body_deadline = conn.loop.time() + conn.config.body_timeout
        conn.body_waiting = self
        try:
            await self.waiter
        finally:
            self.waiter = None
            conn.body_waiting = None

    # -- the answer ------------------------------------------------------------------

    def on_gone(self, callback: Callable[[], None]) -> None:
        if self.gone:
            callback()
        else:
            self._gone_callbacks.append(callback)

    def informational(self, status: int, headers: Headers) -> None:
        if self.overruled:
            return
        if self.started or not 100 <= status < 200 or status == 101:
            raise RuntimeError(f"informational({status}) after start or not a 1xx")
        if self.request.version == "1.0" or self.conn.lost:
            return  # an HTTP/1.0 client cannot take a 1xx (RFC 9110 §15.2)
        if status == 100:
            self.expect_continue = False
        fields: list[bytes] = []
        for name, value in headers:
            fields += (name, b": ", value, CRLF)
        self.conn.transport.writelines((status_line(status), _checked(fields), CRLF))

    def start(self, status: int, headers: Headers, reason: bytes = b"") -> None:
        if self.started:
            if self.overruled:
                return
            raise RuntimeError("start() called twice")
        conn = self.conn
        request = self.request
        fields: list[bytes] = []
        length: int | None = None
        dated = False
        for name, value in headers:
            name = name.lower()
            if name in _FRAMING:
                continue
            if name == b"content-length":
                length = int(value)
                if status == 204 or status < 200:
                    continue  # RFC 9110 §8.6: never on 1xx or 204
            elif name == b"date":
                dated = True
            elif name == b"cache-status" and not self.cache_status:
                self.cache_status = value.decode("latin-1")  # for the access log
            fields += (name, b": ", value, CRLF)
        parts = [status_line(status, reason), _checked(fields)]
        self.started = True
        self.status = status
        bodyless = request.method == "HEAD" or status in (204, 304) or status < 200
        # A body the client is still sending and nobody will read ends the connection.
        keep = self.keep_alive and self.complete and not conn.server.stopping
        if status == 101:
            parts.append(b"connection: upgrade\r\n")
            keep = False
        else:
            if not bodyless and length is None:
                if request.version == "1.1":
                    self.chunked = True
                    parts.append(CHUNKED)
                else:
                    keep = False  # an HTTP/1.0 body without length ends with the connection
            if not keep:
                parts.append(CLOSE)
            elif request.version == "1.0":
                parts.append(KEEP_ALIVE)
        if not dated:
            parts.append(conn.server.date.line())
        if conn.hsts:
            parts.append(conn.hsts)
        parts.append(CRLF)
        self.keep_alive = keep
        self.bodyless = bodyless
        self._length = None if bodyless else length
        # The head waits for the first body bytes (one write for both), but no longer
        # than this turn of the loop: a slow first byte must not hold the head back.
        self._head = b"".join(parts)
        conn.loop.call_soon(self._flush_head)

    def _flush_head(self) -> None:
        if self._head and not self.conn.lost:
            self.conn.transport.write(self._head)
        self._head = b""

    def _frame(self, data: bytes) -> list[bytes]:
        parts = [self._head] if self._head else []
        self._head = b""
        if data and not self.bodyless:
            self.sent += len(data)
            if self.chunked:
                parts += (b"%x\r\n" % len(data), data, CRLF)
            else:
                parts.append(data)
        return parts

    async def write(self, data: bytes) -> None:
        if self.overruled:
            raise ClientGone
        if not self.started or self.finished:
            raise RuntimeError("write() before start() or after end()")
        conn = self.conn
        if conn.lost:
            raise ClientGone
        if self._length is not None and self.sent + len(data) > self._length:
            self.abort()
            raise RuntimeError("the body is longer than its Content-Length")
        parts = self._frame(data)
        if parts:
            conn.transport.writelines(parts)
        if conn.write_paused:
            await conn.drain()

    def end(self, data: bytes = b"") -> None:
        if self.finished:
            return
        if not self.started:
            self.fail(500, "Internal Server Error")
            return
        conn = self.conn
        parts = self._frame(data)
        if self._length is not None and self.sent != self._length:
            # Short of its Content-Length: closing is the only way to say "truncated".
            if parts and not conn.lost:
                conn.transport.writelines(parts)
            self.abort()
            return
        if self.chunked:
            parts.append(LAST_CHUNK)
        if parts and not conn.lost:
            conn.transport.writelines(parts)
        self.finished = True
        conn.exchange_done(self)

    def abort(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.keep_alive = False
        conn = self.conn
        if self._head and not conn.lost:
            conn.transport.write(self._head)
        self._head = b""
        conn.exchange_done(self, aborted=True)

    def fail(self, status: int, text: str) -> None:
        """Answer with a short text and close, before start; abort after it."""
        if self.started:
            self.abort()
            return
        self.started = self.finished = True
        self.status = status
        self.keep_alive = False
        conn = self.conn
        if not conn.lost:
            conn.transport.write(plain_answer(status, text, conn.server.date.line(), conn.hsts))
        self.sent = 0
        conn.exchange_done(self)

    def answer(self, answer: Answer) -> None:
        """The fast path: one writelines of the handler's bytes and ours."""
        conn = self.conn
        request = self.request
        self.started = self.finished = True
        self.status = answer.status
        self.cache_status = answer.cache_status
        self.outcome = answer.outcome
        self.route = answer.route
        self.user = answer.user
        keep = self.keep_alive and self.complete and not conn.server.stopping
        self.keep_alive = keep
        if keep and answer.has_date and not conn.hsts and request.version == "1.1":
            head: tuple[bytes, ...] = (*answer.head, CRLF)
        else:
            tail = []
            if not keep:
                tail.append(CLOSE)
            elif request.version == "1.0":
                tail.append(KEEP_ALIVE)
            if not answer.has_date:
                tail.append(conn.server.date.line())
            if conn.hsts:
                tail.append(conn.hsts)
            head = (*answer.head, *tail, CRLF)
        if request.method == "HEAD":
            conn.transport.writelines(head)
        else:
            conn.transport.writelines((*head, *answer.body))
            self.sent = sum(map(len, answer.body))
        conn.exchange_done(self)

    async def tunnel(self) -> Tunnel:
        if self.status != 101 or self.request.upgrade is None or self.tunnelled:
            raise RuntimeError("tunnel() needs start(101, ...) on an upgrade request")
        self.tunnelled = True
        self._flush_head()
        return self.conn.open_tunnel()


def _checked(fields: list[bytes]) -> bytes:
    """The field lines as one block, refused if a name or value holds a CR or LF: from
    an upstream's field, that would split our answer (response splitting). Each line
    brings exactly one CR and one LF, so two counts over the block check them all."""
    block = b"".join(fields)
    lines = len(fields) // 4
    if block.count(b"\n") != lines or block.count(b"\r") != lines:
        raise ValueError("a header field name or value holds a CR or LF")
    return block


class RawTunnel:
    """The client's connection after a 101 (see ``types.Tunnel``)."""

    __slots__ = ("_buffered", "_chunks", "_eof", "_waiter", "conn")

    def __init__(self, conn: Link) -> None:
        self.conn = conn
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._eof = False
        self._waiter: asyncio.Future[None] | None = None

    def feed(self, data: bytes) -> None:
        if not data:
            return
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER:
            self.conn.pause_for_body()
        self._wake()

    def feed_eof(self) -> None:
        self._eof = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def read(self) -> bytes:
        while not self._chunks:
            if self._eof or self.conn.lost:
                return b""
            self._waiter = self.conn.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self._buffered < LOW_WATER:
            self.conn.resume_for_tunnel()
        return chunk

    async def write(self, data: bytes) -> None:
        conn = self.conn
        if conn.lost:
            raise ClientGone
        conn.transport.write(data)
        if conn.write_paused:
            await conn.drain()

    def close(self) -> None:
        if not self.conn.lost:
            self.conn.transport.close()
