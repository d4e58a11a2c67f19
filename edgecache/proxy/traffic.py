"""Request counters for the status page: always on, a few dict increments per answer.

Theory of operation. ``Traffic.count`` runs once per answer on the hit path, so it only
adds to the current second's row (a dict per outcome) and to two per-URL dicts. A timer
on the event loop closes the row once a second: it goes into a ring of ``RING_SECONDS``
rows and into the totals, and the Prometheus counters are brought up to date then (not
per request: ``Counter.inc`` takes a lock and, with workers, writes to a shared file).
With several workers each one also writes its snapshot once a second into the shared
metrics directory (``PROMETHEUS_MULTIPROC_DIR``), and the status page sums every
worker's file, so other workers' figures are at most a second old.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable
from typing import Any

from edgecache.metrics import (
    BYTES_OUT,
    LATENCY_BOUNDS,
    OUTCOMES,
    REQUEST_SECONDS,
    REQUESTS_BY_OUTCOME,
    RESPONSES,
    UPSTREAM_SECONDS,
    outcome,
)
from edgecache.wire.accesslog import AccessLog, Finished

RING_SECONDS = 300
"""How far back the per-second rows go (the chart's width)."""
TOP_URLS = 20
"""URLs listed by hits and by misses."""
MAX_URLS = 10_000
"""Distinct URLs counted before the tick prunes the per-URL counts to the busiest
``TOP_URLS * 50`` (cache-busting query strings must not grow memory without end)."""
FORWARDED = ("miss", "pass")
"""Outcomes that went to the upstream: "top URLs by misses" counts both."""
SNAPSHOT_PREFIX = "status-"

Row = dict[str, int]
"""One second: requests per outcome, and ``bytes`` sent."""


def _row() -> Row:
    return dict.fromkeys((*OUTCOMES, "bytes"), 0)


_LATENCY = 6
"""In a route's stats: [0..5] answers by status // 100, then one count per latency
bucket (``LATENCY_BOUNDS``, then +Inf), then the latency sum."""


def _route_stats() -> list[Any]:
    return [0] * (_LATENCY + len(LATENCY_BOUNDS) + 1) + [0.0]


class Traffic:
    """This process's counters. Not thread-safe: call ``count`` from the event loop."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.started = clock()
        self.row = _row()
        self.row_second = int(self.started)
        self.ring: deque[tuple[int, Row]] = deque(maxlen=RING_SECONDS)
        self.totals = _row()
        self.hit_urls: dict[str, int] = {}
        self.miss_urls: dict[str, int] = {}
        self._reported = _row()
        self._routes: dict[str, list[Any]] = {}
        """route -> answers not yet in ``RESPONSES`` and ``REQUEST_SECONDS``, as one
        list (``_route_stats``): one lookup per answer."""
        self._timer: asyncio.TimerHandle | None = None
        self._dirty = True
        """Counts not yet in this worker's snapshot file."""

    def count(
        self,
        noted: object,
        target: str,
        sent: int,
        status: int = 200,
        seconds: float = 0.0,
        route: str = "",
    ) -> None:
        """One answer: the cache's Outcome (None: no cache), request target, body bytes
        sent, status, client-side seconds and route. Dict increments only: the
        Prometheus series are brought up to date once a second (``sync_metrics``)."""
        stats = self._routes.get(route)
        if stats is None:
            stats = self._routes[route] = _route_stats()
        stats[status // 100] += 1
        stats[_LATENCY + bisect_left(LATENCY_BOUNDS, seconds)] += 1
        stats[-1] += seconds
        kind = outcome(noted)
        row = self.row
        row[kind] += 1
        row["bytes"] += sent
        if kind == "hit" or kind == "stale":
            urls = self.hit_urls
        elif kind == "miss" or kind == "pass":
            urls = self.miss_urls
        else:
            if self._timer is None:
                self._start()
            return
        try:
            urls[target] += 1  # the usual case, a URL seen before: half the cost of get()
        except KeyError:
            urls[target] = 1  # (and the first answer of all starts the timer)
            if self._timer is None:
                self._start()

    def _start(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a test calling count directly): rows close on read
        self._timer = loop.call_at(loop.time() + self._until_next_second(), self._tick)

    def _until_next_second(self) -> float:
        now = self.clock()
        return max(0.05, int(now) + 1 - now)

    def _tick(self) -> None:
        self.close_rows()
        self.sync_metrics()
        self._prune()
        self._write_snapshot()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_at(loop.time() + self._until_next_second(), self._tick)

    def close_rows(self) -> None:
        """Move the current row into the ring once its second is over (and add empty
        rows for seconds without answers, so the ring is a plain time series)."""
        now = int(self.clock())
        if now <= self.row_second:
            return
        row, self.row = self.row, _row()
        for name, value in row.items():
            self.totals[name] += value
        self._dirty = self._dirty or any(row.values())
        self.ring.append((self.row_second, row))
        for second in range(max(self.row_second + 1, now - RING_SECONDS), now):
            self.ring.append((second, _row()))
        self.row_second = now

    def current_totals(self) -> Row:
        """Totals including the second under way."""
        return {name: value + self.row[name] for name, value in self.totals.items()}

    def sync_metrics(self) -> None:
        """Bring the Prometheus counters up to the counts so far (the scrape calls this
        too, so it sees this process's answers up to the last one)."""
        now = self.current_totals()
        for name in OUTCOMES:
            if now[name] > self._reported[name]:
                REQUESTS_BY_OUTCOME[name].inc(now[name] - self._reported[name])
        if now["bytes"] > self._reported["bytes"]:
            BYTES_OUT.inc(now["bytes"] - self._reported["bytes"])
        self._reported = now
        routes, self._routes = self._routes, {}
        for route, stats in routes.items():
            for kind in range(1, _LATENCY):
                if stats[kind]:
                    RESPONSES.labels(f"{kind}xx", route).inc(stats[kind])
            add_observations(REQUEST_SECONDS.labels(route), stats[_LATENCY:-1], stats[-1])

    def _prune(self) -> None:
        for urls in (self.hit_urls, self.miss_urls):
            if len(urls) > MAX_URLS:
                keep = sorted(urls.items(), key=lambda item: -item[1])[: TOP_URLS * 50]
                urls.clear()
                urls.update(keep)

    def snapshot(self) -> dict[str, Any]:
        """This process's figures as JSON-ready data (what the workers' files hold)."""
        self.close_rows()
        return {
            "pid": os.getpid(),
            "started": self.started,
            "totals": self.current_totals(),
            "series": [[second, row] for second, row in self.ring],
            "hits": dict(top(self.hit_urls, TOP_URLS * 5)),
            "misses": dict(top(self.miss_urls, TOP_URLS * 5)),
        }

    def _write_snapshot(self) -> None:
        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if not folder or not self._dirty:
            return  # one worker (read in memory), or nothing new since the last write
        path = os.path.join(folder, f"{SNAPSHOT_PREFIX}{os.getpid()}.json")
        try:
            with open(path + ".tmp", "w") as f:
                json.dump(self.snapshot(), f, separators=(",", ":"))
            os.replace(path + ".tmp", path)
            self._dirty = False
        except OSError:
            pass  # the folder goes at exit; a second lost then is no loss


def add_observations(histogram: Any, buckets: list[int], total: float) -> None:
    """Add a second's worth of observations to a labelled Prometheus histogram at once:
    ``buckets[i]`` answers fell in bucket ``i`` (the last: above every bound). One
    ``observe`` per answer would cost a lock and a search on the hit path; this is the
    same arithmetic ``observe`` does (its per-bucket values, summed on exposition),
    done once a second. Works in multi-process mode too (the values are its own)."""
    for index, count in enumerate(buckets):
        if count:
            histogram._buckets[index].inc(count)
    histogram._sum.inc(total)


def top(counts: dict[str, int], n: int) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n]


def all_snapshots(traffic: Traffic) -> list[dict[str, Any]]:
    """This process's snapshot and every other worker's latest file."""
    mine = traffic.snapshot()
    found = [mine]
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder and os.path.isdir(folder):
        for name in sorted(os.listdir(folder)):
            if not (name.startswith(SNAPSHOT_PREFIX) and name.endswith(".json")):
                continue
            if name == f"{SNAPSHOT_PREFIX}{mine['pid']}.json":
                continue
            with contextlib.suppress(OSError, ValueError), open(os.path.join(folder, name)) as f:
                found.append(json.load(f))
    return found


TRAFFIC = Traffic()
"""The process's one set of counters (one event loop per process)."""


class CountingLog(AccessLog):
    """The wire layer's access log that counts every answer into ``TRAFFIC`` first,
    whether or not lines are written (``style="off"``) or an admin token is set."""

    def __init__(self, style: str = "combined", traffic: Traffic = TRAFFIC) -> None:
        super().__init__(style, counting=False)
        self.traffic = traffic
        self._count = traffic.count  # bound once: this runs for every answer

    def finished(self, exchange: Finished, ended: float | None = None) -> None:
        # The clock read once per answer, for the latency and for the log line.
        ended = time.time() if ended is None else ended
        seconds = ended - exchange.started_at
        self._count(
            exchange.outcome,
            exchange.request.target,
            exchange.sent,
            exchange.status,
            seconds,
            exchange.route,
        )
        if exchange.upstream_time is not None:
            UPSTREAM_SECONDS.observe(exchange.upstream_time)
        if self.style != "off":
            super().finished(exchange, ended)
