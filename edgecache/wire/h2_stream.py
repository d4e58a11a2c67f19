"""One HTTP/2 stream's request and answer: the Reply a handler answers through (see
``types.Reply``) and the request body it reads.

Both directions are flow-controlled per stream. Body bytes from the client are
acknowledged (WINDOW_UPDATE) only once the handler has taken them, so a stream holds
at most its receive window unread. Answer bytes wait in the stream's own queue until
the client's window for this stream has room: ``write`` returns while the queue is
short (``STREAM_BUFFER``) and waits past it, so a client that reads one stream slowly
holds back that stream's handler only, and the body is never buffered whole.

The head waits for the first body bytes (one HEADERS frame that can also end the
stream), but no longer than this turn of the loop, as on HTTP/1.1.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from edgecache.wire.config import WireConfig
from edgecache.wire.h2_fields import AnswerFields, Fields, plain_answer, response_fields
from edgecache.wire.h2_limits import STREAM_BUFFER
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


class Sender(Protocol):
    """What a stream asks of its connection's outbox (``h2_outbox.Outbox``), named
    here so that the modules do not import each other."""

    @property
    def write_paused(self) -> bool: ...

    def send_headers(self, stream: Stream, fields: Fields, end: bool) -> None: ...

    def pump(self, stream: Stream) -> None: ...

    def acknowledge(self, stream: Stream, flow: int) -> None: ...

    def reset(self, stream: Stream) -> None: ...


class Carrier(Protocol):
    """What a stream asks of its connection (``h2.Http2Connection``)."""

    body_deadline: float
    write_deadline: float

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    @property
    def config(self) -> WireConfig: ...

    @property
    def out(self) -> Sender: ...

    @property
    def answer_fields(self) -> AnswerFields: ...

    def add_own_fields(self, fields: Fields, dated: bool) -> None: ...

    def retire(self, stream: Stream) -> None: ...


class Stream:
    __slots__ = (
        "_body_begun",
        "_gone_callbacks",
        "_head",
        "_length",
        "body_due",
        "bodyless",
        "cache_status",
        "chunks",
        "closed",
        "complete",
        "conn",
        "declared",
        "ending",
        "error",
        "expect_continue",
        "finished",
        "gone",
        "id",
        "outcome",
        "pending",
        "pending_bytes",
        "received",
        "request",
        "retired",
        "route",
        "sent",
        "started",
        "started_at",
        "status",
        "task",
        "unacked",
        "upstream_error",
        "upstream_time",
        "user",
        "waiter",
        "write_due",
        "writer",
    )

    def __init__(
        self, conn: Carrier, stream_id: int, request: Request, declared: int | None
    ) -> None:
        self.conn = conn
        self.id = stream_id
        self.request = request
        self.declared = declared
        self.expect_continue = request.header(b"expect") == b"100-continue"
        # The request body.
        self.chunks: deque[tuple[bytes, int]] = deque()
        """Body chunks and their flow-controlled sizes (padding included)."""
        self.unacked = 0
        self.received = 0
        self.complete = not request.has_body
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.body_due = math.inf
        self._body_begun = False
        # The answer.
        self.started = False
        self.finished = False
        """The handler is done answering (ended, aborted or failed)."""
        self.closed = False
        """The stream is over on the wire: our END_STREAM sent, or reset either way."""
        self.retired = False
        self.status = 0
        self.sent = 0
        self._length: int | None = None
        self.bodyless = False
        self._head: Fields | None = None
        self.pending: deque[bytes] = deque()
        self.pending_bytes = 0
        self.ending = False
        self.writer: asyncio.Future[None] | None = None
        self.write_due = math.inf
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

    # -- the request body, fed by the connection ----------------------------------

    def feed(self, data: bytes, flow: int) -> None:
        if self.error is not None or self.finished:
            self.conn.out.acknowledge(self, flow)  # nobody will read it: free the window
            return
        self.received += len(data)
        self.chunks.append((data, flow))
        self.unacked += flow
        if self.received > self.conn.config.max_body_size:
            # As on HTTP/1.1, the chunk that crosses the limit is still handed over.
            self.error = BodyTooLarge()
        self._wake()

    def feed_end(self) -> None:
        self.complete = True
        self._wake()

    def _wake(self, error: BaseException | None = None) -> None:
        wake(self.waiter, error)

    def body_timed_out(self) -> None:
        self.error = BodyTimeout()
        self._wake(self.error)

    def client_left(self) -> None:
        """The client reset the stream or the connection is gone."""
        if self.gone:
            return
        self.gone = self.closed = True
        self.pending.clear()
        self.pending_bytes = 0
        self._wake(ClientGone())
        self.wake_writer(ClientGone())
        callbacks, self._gone_callbacks = self._gone_callbacks, []
        for callback in callbacks:
            callback()

    def body(self) -> Stream:
        return self

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> bytes:
        if not self._body_begun:
            self._body_begun = True
            if self.declared is not None and self.declared > self.conn.config.max_body_size:
                raise BodyTooLarge
            if self.expect_continue and not self.complete and not self.started:
                self.informational(100, [])
        while True:
            if self.chunks:
                data, flow = self.chunks.popleft()
                self.unacked -= flow
                self.conn.out.acknowledge(self, flow)
                if data:
                    return data
                continue
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
        self.body_due = conn.loop.time() + conn.config.body_timeout
        conn.body_deadline = min(conn.body_deadline, self.body_due)
        try:
            await self.waiter
        finally:
            self.waiter = None
            self.body_due = math.inf

    # -- the answer ------------------------------------------------------------------

    def on_gone(self, callback: Callable[[], None]) -> None:
        if self.gone:
            callback()
        else:
            self._gone_callbacks.append(callback)

    def informational(self, status: int, headers: Headers) -> None:
        if self.started or not 100 <= status < 200 or status == 101:
            raise RuntimeError(f"informational({status}) after start or not a 1xx")
        if self.closed:
            return
        if status == 100:
            self.expect_continue = False
        self.conn.out.send_headers(self, response_fields(status, headers)[0], False)

    def start(self, status: int, headers: Headers, reason: bytes = b"") -> None:
        # ``reason``: HTTP/2 has no reason phrase (RFC 9113 §8.3.2).
        if self.started:
            raise RuntimeError("start() called twice")
        if status < 200:
            raise RuntimeError(f"start({status}): a final status is >= 200 on HTTP/2")
        fields, length, cache_status, dated = response_fields(status, headers)
        self.started = True
        self.status = status
        if cache_status and not self.cache_status:
            self.cache_status = cache_status  # for the access log
        self.conn.add_own_fields(fields, dated)
        self.bodyless = self.request.method == "HEAD" or status in (204, 304)
        self._length = None if self.bodyless else length
        self._head = fields
        self.conn.loop.call_soon(self._flush_head)

    def _flush_head(self) -> None:
        if self._head is not None and not self.closed:
            self.conn.out.send_headers(self, self._head, False)
        self._head = None

    def _queue(self, data: bytes) -> None:
        if self._head is not None:
            self._flush_head()
        if data and not self.bodyless:
            self.sent += len(data)
            self.pending.append(data)
            self.pending_bytes += len(data)

    async def write(self, data: bytes) -> None:
        if not self.started or self.finished:
            raise RuntimeError("write() before start() or after end()")
        if self.closed:
            raise ClientGone
        if self._length is not None and self.sent + len(data) > self._length:
            self.abort()
            raise RuntimeError("the body is longer than its Content-Length")
        self._queue(data)
        conn = self.conn
        conn.out.pump(self)
        while self.pending_bytes > STREAM_BUFFER or (conn.out.write_paused and self.pending):
            await self._wait_writable()

    async def _wait_writable(self) -> None:
        conn = self.conn
        self.writer = conn.loop.create_future()
        if self.write_due == math.inf:
            self.write_due = conn.loop.time() + conn.config.write_timeout
            conn.write_deadline = min(conn.write_deadline, self.write_due)
        try:
            await self.writer
        finally:
            self.writer = None
        if self.closed:
            raise ClientGone

    def wake_writer(self, error: BaseException | None = None) -> None:
        """Room again (or gone): ``write`` goes on (or raises)."""
        writer = self.writer
        self.write_due = math.inf
        if writer is not None and not writer.done():
            if error is None:
                writer.set_result(None)
            else:
                writer.set_exception(error)

    def end(self, data: bytes = b"") -> None:
        if self.finished:
            return
        if not self.started:
            self.fail(500, "Internal Server Error")
            return
        if self._length is not None and self.sent + len(data) != self._length:
            # Short of (or past) its Content-Length: a reset says "truncated".
            self.abort()
            return
        self.finished = True
        if self.closed:
            self.conn.retire(self)
            return
        if self._head is not None and not (data and not self.bodyless):
            # Nothing follows the head: one HEADERS frame that ends the stream.
            head, self._head = self._head, None
            self.conn.out.send_headers(self, head, True)
            self.closed = True
            self.conn.retire(self)
            return
        self._queue(data)
        self.ending = True
        self.conn.out.pump(self)

    def abort(self) -> None:
        if self.finished and self.closed:
            return
        self.finished = True
        self._head = None
        self.pending.clear()
        self.pending_bytes = 0
        if not self.closed:
            self.closed = True
            self.conn.out.reset(self)
        self.conn.retire(self)

    def fail(self, status: int, text: str) -> None:
        """Answer with a short text, before start; abort after it."""
        if self.started:
            self.abort()
            return
        headers, body = plain_answer(status, text)
        self.start(status, headers)
        self.end(body)

    def answer(self, answer: Answer) -> None:
        """The fast path: the Answer's stored head as fields, and its body as it is."""
        conn = self.conn
        self.started = self.finished = True
        self.status = answer.status
        self.cache_status = answer.cache_status
        self.outcome = answer.outcome
        self.route = answer.route
        self.user = answer.user
        fields = conn.answer_fields.fields(answer)
        conn.add_own_fields(fields, answer.has_date)
        if self.request.method == "HEAD" or answer.status in (204, 304):
            body: tuple[bytes, ...] | list[bytes] = ()
        else:
            body = [part for part in answer.body if part]
        if not body:
            conn.out.send_headers(self, fields, True)
            self.closed = True
            conn.retire(self)
            return
        conn.out.send_headers(self, fields, False)
        self.pending.extend(body)
        self.pending_bytes = self.sent = sum(map(len, body))
        self.ending = True
        conn.out.pump(self)

    async def tunnel(self) -> Tunnel:
        raise RuntimeError("no upgrades on HTTP/2 (RFC 9113 §8.6)")

    def __repr__(self) -> str:
        return f"<Stream {self.id} {self.request!r}>"
