"""Prometheus metrics (prometheus_client). With several worker processes the runner sets
``PROMETHEUS_MULTIPROC_DIR`` before they start, and the exposition sums them."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

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
UPSTREAM_BYTES = Counter(
    "edgecache_upstream_response_bytes", "Response body bytes received from upstreams"
)


OUTCOMES = ("hit", "stale", "miss", "pass", "none")
REQUESTS_BY_OUTCOME = {name: REQUESTS.labels(name) for name in OUTCOMES}
"""Labelled children resolved once: ``labels()`` per request costs a lock and a tuple."""


def outcome(cache_status: str) -> str:
    """hit, stale, miss, pass or none, from this cache's Cache-Status member."""
    if not cache_status:
        return "none"
    if "; hit" in cache_status:
        return "stale" if "detail=stale" in cache_status else "hit"
    if "stored" in cache_status:
        return "miss"
    return "pass"


def exposition() -> tuple[bytes, str]:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
