"""The HTTP/1.1 server connection: an asyncio Protocol driving httptools' parser.

Hand-written as in uvicorn's ``httptools_impl.py``: httptools (llhttp) calls us back
per request line piece, header, body chunk and message end; we keep the state. What
this adds over uvicorn is the edge's protocol hygiene:

- limits on the head (bytes, field count, target length), enforced while it arrives,
  so a 16 MiB header is refused after at most one read past the limit, not buffered;
- deadlines: a whole head within ``header_timeout`` (408), idle keep-alive, body bytes
  while the handler waits for them, and the client taking our writes. They are checked
  by one sweep per server (``WireServer``), not by a timer per request;
- the RFC 9112 request rules (``rules.build_request``): nothing malformed reaches a
  handler, and a refusal ends the connection;
- pipelining: heads are parsed ahead and queued, and answered in order; a fast-path
  answer (``Handler.answer_now``) is written from inside the parser callback;
- back-pressure both ways, lingering close (our FIN first, so the client reads the
  answer instead of a reset), and a raw tunnel after a 101.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from typing import Protocol

import httptools

from edgecache.wire.accesslog import Finished
from edgecache.wire.config import WireConfig
from edgecache.wire.exchange import LOW_WATER, Exchange, RawTunnel
from edgecache.wire.framing import ALLOW, DateField, plain_answer
from edgecache.wire.handling import begin, run_handler, unfinished
from edgecache.wire.rules import Refusal, build_request
from edgecache.wire.types import ClientGone, Handler


class Client(Protocol):
    """What the server's sweep and shutdown ask of a client connection: this HTTP/1.1
    one, or an HTTP/2 one (``wire.h2``)."""

    deadline: float
    body_deadline: float
    write_deadline: float

    @property
    def transport(self) -> asyncio.Transport: ...

    @property
    def handler(self) -> Handler: ...

    def check_deadlines(self, now: float) -> None: ...

    def shutdown(self) -> None: ...

    def wind_down(self) -> None:
        """A reload put a new handler in place: go on serving, but end the connection
        at the next safe point, so new requests meet the new configuration."""
        ...


class Server(Protocol):
    """What a connection asks of its server (``wire.server.WireServer``), named here so
    the two modules do not import each other."""

    @property
    def config(self) -> WireConfig: ...

    @property
    def handler(self) -> Handler: ...

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    @property
    def hsts_line(self) -> bytes: ...

    @property
    def stopping(self) -> bool: ...

    @property
    def date(self) -> DateField: ...

    @property
    def connections(self) -> set[Client]: ...

    @property
    def tasks(self) -> set[asyncio.Task[None]]: ...

    def connection_closed(self, conn: Client) -> None: ...

    def finished(self, exchange: Finished) -> None: ...

    def refused(self, client: tuple[str, int] | None, status: int) -> None: ...


log = logging.getLogger("edgecache.wire")

PIPELINE_DEPTH = 16
"""Heads queued behind the one being answered before reading pauses."""
LINGER = 2.0
"""After our FIN, how long the client's remaining bytes are read and dropped."""

_PIPELINE, _BODY, _STOPPED = 1, 2, 4
# Why reading is paused: a bit each, so one reason ending does not undo another.

_HEAD, _IDLE, _LINGER, _NONE = 1, 2, 3, 0


