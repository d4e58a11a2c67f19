"""Prometheus metrics (prometheus_client). With several worker processes the runner sets
``PROMETHEUS_MULTIPROC_DIR`` before they start, and the exposition sums them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from edgecache.core.exchange import Outcome

REQUESTS = Counter("edgecache_requests", "Requests by cache outcome", ["cache"])
BYTES_OUT = Counter("edgecache_response_bytes", "Response body bytes sent to clients")
BYTES_SAVED = Counter(
    "edgecache_compression_saved_bytes",
    "Bytes not sent thanks to content-coding (identity minus encoded)",
)
UPSTREAM_SECONDS = Histogram(
    "edgecache_upstream_seconds",
    "Time to the upstream's headers",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
STORE_ERRORS = Counter("edgecache_store_errors", "Failed calls to the shared store", ["op"])
AUTH_FAILURES = Counter("edgecache_auth_failures", "Refused basic-auth attempts")
STORE_WRITES = Counter("edgecache_store_writes", "Answers stored")
STORE_EVICTIONS = Counter(
    "edgecache_store_evictions", "Entries the memory store dropped to stay within max_bytes"
)
STORE_BYTES = Gauge(
    "edgecache_store_bytes", "Bytes held by the memory store", multiprocess_mode="livesum"
)
RESPONSES = Counter(
    "edgecache_responses", "Answers by status class and route", ["status_class", "route"]
)
LATENCY_BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
REQUEST_SECONDS = Histogram(
    "edgecache_request_seconds",
    "Client-side latency: request head parsed to the answer's last byte handed to the socket",
    ["route"],
    buckets=LATENCY_BOUNDS,
)
UPSTREAM_BYTES = Counter(
    "edgecache_upstream_response_bytes", "Response body bytes received from upstreams"
)


OUTCOMES = tuple(kind.value for kind in Outcome)
"""The labels: hit, stale, miss, pass, none (``core.exchange.Outcome``'s values)."""
REQUESTS_BY_OUTCOME = {name: REQUESTS.labels(name) for name in OUTCOMES}
"""Labelled children resolved once: ``labels()`` per request costs a lock and a tuple."""

LOG_NOTE = "edgecache.log"
"""Scope key of the per-request note that the access log (the outermost layer) puts in
the scope and reads back once the answer is sent."""
OUTCOME_NOTE = "outcome"


def note_outcome(scope: Mapping[str, Any] | None, outcome: Outcome) -> None:
    """Tell the access log what the cache did, as the enum (not Cache-Status text).
    The first outcome of a request stays: a background refresh shares its note."""
    note = scope.get(LOG_NOTE) if scope is not None else None
    if isinstance(note, dict):
        note.setdefault(OUTCOME_NOTE, outcome)


def outcome(noted: object) -> str:
    """The label of the cache's outcome for a request, as noted (``reply.outcome``,
    ``note_outcome``); "none" when no cache answered it. Cache-Status text is never
    read. ``_value_`` (the member's value) is a plain attribute: this runs per answer."""
    return noted._value_ if isinstance(noted, Outcome) else "none"


def exposition() -> tuple[bytes, str]:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
