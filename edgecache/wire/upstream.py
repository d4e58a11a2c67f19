"""Our HTTP/1.1 client to upstreams, on the running asyncio loop (uvloop in production),
with httptools parsing the answers.

One ``UpstreamPool`` per upstream origin keeps idle keep-alive connections (at most
``max_idle``, each closed after ``idle_timeout`` seconds unused). A connection goes back
only when its answer ended cleanly, said keep-alive, and the whole request went out.
Requests and answers stream: the request body is an async iterator (sent chunked when
its length is unknown), the answer body an async iterator that pauses reading the
upstream while the consumer lags. 1xx answers reach ``on_informational`` before the
final one is returned, for callers that relay them (RFC 9110 §15.2).

    pool = UpstreamPool("http://127.0.0.1:8000")
    response = await pool.request("GET", "/", [(b"host", b"example.com")])
    try:
        async for chunk in response:
            ...
    finally:
        response.close()

Errors are the ``UpstreamError`` family (``upstream_errors``); timeouts are also
``TimeoutError``. A reused connection that the upstream closed before any answer byte
(the race every keep-alive pool has) is retried once on a fresh connection, whatever the
method: nothing was answered, so nothing was processed. No retry once a byte arrived.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from urllib.parse import urlsplit

from edgecache.wire.upstream_connection import (
    Connection,
    Exchange,
    Header,
    Informational,
    NoAnswer,
)
from edgecache.wire.upstream_errors import (
    BodyTimeout,
    ConnectError,
    ConnectTimeout,
    IncompleteBody,
    ProtocolError,
    ReadTimeout,
    RequestBodyError,
    SendTimeout,
    UpstreamClosed,
    UpstreamError,
    UpstreamTimeout,
)

__all__ = [
    "BodyTimeout",
    "ConnectError",
    "ConnectTimeout",
    "IncompleteBody",
    "Informational",
    "InformationalHook",
    "ProtocolError",
    "ReadTimeout",
    "RequestBodyError",
    "Response",
    "SendTimeout",
    "UpstreamClosed",
    "UpstreamError",
    "UpstreamPool",
    "UpstreamTimeout",
]

log = logging.getLogger("edgecache.upstream")

InformationalHook = Callable[[Informational], Awaitable[None] | None]
"""Called with each 1xx answer, in order, before ``request`` returns the final one."""

REPLAY_LIMIT = 64 * 1024
"""Request body bytes kept so that a request lost to the keep-alive race can be sent
again; a request that sent more before the connection died is not retried."""


class Response:
    """The final answer's head, and its body as an async iterator of chunks.

    Iterating raises ``IncompleteBody`` (``BodyTimeout`` for a stalled body) after the
    bytes that did arrive if the answer broke off: the caller must treat what it relayed
    as truncated. ``close()`` must be called: it closes the connection if the answer is
    not whole (a caller that stops early, or was cancelled), else it was already back in
    the pool.
    """

    __slots__ = ("_exchange", "_timeout", "headers", "http_version", "reason", "reused", "status")

    def __init__(self, exchange: Exchange, read_timeout: float, reused: bool) -> None:
        self._exchange = exchange
        self._timeout = read_timeout
        self.status: int = exchange.status
        self.reason: bytes = exchange.reason
        self.headers: list[Header] = exchange.headers
        """As received: names in their case, repeats in order."""
        self.http_version: str = exchange.http_version
        self.reused: bool = reused
        """Whether it came over a connection that had carried an answer before."""

    @property
    def content_length(self) -> int | None:
        """The declared body length, when the body is delimited by one."""
        length = None
        for name, value in self.headers:
            low = name.lower()
            if low == b"transfer-encoding":
                return None
            if low == b"content-length" and value.isdigit():
                length = int(value)
        return length

    @property
    def buffered(self) -> int:
        """Body bytes received and not yet taken by the consumer."""
        return self._exchange.buffered

    @property
    def peak_buffered(self) -> int:
        """The most body bytes ever held for the consumer at once."""
        return self._exchange.peak_buffered

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await self._exchange.next_chunk(self._timeout)
        except BaseException:
            self.close()  # cancelled or broken: this connection is done
            raise
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    async def read(self) -> bytes:
        """The whole body (for small answers: it is held in memory)."""
        return b"".join([chunk async for chunk in self])

    def close(self) -> None:
        if not self._exchange.done:
            self._exchange.conn.abort()

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


class _Source:
    """A streamed request body, keeping its first bytes in case they must be resent."""

    def __init__(self, body: AsyncIterable[bytes]) -> None:
        self._iterator = body.__aiter__()
        self._kept: list[bytes] | None = []
        self._kept_size = 0
        self._position = 0

    @property
    def replayable(self) -> bool:
        return self._kept is not None

    def rewind(self) -> None:
        self._position = 0

    async def next(self) -> bytes | None:
        kept = self._kept
        if kept is not None and self._position < len(kept):
            self._position += 1
            return kept[self._position - 1]
        try:
            chunk = await self._iterator.__anext__()
        except StopAsyncIteration:
            return None
        if kept is not None:
            self._kept_size += len(chunk)
            if self._kept_size > REPLAY_LIMIT:
                self._kept = None
            else:
                kept.append(chunk)
                self._position += 1
        return chunk


def _head(
    method: bytes, target: bytes, headers: Sequence[Header], default_host: bytes
) -> tuple[list[bytes], int | None, bool, int]:
    """The request line and fields, without the framing field or the blank line: the
    parts, the declared Content-Length, whether Connection says close, and the line
    count. Transfer-Encoding is the client's to set, so a caller's is dropped."""
    parts = [method, b" ", target, b" HTTP/1.1\r\n"]
    length: int | None = None
    close = False
    host = False
    lines = 1
    for name, value in headers:
        low = name.lower()
        if low == b"transfer-encoding":
            continue
        if low == b"content-length":
            if not value.isdigit() or (length is not None and int(value) != length):
                raise ValueError(f"bad Content-Length for the upstream: {value!r}")
            if length is not None:
                continue
            length = int(value)
        elif low == b"host":
            host = True
        elif low == b"connection":
            close = b"close" in value.lower()
        parts += (name, b": ", value, b"\r\n")
        lines += 1
    if not host:
        parts += (b"host: ", default_host, b"\r\n")
        lines += 1
    return parts, length, close, lines


def _finish_head(parts: list[bytes], lines: int) -> bytes:
    head = b"".join(parts)
    # Each line adds one CR and one LF: any other CR or LF came from a name, value or
    # target and would split the request (smuggling). Refuse it.
    if head.count(b"\r") != lines or head.count(b"\n") != lines:
        raise ValueError("CR or LF in a request line or field for the upstream")
    return head


class UpstreamPool:
    """Keep-alive HTTP/1.1 connections to one origin (``http://host:port``,
    ``https://...`` or ``unix:/path/to.sock``), and requests over them. Use it from one
    event loop."""

    def __init__(
        self,
        origin: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        send_timeout: float = 60.0,
        max_idle: int = 64,
        idle_timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.unix_path = ""
        """For a ``unix:/path`` origin: the socket (plain HTTP; Host "localhost")."""
        self.ssl: ssl.SSLContext | None = None
        if origin.startswith("unix:/"):
            self.origin, self.unix_path = origin, origin.removeprefix("unix:")
            self.host, self.port, self.host_header = "localhost", 0, b"localhost"
        else:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"not an http(s) or unix:/ origin: {origin!r}")
            self.origin = f"{parts.scheme}://{parts.netloc}"
            self.host = parts.hostname
            self.port = parts.port or (443 if parts.scheme == "https" else 80)
            self.host_header = parts.netloc.encode("latin-1")
            if parts.scheme == "https":
                self.ssl = ssl_context or ssl.create_default_context()
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.send_timeout = send_timeout
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self.opened = 0
        """Connections opened so far."""
        self._idle: list[Connection] = []  # most recently used last: reused first
        self._closed = False

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def request(
        self,
        method: str | bytes,
        target: str | bytes,
        headers: Sequence[Header] = (),
        body: bytes | AsyncIterable[bytes] | None = None,
        *,
        on_informational: InformationalHook | None = None,
        read_timeout: float | None = None,
    ) -> Response:
        """Send a request, relay its 1xx answers to ``on_informational``, and return
        the final answer once its head is in. ``headers`` go as given (a Host is added
        when missing); the body is framed by the caller's Content-Length, or by its
        size for bytes, or chunked. If ``body`` raises, the error comes out as it is
        and the connection is closed. Cancelling closes the connection too.
        ``read_timeout`` overrides the pool's for this request (a route's own)."""
        wait = self.read_timeout if read_timeout is None else read_timeout
        verb = method.encode("latin-1") if isinstance(method, str) else method
        path = target.encode("latin-1") if isinstance(target, str) else target
        if not path or b" " in path:
            raise ValueError(f"bad request target for the upstream: {path!r}")
        parts, length, close, lines = _head(verb, path, headers, self.host_header)
        if body is not None and length is None:
            if isinstance(body, bytes):
                length = len(body)
                parts += (b"content-length: ", str(length).encode(), b"\r\n")
            else:
                parts.append(b"transfer-encoding: chunked\r\n")
            lines += 1
        parts.append(b"\r\n")
        head = _finish_head(parts, lines + 1)
        source = None if body is None or isinstance(body, bytes) else _Source(body)
        whole = body if isinstance(body, bytes) else None
        conn = self._checkout()
        while True:
            if conn is None:
                conn = await self._connect()
            reused = conn.reused
            exchange = conn.begin(verb == b"HEAD", close)
            try:
                await self._send(conn, exchange, head, whole, source, length)
                await self._informational(exchange, on_informational, wait)
            except NoAnswer as exc:
                conn.abort()
                if reused and (source is None or source.replayable):
                    log.debug("%s closed a reused connection unanswered; resending", self.origin)
                    if source is not None:
                        source.rewind()
                    conn = None
                    continue
                raise UpstreamClosed(str(exc)) from None
            except BaseException:
                conn.abort()
                raise
            return Response(exchange, wait, reused)

    async def _informational(
        self, exchange: Exchange, hook: InformationalHook | None, wait: float
    ) -> None:
        while (info := await exchange.next_informational_or_head(wait)) is not None:
            if hook is not None:
                pending = hook(info)
                if pending is not None:
                    await pending

    async def _send(
        self,
        conn: Connection,
        exchange: Exchange,
        head: bytes,
        whole: bytes | None,
        source: _Source | None,
        length: int | None,
    ) -> None:
        if source is None and (length or 0) != (len(whole) if whole is not None else 0):
            raise RequestBodyError(f"Content-Length {length} for a body of other length")
        if conn.closing:
            self._send_failed(exchange)
        if source is None:
            conn.write(head + whole if whole else head)
        else:
            conn.write(head)
            sent = 0
            while (chunk := await source.next()) is not None:
                if not chunk:
                    continue  # an empty chunk would end a chunked body
                if not await self._sendable(conn, exchange):
                    return  # the upstream answered already: stop sending
                sent += len(chunk)
                if length is None:
                    conn.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                elif sent > length:
                    raise RequestBodyError(f"request body longer than its Content-Length {length}")
                else:
                    conn.write(chunk)
            if length is not None and sent != length:
                raise RequestBodyError(f"request body of {sent} bytes, Content-Length {length}")
            if not await self._sendable(conn, exchange):
                return
            if length is None:
                conn.write(b"0\r\n\r\n")
        exchange.request_sent = True
        await self._sendable(conn, exchange)

    async def _sendable(self, conn: Connection, exchange: Exchange) -> bool:
        """Whether to go on sending: False once the final answer head is in (RFC 9112
        §9.5: stop sending a body the upstream has answered)."""
        drained = await conn.drain(self.send_timeout)  # cut short by an answer or a close
        if exchange.final:
            return False
        if conn.closing:
            self._send_failed(exchange)
        if not drained:
            raise SendTimeout(f"the upstream took no request bytes for {self.send_timeout} s")
        return True

    @staticmethod
    def _send_failed(exchange: Exchange) -> None:
        raise exchange.error or NoAnswer("the connection closed before the request went out")

    async def _connect(self) -> Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                if self.unix_path:
                    _, conn = await loop.create_unix_connection(
                        lambda: Connection(loop, self._release, self._lost), self.unix_path
                    )
                else:
                    _, conn = await loop.create_connection(
                        lambda: Connection(loop, self._release, self._lost),
                        self.host,
                        self.port,
                        ssl=self.ssl,
                        server_hostname=self.host if self.ssl else None,
                    )
        except TimeoutError:
            raise ConnectTimeout(
                f"no connection to {self.origin} within {self.connect_timeout} s"
            ) from None
        except OSError as exc:
            raise ConnectError(f"cannot connect to {self.origin}: {exc}") from exc
        self.opened += 1
        return conn

    def _checkout(self) -> Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if conn.idle_timer is not None:
                conn.idle_timer.cancel()
                conn.idle_timer = None
            transport = conn.transport
            if not conn.closed and transport is not None and not transport.is_closing():
                return conn
        return None

    def _release(self, conn: Connection) -> None:
        if self._closed:
            conn.close()
            return
        if len(self._idle) >= self.max_idle:
            self._drop(self._idle[0])
        conn.idle_timer = conn.loop.call_later(self.idle_timeout, self._drop, conn)
        self._idle.append(conn)

    def _drop(self, conn: Connection) -> None:
        self._lost(conn)
        conn.close()

    def _lost(self, conn: Connection) -> None:
        if conn.idle_timer is not None:
            conn.idle_timer.cancel()
            conn.idle_timer = None
        if conn in self._idle:
            self._idle.remove(conn)

    def close(self) -> None:
        """Close the idle connections; those in use close when their answer ends."""
        self._closed = True
        while self._idle:
            self._drop(self._idle[-1])
