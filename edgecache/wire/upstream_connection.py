"""One keep-alive connection to an upstream: an asyncio protocol that writes requests
and parses their answers with httptools, one exchange at a time (no pipelining).

The protocol side (``data_received`` and httptools' callbacks) only records what
arrived and wakes whoever waits; the caller's task does everything that awaits. A body
is queued as httptools hands it over, and reading the socket pauses while the consumer
holds more than ``HIGH_WATER`` bytes, so memory does not grow with the body.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import httptools

from edgecache.wire.upstream_errors import (
    BodyTimeout,
    IncompleteBody,
    ProtocolError,
    ReadTimeout,
    UpstreamClosed,
    UpstreamError,
)

Header = tuple[bytes, bytes]

HIGH_WATER = 512 * 1024
"""Queued body bytes at which reading the upstream pauses; it resumes when the consumer
takes them."""


@dataclass(frozen=True, slots=True)
class Informational:
    """A 1xx answer (100 Continue, 103 Early Hints, ...) that came before the final one."""

    status: int
    reason: bytes
    headers: list[Header]


class NoAnswer(UpstreamError):
    """The connection closed before a single answer byte: on a reused connection this
    is the keep-alive race (the upstream closed it as the request went out), and the
    request may be sent again on a fresh one."""


class _AfterEnd(Exception):
    """Raised from a parser callback when a message starts after the final answer."""


def _close_delimited(headers: list[Header]) -> bool:
    """RFC 9112 §6.3: without Transfer-Encoding ending in chunked and without
    Content-Length, a response body runs until the connection closes."""
    length = False
    for name, value in headers:
        low = name.lower()
        if low == b"transfer-encoding":
            return value.rsplit(b",", 1)[-1].strip().lower() != b"chunked"
        if low == b"content-length":
            length = True
    return not length


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class Exchange:
    """One request's answer. Its ``on_*`` methods are httptools' callbacks."""

    def __init__(self, conn: Connection, head_only: bool, close_after: bool) -> None:
        self.conn = conn
        self.parser = httptools.HttpResponseParser(self)
        self.head_only = head_only
        self.close_after = close_after
        self.received = 0
        self.informational: deque[Informational] = deque()
        self.status = 0
        self.reason = b""
        self.headers: list[Header] = []
        self.http_version = "1.1"
        self.final = False  # the final answer's head is complete
        self.done = False  # the whole answer is in
        self.keep_alive = False
        self.request_sent = False
        self.until_close = False
        self.trailing = False  # bytes came after the end of the answer
        self.error: UpstreamError | None = None
        self.body: deque[bytes] = deque()
        self.buffered = 0
        self.peak_buffered = 0
        self.reading_paused = False
        self.waiter: asyncio.Future[bool] | None = None

    # -- fed by the connection -------------------------------------------------------

    def feed(self, data: bytes) -> None:
        self.received += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.fail(ProtocolError("the upstream switched protocols unasked"))
        except httptools.HttpParserError as exc:
            if self.done:
                # Bytes past the end (past Content-Length, after Connection: close):
                # the answer stands, the connection cannot be trusted again.
                self.trailing = True
            else:
                self.fail(ProtocolError(f"malformed answer: {exc}"))
        if self.done:
            self.conn.finish(self)

    def lost(self, exc: Exception | None) -> None:
        if self.done or self.error is not None:
            return
        if self.final and self.until_close and exc is None:
            self.done = True  # a close-delimited body ends here, whole
            self.keep_alive = False
            self._wake()
        elif self.received == 0:
            self.fail(NoAnswer("the upstream closed the connection without answering"))
        elif not self.final:
            self.fail(UpstreamClosed("the upstream closed the connection mid-head"))
        else:
            self.fail(IncompleteBody(f"the upstream closed the connection mid-body ({exc})"))

    def fail(self, error: UpstreamError) -> None:
        if self.error is not None or self.done:
            return
        if self.final and not isinstance(error, IncompleteBody):
            # After the head every failure truncates the body: one error to catch.
            wrapped = IncompleteBody(str(error))
            wrapped.__cause__ = error
            error = wrapped
        self.error = error
        self._wake()
        self.conn.wake_drain()
        self.conn.abort()

    # -- httptools callbacks -----------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.done:
            raise _AfterEnd
        self.reason = b""
        self.headers = []

    def on_status(self, status: bytes) -> None:
        self.reason += status  # may come in pieces when the status line is split

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status == 101:  # we never ask for an upgrade on a pooled connection
            self.fail(ProtocolError("the upstream switched protocols unasked"))
            return
        if status < 200:
            # RFC 9110 §15.2: a 1xx is its own message; the final answer follows.
            self.informational.append(Informational(status, self.reason, self.headers))
            self._wake()
            return
        self.status = status
        self.http_version = self.parser.get_http_version()
        self.keep_alive = self.parser.should_keep_alive() and not self.close_after
        self.final = True
        if self.head_only:
            # httptools cannot be told the request was HEAD: it would wait for a body
            # of Content-Length bytes. The answer is whole now; anything that still
            # arrives for it marks the connection as unusable.
            self.done = True
        elif status not in (204, 304) and not self.keep_alive:
            # A body that runs to the close is never keep-alive: only then look.
            self.until_close = _close_delimited(self.headers)
        self._wake()
        self.conn.wake_drain()  # stop sending a body the upstream has answered

    def on_body(self, body: bytes) -> None:
        if self.done:
            self.trailing = True
            return
        self.body.append(body)
        self.buffered += len(body)
        if self.buffered > self.peak_buffered:
            self.peak_buffered = self.buffered
        if self.buffered > HIGH_WATER and not self.reading_paused:
            self.reading_paused = True
            self.conn.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.done or not self.final:
            return  # a HEAD answer's phantom body, or the end of a 1xx
        self.done = True
        self.keep_alive = self.keep_alive and self.parser.should_keep_alive()
        self._wake()

    # -- awaited by the caller's task --------------------------------------------------

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    async def _wait(self, timeout: float) -> bool:
        """Until something arrives (True) or ``timeout`` seconds pass (False)."""
        loop = self.conn.loop
        waiter: asyncio.Future[bool] = loop.create_future()
        self.waiter = waiter
        timer = loop.call_later(timeout, _expire, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()
            self.waiter = None

    async def next_informational_or_head(self, timeout: float) -> Informational | None:
        """The next 1xx, or None once the final head is in. Raises what went wrong."""
        while True:
            if self.informational:
                return self.informational.popleft()
            if self.final:
                return None
            if self.error is not None:
                raise self.error
            if not await self._wait(timeout):
                raise ReadTimeout(f"no answer head within {timeout} s")

    async def next_chunk(self, timeout: float) -> bytes | None:
        """The body received so far, or None at the end. Raises ``IncompleteBody`` (or
        ``BodyTimeout``) once the queued bytes are spent if the answer broke off."""
        while True:
            if self.body:
                # All that is queued, as one chunk: a lagging consumer catches up with
                # one send instead of one per socket read.
                body = self.body
                chunk = body.popleft() if len(body) == 1 else b"".join(body)
                body.clear()
                self.buffered = 0
                if self.reading_paused:
                    self.reading_paused = False
                    self.conn.resume_reading()
                return chunk
            if self.done:
                return None
            if self.error is not None:
                raise self.error
            if not await self._wait(timeout):
                self.fail(BodyTimeout(f"no body bytes for {timeout} s"))


class Connection(asyncio.Protocol):
    """The socket side. ``on_release`` takes it back when an answer ended cleanly and
    the connection may serve another; ``on_lost`` hears that it closed."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_release: Callable[[Connection], None],
        on_lost: Callable[[Connection], None],
    ) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.exchange: Exchange | None = None
        self.reused = False  # has carried a whole exchange before
        self.closed = False
        self.idle_timer: asyncio.TimerHandle | None = None
        self._on_release = on_release
        self._on_lost = on_lost
        self._write_paused = False
        self._drain: asyncio.Future[bool] | None = None

    def begin(self, head_only: bool, close_after: bool) -> Exchange:
        self.exchange = Exchange(self, head_only, close_after)
        return self.exchange

    def finish(self, exchange: Exchange) -> None:
        """The answer is whole: back to the pool, or closed if it cannot be reused."""
        self.exchange = None
        if exchange.reading_paused:  # the queued rest belongs to the exchange now
            exchange.reading_paused = False
            self.resume_reading()
        if not exchange.request_sent or exchange.trailing:
            self.abort()  # out of step with the upstream: drop it, unsent bytes and all
        elif exchange.keep_alive and not self.closed:
            self.reused = True
            self._on_release(self)
        else:
            self.close()  # a clean answer that said close

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:
            self.abort()  # an idle connection must stay silent
            return
        exchange.feed(data)

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.exchange is not None:
            self.exchange.lost(exc)
        self.wake_drain()
        self._on_lost(self)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self.wake_drain()

    # -- used by the exchange and the pool -----------------------------------------------

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    @property
    def closing(self) -> bool:
        """Closed or on its way: writing now would fail (uvloop raises on a closing
        transport), so the request counts as not sent."""
        return self.closed or self.transport is None or self.transport.is_closing()

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def wake_drain(self) -> None:
        waiter = self._drain
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    async def drain(self, timeout: float) -> bool:
        """Until the transport takes more bytes (True), or ``timeout`` (False). Returns
        early when the connection closes or the final answer head arrives."""
        if not self._write_paused or self.closed:
            return True
        waiter: asyncio.Future[bool] = self.loop.create_future()
        self._drain = waiter
        timer = self.loop.call_later(timeout, _expire, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._drain = None

    def abort(self) -> None:
        """Close now, dropping unsent bytes: for connections that cannot be reused."""
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.abort()

    def close(self) -> None:
        """Close after the unsent bytes: for idle connections."""
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()
