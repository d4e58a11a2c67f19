"""The frames an HTTP/2 connection sends, in h2's buffer and then on the transport.

Answer bytes wait in each stream's queue (``Stream.pending``); ``pump`` moves them
into DATA frames as far as the stream's window, the connection's window and the
transport allow, and when a window opens every waiting stream sends one frame in
turn, so one big answer cannot starve the others. Frames are gathered and written
once per loop turn (inside ``data_received``, once at its end), not once per frame.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.exceptions import H2Error

from edgecache.wire.h2_fields import Fields
from edgecache.wire.h2_limits import STREAM_BUFFER

if TYPE_CHECKING:
    from edgecache.wire.h2_stream import Stream


class Outbox:
    __slots__ = (
        "dead",
        "holding",
        "loop",
        "lost",
        "machine",
        "on_closed",
        "scheduled",
        "sending",
        "transport",
        "write_paused",
    )

    def __init__(
        self,
        machine: H2Connection,
        loop: asyncio.AbstractEventLoop,
        on_closed: Callable[[Stream], None],
    ) -> None:
        self.machine = machine
        self.loop = loop
        self.on_closed = on_closed
        """Called once a stream's END_STREAM is sent."""
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.sending: dict[int, Stream] = {}
        """Streams with answer bytes waiting for a window, in turn."""
        self.dead = False
        """h2's side is closed (GOAWAY either way): it sends nothing more."""
        self.lost = False
        self.write_paused = False
        self.holding = False
        """Inside data_received: its end flushes."""
        self.scheduled = False

    def flush(self) -> None:
        self.scheduled = False
        data = self.machine.data_to_send()
        if data and not self.lost:
            self.transport.write(data)

    def flush_soon(self) -> None:
        # Inside data_received the flush at its end sends everything in one write;
        # from handlers' tasks, one write per loop turn gathers every stream's frames.
        if not self.holding and not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.flush)

    def send_headers(self, stream: Stream, fields: Fields, end: bool) -> None:
        if self.dead or stream.closed:
            return
        self.machine.send_headers(stream.id, fields, end_stream=end)
        self.flush_soon()

    def pump(self, stream: Stream) -> None:
        """Send what ``stream`` has waiting, as far as the windows allow."""
        if self.dead:
            return
        if stream.pending and stream.id not in self.sending:
            self.sending[stream.id] = stream
        if stream.pending:
            self._send_some(stream, math.inf)
        self._after_sending(stream)

    def pump_all(self) -> None:
        """Windows opened: each waiting stream sends one frame in turn, and again."""
        while self.sending and not self.write_paused and not self.dead:
            sent = 0
            for stream in list(self.sending.values()):
                sent += self._send_some(stream, 1)
                self._after_sending(stream)
            if not sent or self.machine.outbound_flow_control_window <= 0:
                break

    def _send_some(self, stream: Stream, frames: float) -> int:
        machine = self.machine
        sent = 0
        while stream.pending and frames > 0 and not self.write_paused and not stream.closed:
            if self.dead:
                return sent
            room = machine.local_flow_control_window(stream.id)
            room = min(room, machine.max_outbound_frame_size)
            if room <= 0:
                break
            chunk = stream.pending[0]
            if len(chunk) <= room:
                stream.pending.popleft()
            else:
                chunk, stream.pending[0] = chunk[:room], chunk[room:]
            last = stream.ending and not stream.pending
            machine.send_data(stream.id, chunk, end_stream=last)
            stream.pending_bytes -= len(chunk)
            if last:  # END_STREAM rides on the last DATA frame, not one of its own
                stream.closed = True
                self.sending.pop(stream.id, None)
                self.on_closed(stream)
            sent += 1
            frames -= 1
        if sent:
            self.flush_soon()
        return sent

    def _after_sending(self, stream: Stream) -> None:
        if stream.closed:
            self.sending.pop(stream.id, None)
            return
        if not stream.pending:
            self.sending.pop(stream.id, None)
            if stream.ending:
                self.machine.end_stream(stream.id)
                stream.closed = True
                self.flush_soon()
                self.on_closed(stream)
                return
        if stream.pending_bytes <= STREAM_BUFFER and not self.write_paused:
            stream.wake_writer()

    def acknowledge(self, stream: Stream, flow: int) -> None:
        """Body bytes consumed (or dropped): give their room back to the client."""
        if flow and not self.dead:
            self.machine.acknowledge_received_data(flow, stream.id)
            self.flush_soon()

    def reset(self, stream: Stream, code: ErrorCodes = ErrorCodes.INTERNAL_ERROR) -> None:
        self.reset_id(stream.id, code)

    def reset_id(self, stream_id: int, code: ErrorCodes) -> None:
        if self.dead:
            return
        try:
            self.machine.reset_stream(stream_id, code)
        except H2Error:
            return  # closed on h2's side already: the client reset it in the same read
        self.flush_soon()