class Connection(asyncio.Protocol):
    def __init__(self, server: Server, scheme: str) -> None:
        self.server = server
        self.config = server.config
        self.handler = server.handler
        self.loop = server.loop
        self.scheme = scheme
        self.hsts = server.hsts_line if scheme == "https" else b""
        self.parser = httptools.HttpRequestParser(self)
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.client: tuple[str, int] | None = None
        self.current: Exchange | None = None
        self.queue: deque[Exchange | Refusal] = deque()
        self.parsing: Exchange | None = None
        self.tunnel: RawTunnel | None = None
        self.upgrading = False
        self.leftover = b""
        self.lost = False
        self.retiring = False
        """After a reload: the next answer ends the connection (``wind_down``)."""
        self.closing = False
        self._eof = False
        self._advancing = False
        self._paused = 0
        self.write_paused = False
        self._drains: list[asyncio.Future[None]] = []
        # Deadlines, as loop times, checked by the server's sweep.
        self.deadline = math.inf
        self.deadline_kind = _NONE
        self.body_deadline = math.inf
        self.body_waiting: Exchange | None = None
        self.write_deadline = math.inf
        # The head being parsed.
        self.in_head = False
        self._began = False
        self._head_fed = 0
        self._head_size = 0
        self._fields = 0
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._hosts = 0
        self._host = b""
        self._length: int | None = None
        self._chunked = False
        self._expect = False
        self._upgrade: bytes | None = None

    # -- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's: not a subclass
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.client = (str(peer[0]), int(peer[1]))
        self.server.connections.add(self)
        self._set_deadline(_HEAD, self.config.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = self.closing = True
        self.server.connection_closed(self)
        for waiter in self._drains:
            if not waiter.done():
                waiter.set_exception(ClientGone())
        self._drains.clear()
        current = self.current
        if current is not None and (not current.finished or current.tunnelled):
            current.client_left()
        if self.tunnel is not None:
            self.tunnel.feed_eof()
        self.queue.clear()
        # The parser refers to us: without this cycle the connection (and a half-read
        # head in the parser's buffers) is freed now, not at a later gc pass.
        self.parser = None  # type: ignore[assignment]  # never used once lost
        self.parsing = None
        self._headers = []
        self._url = b""

    def eof_received(self) -> bool | None:
        if self.tunnel is not None:
            self.tunnel.feed_eof()
            return self.scheme == "http"  # keep our half open to finish writing
        busy = self.current is not None or bool(self.queue)
        self.closing = True  # the client will send no more requests
        self._eof = True
        if self.parsing is not None and not self.parsing.complete:
            self.parsing.client_left()
        if not busy or self.scheme == "https":
            return None  # closes the transport
        for item in (self.current, *self.queue):
            if isinstance(item, Exchange):
                item.keep_alive = False
        return True

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self.write_deadline = math.inf
        for waiter in self._drains:
            if not waiter.done():
                waiter.set_result(None)
        self._drains.clear()

    async def drain(self) -> None:
        if not self.write_paused:
            return
        if self.lost:
            raise ClientGone
        waiter = self.loop.create_future()
        self._drains.append(waiter)
        if self.write_deadline == math.inf:
            self.write_deadline = self.loop.time() + self.config.write_timeout
        await waiter

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.feed(data)
            return
        if self.upgrading:
            self.leftover += data
            if len(self.leftover) > LOW_WATER:
                self._pause(_BODY)
            return
        if self.closing:
            return  # lingering close: read and dropped
        self._began = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, Refusal):
                self.refuse(cause.status, cause.text)
            else:
                log.error("wire: error in a parser callback", exc_info=cause)
                self.refuse(500, "Internal Server Error")
            return
        except httptools.HttpParserUpgrade as exc:
            self.upgrading = True
            self.leftover = data[int(exc.args[0]) :]
            return
        except httptools.HttpParserError:
            broken = self.parsing
            if broken is not None and not broken.complete:
                self.parsing = None
                if broken is self.current:
                    self.stop_reading()
                    broken.body_broken()  # answers 400 in the handler's place if it can
                    return
                self.queue.remove(broken)  # never started: the refusal takes its place
            self.refuse(400, "Bad Request")
            return
        if self.in_head:
            # Bytes of a head still incomplete. httptools keeps a field's pieces until
            # the field ends, so the callbacks cannot see a 16 MiB one growing: count
            # the reads instead. A read in which the head began is not counted (part
            # of it may be the previous request), so this never refuses a legal head
            # and lets at most one read (256 KiB) past the limit.
            self._head_fed = 0 if self._began else self._head_fed + len(data)
            if self._head_fed > self.config.max_header_bytes:
                self.refuse(431, "Request Header Fields Too Large")

    # -- parser callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_head = self._began = True
        self._head_size = self._fields = self._hosts = 0
        self._url = self._host = b""
        self._headers = []
        self._length = self._upgrade = None
        self._chunked = self._expect = False
        if self.deadline_kind == _IDLE:  # the head's own deadline starts now
            self._set_deadline(_HEAD, self.config.header_timeout)

    def on_url(self, piece: bytes) -> None:
        self._url += piece
        if len(self._url) > self.config.max_uri_bytes:
            raise Refusal(414, "URI Too Long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields += 1
        self._head_size += len(name) + len(value) + 4
        if (
            self._fields > self.config.max_header_fields
            or self._head_size > self.config.max_header_bytes
        ):
            raise Refusal(431, "Request Header Fields Too Large")
        name = name.lower()
        self._headers.append((name, value))
        if name == b"host":
            self._hosts += 1
            self._host = value
        elif name == b"content-length":
            self._length = int(value)  # llhttp has checked it is digits, and only one
        elif name == b"transfer-encoding":
            self._chunked = True  # llhttp refuses any coding but a final chunked
        elif name == b"expect":
            self._expect = value.lower() == b"100-continue"
        elif name == b"upgrade":
            self._upgrade = value.lower()

    def on_headers_complete(self) -> None:
        self.in_head = False
        self._head_fed = 0
        if self.deadline_kind == _HEAD:
            self._set_deadline(_NONE, 0)
        if self._head_size + len(self._url) > self.config.max_header_bytes:
            raise Refusal(431, "Request Header Fields Too Large")
        parser = self.parser
        request = build_request(
            parser.get_method(),
            self._url,
            parser.get_http_version(),
            self._headers,
            self._hosts,
            self._host,
            bool(self._length) or self._chunked,
            parser.should_keep_alive(),
            self._upgrade if parser.should_upgrade() else None,
            self.scheme,
            self.client,
        )
        exchange = Exchange(self, request, self._expect, self._length)
        self.parsing = exchange
        if self.current is None and not self.queue:
            self._begin(exchange)
        else:
            self.queue.append(exchange)
            if len(self.queue) >= PIPELINE_DEPTH:
                self._pause(_PIPELINE)

    def on_body(self, body: bytes) -> None:
        if self.parsing is not None:
            self.parsing.feed(body)

    def on_message_complete(self) -> None:
        if self.parsing is not None:
            self.parsing.feed_end()
            self.parsing = None

    # -- answering, in order ------------------------------------------------------

    def _begin(self, item: Exchange | Refusal) -> None:
        if isinstance(item, Refusal):
            self._write_refusal(item.status, item.text)
            return
        self.current = item
        request = item.request
        if request.method == "OPTIONS" and request.path == "*":
            # Asked of the server, not of a resource (RFC 9110 §9.3.7): ours to answer.
            item.start(200, [(b"allow", ALLOW), (b"content-length", b"0")])
            item.end()
            return
        begin(self.handler, item, self.loop, self.server.tasks, self._run)

    async def _run(self, exchange: Exchange) -> None:
        if not await run_handler(self.handler, exchange):
            return
        if exchange.tunnelled:
            exchange.finished = True
            exchange.keep_alive = False
            self.exchange_done(exchange)
        else:
            unfinished(exchange)

    def exchange_done(self, exchange: Exchange, aborted: bool = False) -> None:
        if self.current is exchange:
            self.current = None
        self.server.finished(exchange)
        if aborted or not exchange.keep_alive or self.lost:
            self.close(abort=aborted)
            return
        self._advance()

    def _advance(self) -> None:
        if self._advancing:
            return  # a fast-path answer inside the loop below: the loop goes on
        self._advancing = True
        try:
            while self.current is None and self.queue and not self.lost:
                self._begin(self.queue.popleft())
        finally:
            self._advancing = False
        if self.current is not None or self.lost or self.transport.is_closing():
            return
        if self.server.stopping:
            self.close()
            return
        self._resume(_PIPELINE)
        if self.in_head:
            self._set_deadline(_HEAD, self.config.header_timeout)
        elif self.parsing is None:
            self._set_deadline(_IDLE, self.config.keepalive_timeout)

    def refuse(self, status: int, text: str) -> None:
        """Answer a broken request (after those before it) and close."""
        self.closing = True
        self.in_head = False
        self._pause(_STOPPED)
        if self.current is None and not self.queue:
            self._write_refusal(status, text)
        else:
            self.queue.append(Refusal(status, text))

    def _write_refusal(self, status: int, text: str) -> None:
        self.transport.write(plain_answer(status, text, self.server.date.line(), self.hsts))
        self.server.refused(self.client, status)
        self.close()

    def close(self, abort: bool = False) -> None:
        """End the connection: our FIN now, the client's bytes dropped until its FIN
        (at most LINGER seconds), so it reads our last answer rather than a reset."""
        self.closing = True
        if self.lost or self.transport.is_closing():
            return
        if abort or self._eof or not self.transport.can_write_eof():
            self.transport.close()  # (after a client's FIN there is nothing to linger for)
            return
        self.transport.write_eof()
        self._resume(_STOPPED | _PIPELINE | _BODY)
        self._set_deadline(_LINGER, LINGER)

    def wind_down(self) -> None:
        # Closed only after an answer that says so (connection: close): closing an
        # idle keep-alive connection now would race a request the client is sending.
        self.retiring = True
        if self.current is not None:
            self.current.keep_alive = False

    def shutdown(self) -> None:
        """Graceful stop: idle connections close now, busy ones after this answer."""
        if self.current is None and not self.queue and not self.in_head:
            self.close()
            return
        # The answer under way finishes (its body may still be arriving), then the
        # connection closes; requests queued behind it were never started: dropped.
        if self.current is not None:
            self.current.keep_alive = False
        self.queue.clear()

    # -- deadlines, checked by the server's sweep ----------------------------------------

    def _set_deadline(self, kind: int, seconds: float) -> None:
        if self.deadline_kind == _LINGER:
            return  # closing: only the linger deadline is left
        self.deadline_kind = kind
        self.deadline = math.inf if kind == _NONE else self.loop.time() + seconds

    def check_deadlines(self, now: float) -> None:
        if self.lost:
            return
        if now >= self.deadline:
            kind = self.deadline_kind
            self.deadline_kind, self.deadline = _NONE, math.inf
            if kind == _LINGER:
                self.transport.abort()
            elif kind == _HEAD and self.in_head and self.current is None:
                self.closing = True
                self._write_refusal(408, "Request Timeout")
            elif self.current is None:
                self.transport.close()  # nothing was asked: nothing to say
        if now >= self.body_deadline:
            self.body_deadline = math.inf
            if self.body_waiting is not None:
                self.body_waiting.body_timed_out()
        if now >= self.write_deadline:
            self.write_deadline = math.inf
            log.info("wire: client %s took no bytes for write_timeout; closing", self.client)
            self.transport.abort()

    # -- reading back-pressure -----------------------------------------------------

    def _pause(self, reason: int) -> None:
        if not self._paused and not self.lost:
            self.transport.pause_reading()
        self._paused |= reason

    def _resume(self, reason: int) -> None:
        if not self._paused & reason:
            return
        self._paused &= ~reason
        if not self._paused and not self.lost and not self.transport.is_closing():
            self.transport.resume_reading()

    def pause_for_body(self) -> None:
        self._pause(_BODY)

    def resume_for_body(self, exchange: Exchange) -> None:
        if exchange is self.parsing or self.parsing is None:
            self._resume(_BODY)

    def resume_for_tunnel(self) -> None:
        self._resume(_BODY)

    def stop_reading(self) -> None:
        self.closing = True
        self._pause(_STOPPED)

    def open_tunnel(self) -> RawTunnel:
        tunnel = RawTunnel(self)
        self.tunnel = tunnel
        self.upgrading = False
        leftover, self.leftover = self.leftover, b""
        self._resume(_BODY)
        tunnel.feed(leftover)
        return tunnel

    def __repr__(self) -> str:
        return f"<Connection {self.client}>"
