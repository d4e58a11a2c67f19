"""The HTTP/2 server connection: an asyncio Protocol driving h2's sans-IO
``H2Connection`` (python-hyper: framing, HPACK, stream states and flow-control
arithmetic are the library's), chosen when ALPN selects ``h2``.

Each stream becomes a :class:`Request` and a :class:`Stream` (the Reply) and goes to the
same handler as an HTTP/1.1 request: ``answer_now`` inside ``data_received`` first
(no task; the hit path), else ``handle`` in a task. What this module adds to h2:

- sending: every stream with answer bytes waiting is served in turn, one frame each,
  while its window, the connection's window and the transport allow (``pump``);
- limits: WireConfig's header and body limits, the concurrent-stream cap (counting
  handlers still running for streams the client cancelled, so cancelling frees no
  work) and the flood budgets of ``h2_limits``; a flood gets GOAWAY and the close;
- deadlines, checked by the server's sweep as for HTTP/1.1: the preface and any
  header block within ``header_timeout``, idle connections after
  ``keepalive_timeout``, request body gaps and stalled writes per stream;
- graceful shutdown: GOAWAY, streams under way finish, then the close.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from typing import Any

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    PingReceived,
    PriorityUpdated,
    RemoteSettingsChanged,
    RequestReceived,
    StreamEnded,
    StreamReset,
    WindowUpdated,
)
from h2.exceptions import H2Error, ProtocolError
from h2.settings import SettingCodes
from hyperframe.frame import GoAwayFrame

from edgecache.wire.connection import Connection, Server
from edgecache.wire.h2_fields import (
    AnswerFields,
    Fields,
    PreparingEncoder,
    build_request,
    plain_answer,
)
from edgecache.wire.h2_limits import CONNECTION_WINDOW, STREAM_WINDOW, Budget, Floods
from edgecache.wire.h2_outbox import Outbox
from edgecache.wire.h2_stream import Stream
from edgecache.wire.handling import begin, run_handler, unfinished
from edgecache.wire.rules import Refusal

log = logging.getLogger("edgecache.wire")

_H2_CONFIG = H2Configuration(
    client_side=False,
    header_encoding=None,
    # Our fields are checked and lowercased by h2_fields; h2's own pass would repeat it.
    validate_outbound_headers=False,
    normalize_outbound_headers=False,
)
_DEFAULT_WINDOW = 65535  # RFC 9113 §6.9.2
_HEAD, _IDLE = 1, 2
ANSWER_FIELDS = AnswerFields()
"""One memo per process: a stored head is parsed once, whichever connection hits it."""


class Http2Connection(asyncio.Protocol):
    def __init__(self, server: Server, scheme: str) -> None:
        self.server = server
        self.config = server.config
        self.handler = server.handler
        self.loop = server.loop
        self.scheme = scheme
        hsts = server.hsts_line if scheme == "https" else b""
        self.hsts = hsts[len(b"strict-transport-security: ") : -2]
        self.answer_fields = ANSWER_FIELDS
        self.machine = H2Connection(_H2_CONFIG)
        self.machine.encoder = PreparingEncoder()  # a hit's stored fields: encoded once
        self.out = Outbox(self.machine, self.loop, self.retire)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.client: tuple[str, int] | None = None
        self.streams: dict[int, Stream] = {}
        self.working = 0
        """Streams not yet over on the wire, or whose handler still runs."""
        self.floods = Floods(self.loop.time())
        self.lost = False
        self.closing = False
        """No new streams: GOAWAY sent or received."""
        self.last_stream = 2**31 - 1
        self._request_priority: PriorityUpdated | None = None
        # Deadlines, as loop times, checked by the server's sweep.
        self.deadline = math.inf
        self.deadline_kind = 0
        self.body_deadline = math.inf
        self.write_deadline = math.inf
        self._dispatch: dict[type[Any], Callable[[Any], None]] = {
            RequestReceived: self._request,
            DataReceived: self._data,
            StreamEnded: self._ended,
            StreamReset: self._reset,
            WindowUpdated: self._window,
            RemoteSettingsChanged: self._settings,
            PingReceived: self._ping,
            PriorityUpdated: self._priority,
            ConnectionTerminated: self._terminated,
        }

    # -- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's: not a subclass
        self.out.transport = self.transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.client = (str(peer[0]), int(peer[1]))
        self.server.connections.add(self)
        machine = self.machine
        machine.initiate_connection()
        machine.update_settings(
            {
                SettingCodes.MAX_CONCURRENT_STREAMS: self.config.http2_max_concurrent_streams,
                SettingCodes.HEADER_TABLE_SIZE: self.config.http2_hpack_table_size,
                SettingCodes.MAX_HEADER_LIST_SIZE: self.config.max_header_bytes,
                SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
            }
        )
        machine.increment_flow_control_window(CONNECTION_WINDOW - _DEFAULT_WINDOW)
        self._set_deadline(_HEAD, self.config.header_timeout)
        self.out.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = self.closing = True
        self.out.lost = self.out.dead = True
        self.server.connection_closed(self)
        for stream in list(self.streams.values()):
            if not stream.finished:
                stream.client_left()
            self.retire(stream)
        self.out.sending.clear()

    def pause_writing(self) -> None:
        self.out.write_paused = True
        self.write_deadline = min(self.write_deadline, self.loop.time() + self.config.write_timeout)

    def resume_writing(self) -> None:
        self.out.write_paused = False
        # Streams still waiting for their window keep their own deadlines.
        self.write_deadline = min((s.write_due for s in self.streams.values()), default=math.inf)
        self.out.pump_all()

    def data_received(self, data: bytes) -> None:
        if self.lost:
            return
        self.out.holding = True
        try:
            events = self.machine.receive_data(data)
        except ProtocolError as exc:
            # h2 has queued GOAWAY with the error's code; the other side broke the rules.
            log.info("wire: HTTP/2 protocol error from %s: %s", self.client, exc)
            self.out.holding = False
            self.out.dead = True
            self._end(None)
            return
        try:
            for event in events:
                handler = self._dispatch.get(type(event))
                if handler is not None:
                    handler(event)
                    if self.out.dead:
                        break  # a flood was refused, or the client said GOAWAY
            self._check_header_block()
        except Exception:
            log.exception("wire: HTTP/2 connection from %s failed", self.client)
            self._end(ErrorCodes.INTERNAL_ERROR)
        finally:
            self.out.holding = False
        self.out.flush()

    def eof_received(self) -> bool | None:
        return None  # the client will send nothing more: close

    # -- what the wire layer adds ------------------------------------------------------

    def add_own_fields(self, fields: Fields, dated: bool) -> None:
        """What the wire layer adds to every answer: a Date when none was given, HSTS."""
        if not dated:
            fields.append((b"date", self.server.date.line()[6:-2]))
        if self.hsts:
            fields.append((b"strict-transport-security", self.hsts))

    def retire(self, stream: Stream) -> None:
        """The stream is over on the wire: log it, free its windows."""
        if stream.retired:
            return
        stream.retired = True
        self.streams.pop(stream.id, None)
        self.out.sending.pop(stream.id, None)
        if stream.unacked:
            self.out.acknowledge(stream, stream.unacked)
            stream.unacked = 0
        stream.chunks.clear()
        if not stream.complete and not stream.gone:
            # A complete answer before the whole request: the client may stop sending
            # (RFC 9113 §8.1), and we take no more of it.
            self.out.reset(stream, ErrorCodes.NO_ERROR)
        self.server.finished(stream)
        if stream.task is None:
            self._release()

    def _release(self) -> None:
        self.working -= 1
        if not self.streams and not self.lost:
            if self.closing and self.working <= 0:
                self._close()
            else:
                self._set_deadline(_IDLE, self.config.keepalive_timeout)

    # -- events ----------------------------------------------------------------------

    def _request(self, event: RequestReceived) -> None:
        self._request_priority = event.priority_updated
        stream_id = event.stream_id
        if self.closing or stream_id > self.last_stream:
            self.out.reset_id(stream_id, ErrorCodes.REFUSED_STREAM)
            return
        if self.working >= self.config.http2_max_concurrent_streams:
            # Handlers of streams the client cancelled still count: refused, retryable,
            # and each refusal costs the client as a reset does.
            if self._spend(self.floods.reset):
                self.out.reset_id(stream_id, ErrorCodes.REFUSED_STREAM)
            return
        config = self.config
        try:
            request, declared = build_request(
                event.headers,  # bytes pairs: header_encoding=None
                event.stream_ended is not None,
                self.scheme,
                self.client,
                config.max_header_fields,
                config.max_uri_bytes,
            )
        except Refusal as refusal:
            self._refuse(stream_id, refusal, event.stream_ended is not None)
            return
        stream = Stream(self, stream_id, request, declared)
        stream.complete = event.stream_ended is not None
        self.streams[stream_id] = stream
        self.working += 1
        if self.deadline_kind:
            self._set_deadline(0, 0)
        begin(self.handler, stream, self.loop, self.server.tasks, self._run)

    def _refuse(self, stream_id: int, refusal: Refusal, ended: bool) -> None:
        headers, body = plain_answer(refusal.status, refusal.text)
        fields = [(b":status", b"%d" % refusal.status), *headers]
        self.add_own_fields(fields, False)
        self.server.refused(self.client, refusal.status)
        try:
            self.machine.send_headers(stream_id, fields)
            self.machine.send_data(stream_id, body, end_stream=True)
        except H2Error:
            return  # the client reset it in the same read
        if not ended:
            self.out.reset_id(stream_id, ErrorCodes.NO_ERROR)

    async def _run(self, stream: Stream) -> None:
        try:
            if await run_handler(self.handler, stream):
                unfinished(stream)
        finally:
            stream.task = None
            if stream.retired:
                self._release()
            # else: retire() releases it once the answer's last bytes are out

    def _data(self, event: DataReceived) -> None:
        stream = self.streams.get(event.stream_id)
        flow = event.flow_controlled_length
        if stream is None:
            if flow:
                self.machine.acknowledge_received_data(flow, event.stream_id)
            return
        if not event.data and event.stream_ended is None and not self._spend(self.floods.minor):
            return
        stream.feed(event.data, flow)

    def _ended(self, event: StreamEnded) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            stream.feed_end()

    def _reset(self, event: StreamReset) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is None:
            return
        # Every stream the client cancels while we still answer it costs a budget: a
        # cancelled stream frees its slot at once, its work does not (CVE-2023-44487).
        if event.remote_reset and not self._spend(self.floods.reset):
            return
        stream.client_left()  # on_gone: the handler cancels its upstream request
        self.retire(stream)

    def _window(self, event: WindowUpdated) -> None:
        if event.stream_id == 0:
            self.out.pump_all()
        else:
            stream = self.out.sending.get(event.stream_id)
            if stream is not None:
                self.out.pump(stream)

    def _settings(self, event: RemoteSettingsChanged) -> None:
        if self._spend(self.floods.settings) and SettingCodes.INITIAL_WINDOW_SIZE in (
            event.changed_settings
        ):
            self.out.pump_all()

    def _ping(self, event: PingReceived) -> None:
        self._spend(self.floods.ping)

    def _priority(self, event: PriorityUpdated) -> None:
        # Browsers put priority in every request's HEADERS: h2 reports it as an event
        # of its own too, and that one costs nothing; PRIORITY frames alone do.
        if event is not self._request_priority:
            self._spend(self.floods.minor)

    def _terminated(self, event: ConnectionTerminated) -> None:
        # h2 sends nothing after the client's GOAWAY, so streams under way cannot
        # finish: they end here (their handlers see the client gone).
        self.out.dead = True
        self._end(None)

    def _spend(self, budget: Budget) -> bool:
        if budget.spend(self.loop.time()):
            return True
        log.warning("wire: HTTP/2 flood from %s; GOAWAY", self.client)
        self._end(ErrorCodes.ENHANCE_YOUR_CALM)
        return False

    def _check_header_block(self) -> None:
        # CVE-2024-27316: a header block spread over CONTINUATION frames is held by
        # h2 until it ends; its bytes may not pass max_header_bytes (at most one read
        # past it), and it must end within header_timeout.
        pending = self.machine.incoming_buffer._headers_buffer
        if not pending:
            if self.deadline_kind == _HEAD and self.machine.highest_inbound_stream_id:
                self._set_deadline(0 if self.streams else _IDLE, self.config.keepalive_timeout)
            return
        if sum(len(frame.data) for frame in pending) > self.config.max_header_bytes:
            log.warning("wire: HTTP/2 header block too large from %s; GOAWAY", self.client)
            self._end(ErrorCodes.ENHANCE_YOUR_CALM)
        elif self.deadline_kind != _HEAD:
            self._set_deadline(_HEAD, self.config.header_timeout)

    # -- ending ---------------------------------------------------------------------------

    def _end(self, code: ErrorCodes | None) -> None:
        """GOAWAY (``code``; None: h2 has queued one) and close; streams are dropped."""
        if self.lost:
            return
        if code is not None and not self.out.dead:
            self.machine.close_connection(code)
        self.out.dead = self.closing = True
        self.out.flush()
        self._close()

    def _close(self) -> None:
        if not self.lost and not self.transport.is_closing():
            self.out.flush()
            self.transport.close()

    def wind_down(self) -> None:
        """After a reload: GOAWAY, which clients take as "reconnect for new streams"."""
        self.shutdown()

    def shutdown(self) -> None:
        """Graceful stop: GOAWAY naming the last stream we took; they finish, then
        the close. The frame is written beside h2, whose own close_connection would
        refuse every later frame, those of the streams still under way too."""
        if self.lost or self.closing or self.out.dead:
            return
        self.closing = True
        self.last_stream = self.machine.highest_inbound_stream_id
        self.out.flush()
        self.transport.write(GoAwayFrame(0, last_stream_id=self.last_stream).serialize())
        if not self.streams and self.working <= 0:
            self._close()

    # -- deadlines, checked by the server's sweep -------------------------------------

    def _set_deadline(self, kind: int, seconds: float) -> None:
        self.deadline_kind = kind
        self.deadline = math.inf if not kind else self.loop.time() + seconds

    def check_deadlines(self, now: float) -> None:
        if self.lost:
            return
        if now >= self.deadline:
            kind, self.deadline_kind, self.deadline = self.deadline_kind, 0, math.inf
            if kind == _HEAD or not self.streams:
                self._end(ErrorCodes.NO_ERROR)
                return
        if now >= self.body_deadline:
            self.body_deadline = math.inf
            for stream in list(self.streams.values()):
                if now >= stream.body_due:
                    stream.body_timed_out()
                else:
                    self.body_deadline = min(self.body_deadline, stream.body_due)
        if now >= self.write_deadline:
            self.write_deadline = math.inf
            if self.out.write_paused:
                log.info("wire: client %s took no bytes for write_timeout; closing", self.client)
                self.transport.abort()
                return
            for stream in list(self.streams.values()):
                if now >= stream.write_due:
                    log.info("wire: %r: no window for write_timeout; reset", stream)
                    stream.abort()
                else:
                    self.write_deadline = min(self.write_deadline, stream.write_due)

    def __repr__(self) -> str:
        return f"<Http2Connection {self.client}>"


class Negotiated(asyncio.Protocol):
    """Stands in until the TLS handshake is done, then hands the transport to the
    protocol ALPN chose: HTTP/2 for ``h2``, else HTTP/1.1."""

    def __init__(self, server: Server, scheme: str) -> None:
        self.server = server
        self.scheme = scheme

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        tls = transport.get_extra_info("ssl_object")
        chosen = tls.selected_alpn_protocol() if tls is not None else None
        protocol: asyncio.Protocol
        if chosen == "h2":
            protocol = Http2Connection(self.server, self.scheme)
        else:
            protocol = Connection(self.server, self.scheme)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
