"""One server: listening sockets, the connection cap, the deadline sweep, and graceful
shutdown. Runs inside an event loop (uvloop in production); knows nothing of processes,
signals or the proxy: ``edgecache.wire.runner`` does that.

Accepting is ours (``add_reader`` on the listening socket) rather than
``loop.create_server``'s, so it can pause: past ``max_connections`` new connections
wait in the kernel's backlog instead of the process running out of descriptors.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl

from edgecache.wire.accesslog import AccessLog, Finished
from edgecache.wire.config import WireConfig
from edgecache.wire.connection import Client, Connection
from edgecache.wire.framing import DateField
from edgecache.wire.h2 import Http2Connection, Negotiated
from edgecache.wire.types import Handler

log = logging.getLogger("edgecache.wire")

ACCEPT_BATCH = 64
"""Connections taken per readiness event of a listening socket."""


class _Listener:
    __slots__ = ("h2c", "scheme", "sock", "ssl_context")

    def __init__(self, sock: socket.socket, ssl_context: ssl.SSLContext | None, h2c: bool) -> None:
        self.sock = sock
        self.ssl_context = ssl_context
        self.scheme = "https" if ssl_context is not None else "http"
        self.h2c = h2c


class WireServer:
    def __init__(
        self,
        handler: Handler,
        config: WireConfig | None = None,
        access_log: AccessLog | None = None,
    ) -> None:
        self.handler = handler
        self.config = config or WireConfig()
        self.access_log = access_log
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.connections: set[Client] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.open = 0
        """Accepted connections, counting those still in their TLS handshake."""
        self.stopping = False
        self.date = DateField()
        self.hsts_line = (
            b"strict-transport-security: max-age=%d\r\n" % self.config.hsts
            if self.config.hsts
            else b""
        )
        self._listeners: list[_Listener] = []
        self._accepting = False
        self._sweeper: asyncio.TimerHandle | None = None
        self._emptied: asyncio.Event | None = None

    async def start(self) -> None:
        """The handler's startup, then the sweep; call ``listen`` after."""
        self.loop = asyncio.get_running_loop()
        await self.handler.startup()
        self._sweep_interval = min(
            1.0, self.config.header_timeout / 4, self.config.keepalive_timeout / 4
        )
        self._sweeper = self.loop.call_later(self._sweep_interval, self._sweep)

    def listen(
        self, sock: socket.socket, ssl_context: ssl.SSLContext | None = None, h2c: bool = False
    ) -> None:
        """Serve ``sock``; ``h2c``: plain HTTP/2 with prior knowledge (RFC 9113 §3.3),
        no HTTP/1.1, for a load balancer in front."""
        sock.setblocking(False)
        self._listeners.append(_Listener(sock, ssl_context, h2c))
        self._resume_accepting()

    # -- accepting ---------------------------------------------------------------

    def _resume_accepting(self) -> None:
        if self.stopping:
            return
        for listener in self._listeners:
            self.loop.add_reader(listener.sock.fileno(), self._accept, listener)
        self._accepting = True

    def _pause_accepting(self) -> None:
        for listener in self._listeners:
            self.loop.remove_reader(listener.sock.fileno())
        self._accepting = False

    def _accept(self, listener: _Listener) -> None:
        for _ in range(ACCEPT_BATCH):
            if self.open >= self.config.max_connections:
                self._pause_accepting()  # the rest wait in the backlog
                return
            try:
                sock, _ = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return  # another worker took it, or none is left
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.warning("wire: cannot accept (%s); pausing for a moment", exc.strerror)
                    self._pause_accepting()
                    self.loop.call_later(0.1, self._resume_accepting)
                    return
                raise
            sock.setblocking(False)
            if sock.family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.open += 1
            task = self.loop.create_task(self._connect(sock, listener))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _connect(self, sock: socket.socket, listener: _Listener) -> None:
        try:
            await self.loop.connect_accepted_socket(
                lambda: self._protocol(listener),
                sock,
                ssl=listener.ssl_context,
                # A TLS handshake is part of the head's deadline, not a free minute.
                ssl_handshake_timeout=self.config.header_timeout if listener.ssl_context else None,
            )
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
            log.debug("wire: connection not established: %s", exc)
            sock.close()
            self._released()

    def _protocol(self, listener: _Listener) -> Connection | Negotiated | Http2Connection:
        if listener.h2c:
            return Http2Connection(self, listener.scheme)
        if listener.ssl_context is not None and self.config.http2:
            return Negotiated(self, listener.scheme)  # HTTP/2 if ALPN says h2
        return Connection(self, listener.scheme)

    def connection_closed(self, conn: Client) -> None:
        self.connections.discard(conn)
        self._released()

    def _released(self) -> None:
        self.open -= 1
        if not self._accepting and self.open < self.config.max_connections:
            self._resume_accepting()
        if self._emptied is not None and not self.connections:
            self._emptied.set()

    # -- bookkeeping --------------------------------------------------------------

    def finished(self, exchange: Finished) -> None:
        if self.access_log is not None:
            self.access_log.finished(exchange)

    def refused(self, client: tuple[str, int] | None, status: int) -> None:
        if self.access_log is not None:
            self.access_log.refused(client, status)

    def _sweep(self) -> None:
        now = self.loop.time()
        for conn in list(self.connections):
            if now >= conn.deadline or now >= conn.body_deadline or now >= conn.write_deadline:
                conn.check_deadlines(now)
        self._sweeper = self.loop.call_later(self._sweep_interval, self._sweep)

    # -- stopping -------------------------------------------------------------------

    def close_listeners(self) -> None:
        """Stop accepting (the sockets stay open for other workers)."""
        self.stopping = True
        if self._accepting:
            self._pause_accepting()

    async def shutdown(self, timeout: float | None = None) -> None:
        """Stop accepting, let answers under way finish (up to ``timeout``, default
        the config's), close the rest, then the handler's shutdown."""
        self.close_listeners()
        limit = self.config.shutdown_timeout if timeout is None else timeout
        for conn in list(self.connections):
            conn.shutdown()
        if self.connections:
            self._emptied = asyncio.Event()
            try:
                await asyncio.wait_for(self._emptied.wait(), limit)
            except TimeoutError:
                busy = len(self.connections)
                log.warning("wire: %d connection(s) still busy; closing them", busy)
        for conn in list(self.connections):
            conn.transport.abort()
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self._sweeper is not None:
            self._sweeper.cancel()
        try:
            await self.handler.shutdown()
        finally:
            if self.access_log is not None:
                self.access_log.flush()
