"""The access log at the wire level: one line per answer, combined or JSON, with the
cache status, the authenticated user (nginx's ``$remote_user``) and the upstream time.

Off the hit path: an answer only appends a tuple to a list; the lines are formatted
and written together on a short timer (or when many are waiting, and at exit). The
request metrics are counted at once, though, so a scrape right after a request sees it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any, Protocol, TextIO

from edgecache.metrics import BYTES_OUT, REQUESTS_BY_OUTCOME, UPSTREAM_SECONDS, outcome
from edgecache.wire.types import Request


class Finished(Protocol):
    """What the log reads of an answered exchange (``wire.exchange.Exchange``)."""

    @property
    def request(self) -> Request: ...

    @property
    def status(self) -> int: ...

    @property
    def sent(self) -> int: ...

    @property
    def cache_status(self) -> str: ...

    @property
    def outcome(self) -> object: ...

    @property
    def user(self) -> str: ...

    @property
    def upstream_time(self) -> float | None: ...

    @property
    def upstream_error(self) -> str: ...

    @property
    def started_at(self) -> float: ...

    @property
    def route(self) -> str: ...


FLUSH_INTERVAL = 0.2
"""Seconds a line may wait before it is written."""
FLUSH_LINES = 512
"""Lines that make a write happen at once."""

_Record = tuple[Any, ...]


class AccessLog:
    def __init__(
        self, style: str = "combined", counting: bool = False, stream: TextIO | None = None
    ) -> None:
        self.style = style
        self.counting = counting
        self.stream = stream
        self._records: list[_Record] = []
        self._timer: asyncio.TimerHandle | None = None
        self._stamp_second = -1
        self._stamps = ("", "")

    def finished(self, exchange: Finished, ended: float | None = None) -> None:
        """One answer is done (complete, aborted or refused by a handler); ``ended``:
        when, if the caller has read the clock already."""
        if self.counting:
            REQUESTS_BY_OUTCOME[outcome(exchange.outcome)].inc()
            BYTES_OUT.inc(exchange.sent)
            if exchange.upstream_time is not None:
                UPSTREAM_SECONDS.observe(exchange.upstream_time)
        if self.style == "off":
            return
        self._add(
            (
                exchange.request,
                exchange.status,
                exchange.sent,
                exchange.cache_status,
                exchange.user,
                exchange.upstream_time,
                exchange.upstream_error,
                exchange.started_at,
                time.time() if ended is None else ended,
            )
        )

    def refused(self, client: tuple[str, int] | None, status: int) -> None:
        """A request the wire layer refused before it had a head worth the name."""
        if self.style == "off":
            return
        now = time.time()
        self._add((None, status, 0, "", "", None, "", now, now, client))

    def _add(self, record: _Record) -> None:
        self._records.append(record)
        if len(self._records) >= FLUSH_LINES:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._timer = loop.call_later(FLUSH_INTERVAL, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        records, self._records = self._records, []
        if not records:
            return
        stream = self.stream or sys.stderr
        stream.write("".join(self.line(r) + "\n" for r in records))
        stream.flush()

    def _stamp(self, when: float) -> tuple[str, str]:
        second = int(when)
        if second != self._stamp_second:
            local = time.localtime(second)
            self._stamp_second = second
            self._stamps = (
                time.strftime("%Y-%m-%dT%H:%M:%S%z", local),
                time.strftime("%d/%b/%Y:%H:%M:%S %z", local),
            )
        return self._stamps

    def line(self, record: _Record) -> str:
        request, status, sent, cache, user, upstream, error, started, ended = record[:9]
        iso, clf = self._stamp(started)
        if request is None:
            client = record[9]
            method = path = protocol = referer = agent = ""
        else:
            client = request.client
            method = request.method
            path = request.target
            protocol = f"HTTP/{request.version}"
            referer = agent = ""
            for name, value in request.headers:
                if name == b"referer":
                    referer = value.decode("latin-1")
                elif name == b"user-agent":
                    agent = value.decode("latin-1")
        address = client[0] if client else "-"
        if self.style == "json":
            fields: dict[str, Any] = {
                "time": iso,
                "client": address,
                "user": user or "-",
                "method": method,
                "path": path,
                "protocol": protocol,
                "status": status,
                "bytes": sent,
                "referer": referer,
                "user_agent": agent,
                "cache": cache,
                "upstream_time": None if upstream is None else round(upstream, 6),
                "duration": round(ended - started, 6),
            }
            if error:
                fields["upstream_error"] = error
            return json.dumps(fields, separators=(",", ":"))
        request_line = f"{method} {path} {protocol}" if method else "-"
        upstream_text = "-" if upstream is None else f"{upstream:.6f}"
        return (
            f'{address} - {user or "-"} [{clf}] "{request_line}" {status} {sent} '
            f'"{referer or "-"}" "{agent or "-"}" cache="{cache}" upstream_time={upstream_text}'
        )
