"""The status page (``/_edgecache/``) and its JSON twin (``/_edgecache/status.json``):
what a person wants at a glance, read from the counters (``traffic.py``), the
Prometheus registry, the store and the pools. Server-rendered; the chart is inline SVG.
"""

from __future__ import annotations

import html
import math
import os
import string
import time
from importlib import resources
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess

from edgecache.config import Settings
from edgecache.metrics import OUTCOMES
from edgecache.proxy.forward import Forwarder
from edgecache.proxy.traffic import RING_SECONDS, TOP_URLS, Traffic, all_snapshots, top
from edgecache.stack import cache_layers, find_layers

CHART_BUCKET = 10
"""Seconds per point of the chart: per-second hit ratios are too noisy to read."""
CHART_WIDTH, CHART_HEIGHT = 600, 140


def status(app: Any, settings: Settings, traffic: Traffic) -> dict[str, Any]:
    """Everything the page shows, JSON-ready. Counts cover every worker; the store is
    this worker's (each worker has its own store unless it is Redis or disk)."""
    snapshots = all_snapshots(traffic)
    totals = {name: sum(s["totals"].get(name, 0) for s in snapshots) for name in OUTCOMES}
    now = int(time.time())
    return {
        "pid": os.getpid(),
        "workers": settings.workers,
        "uptime_seconds": round(time.time() - traffic.started, 1),
        "requests": totals,
        "hit_ratio": hit_ratio(totals),
        "bytes_sent": sum(s["totals"].get("bytes", 0) for s in snapshots),
        "compression_saved_bytes": int(_sample("edgecache_compression_saved_bytes_total")),
        "store": _store(app, settings),
        "pools": _pools(app),
        "top_hits": top(_merge(snapshots, "hits"), TOP_URLS),
        "top_misses": top(_merge(snapshots, "misses"), TOP_URLS),
        "series": _series(snapshots, now),
    }


def hit_ratio(counts: dict[str, int]) -> float | None:
    """Answers from the cache (fresh or stale) over those that could have been: the
    uncacheable ones the cache never saw (``none``: admin, errors before it) are out."""
    served = counts.get("hit", 0) + counts.get("stale", 0)
    asked = served + counts.get("miss", 0) + counts.get("pass", 0)
    return round(served / asked, 4) if asked else None


def _sample(name: str) -> float:
    registry = REGISTRY
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry.get_sample_value(name) or 0.0


def _merge(snapshots: list[dict[str, Any]], field: str) -> dict[str, int]:
    merged: dict[str, int] = {}
    for snap in snapshots:
        for url, n in snap[field].items():
            merged[url] = merged.get(url, 0) + n
    return merged


def _series(snapshots: list[dict[str, Any]], now: int) -> dict[str, Any]:
    """Per-second requests and cache answers over the last ``RING_SECONDS``, summed
    over the workers (a second nobody counted is 0)."""
    start = now - RING_SECONDS
    requests, served = [0] * RING_SECONDS, [0] * RING_SECONDS
    asked = [0] * RING_SECONDS
    for snap in snapshots:
        for second, row in snap["series"]:
            i = second - start
            if 0 <= i < RING_SECONDS:
                requests[i] += sum(row.get(name, 0) for name in OUTCOMES)
                served[i] += row.get("hit", 0) + row.get("stale", 0)
                asked[i] += sum(row.get(name, 0) for name in ("hit", "stale", "miss", "pass"))
    return {"start": start, "requests": requests, "served": served, "cacheable": asked}


def _store(app: Any, settings: Settings) -> dict[str, Any]:
    stores = {id(layer.engine.store): layer.engine.store for layer in cache_layers(app)}
    found = next(iter(stores.values()), None)
    entries = nbytes = None
    if found is not None:
        entries = len(found)
        nbytes = getattr(found, "nbytes", None)
    return {
        "kind": settings.store if found is not None else "none",
        "entries": entries,
        "bytes": nbytes,
        "max_bytes": settings.max_bytes,
    }


def _pools(app: Any) -> list[dict[str, Any]]:
    names: dict[int, str] = {}
    for router in find_layers(app, lambda layer: isinstance(getattr(layer, "pools", None), dict)):
        names.update({id(forwarder): name or "default" for name, forwarder in router.pools.items()})
    now = time.monotonic()
    pools = []
    for forwarder in find_layers(app, lambda layer: isinstance(layer, Forwarder)):
        members = []
        for member in forwarder.balancer.members:
            if member.down_until == math.inf:
                state = "down (health check failed)"
            elif member.down_until > now:
                state = f"down for {member.down_until - now:.0f} s more"
            elif member.failures:
                state = f"up, {len(member.failures)} recent failure(s)"
            else:
                state = "up"
            members.append(
                {
                    "url": member.url,
                    "weight": member.weight,
                    "up": member.down_until <= now,
                    "state": state,
                    "in_flight": member.active,
                }
            )
        pools.append({"name": names.get(id(forwarder), "default"), "members": members})
    return pools


# -- the page ------------------------------------------------------------------------


def render(data: dict[str, Any], csrf: str, notice: str = "") -> str:
    """The HTML page for ``status(...)``'s data; ``csrf`` goes into the purge form."""
    template = string.Template(resources.files(__package__).joinpath("status.html").read_text())
    requests = data["requests"]
    total = sum(requests.values()) or 1
    rows = "".join(
        f"<tr><td>{name}</td><td>{n}</td><td>{100 * n / total:.1f}%</td></tr>"
        for name, n in requests.items()
    )
    store = data["store"]
    return template.substitute(
        notice=f'<p class="notice">{html.escape(notice)}</p>' if notice else "",
        hit_ratio=_percent(data["hit_ratio"]),
        workers=data["workers"],
        pid=data["pid"],
        uptime=_duration(data["uptime_seconds"]),
        chart=chart(data["series"]),
        outcomes=rows,
        sent=_size(data["bytes_sent"]),
        saved=_size(data["compression_saved_bytes"]),
        store=_store_text(store),
        store_fill=_store_fill(store),
        pools=_pools_html(data["pools"]),
        top_hits=_urls_html(data["top_hits"]),
        top_misses=_urls_html(data["top_misses"]),
        csrf=html.escape(csrf),
    )


def chart(series: dict[str, Any]) -> str:
    """Requests/s (blue, left scale) and hit ratio (green, 0-100%) in 10 s steps."""
    points_rps, points_ratio = [], []
    steps = RING_SECONDS // CHART_BUCKET
    rates = []
    for i in range(steps):
        part = slice(i * CHART_BUCKET, (i + 1) * CHART_BUCKET)
        rates.append(sum(series["requests"][part]) / CHART_BUCKET)
        asked = sum(series["cacheable"][part])
        ratio = sum(series["served"][part]) / asked if asked else None
        x = round(i * CHART_WIDTH / (steps - 1), 1)
        if ratio is not None:
            points_ratio.append(f"{x},{round(CHART_HEIGHT * (1 - ratio), 1)}")
        points_rps.append(x)
    peak = max(rates) or 1.0
    rps = " ".join(
        f"{x},{round(CHART_HEIGHT * (1 - rate / peak), 1)}"
        for x, rate in zip(points_rps, rates, strict=True)
    )
    minutes = RING_SECONDS // 60
    return (
        f'<svg id="chart" viewBox="-40 -10 {CHART_WIDTH + 90} {CHART_HEIGHT + 30}" '
        f'role="img" aria-label="requests per second and hit ratio, last {minutes} minutes">'
        f'<rect x="0" y="0" width="{CHART_WIDTH}" height="{CHART_HEIGHT}" class="frame"/>'
        f'<polyline class="rps" points="{rps}"/>'
        f'<polyline class="ratio" points="{" ".join(points_ratio)}"/>'
        f'<text x="-4" y="8" class="left">{peak:.1f}/s</text>'
        f'<text x="-4" y="{CHART_HEIGHT}" class="left">0</text>'
        f'<text x="{CHART_WIDTH + 4}" y="8">100%</text>'
        f'<text x="{CHART_WIDTH + 4}" y="{CHART_HEIGHT}">0%</text>'
        f'<text x="0" y="{CHART_HEIGHT + 18}">-{minutes} min</text>'
        f'<text x="{CHART_WIDTH}" y="{CHART_HEIGHT + 18}" class="left">now</text>'
        "</svg>"
    )


def _pools_html(pools: list[dict[str, Any]]) -> str:
    if not pools:
        return "<p>No upstream pools (static files or an app behind the edge).</p>"
    rows = "".join(
        f'<tr class="{"up" if m["up"] else "down"}"><td>{html.escape(pool["name"])}</td>'
        f"<td>{html.escape(m['url'])}</td><td>{m['weight']}</td>"
        f"<td>{html.escape(m['state'])}</td><td>{m['in_flight']}</td></tr>"
        for pool in pools
        for m in pool["members"]
    )
    return (
        "<table><tr><th>pool</th><th>member</th><th>weight</th><th>health</th>"
        f"<th>in flight</th></tr>{rows}</table>"
    )


def _urls_html(urls: list[tuple[str, int]]) -> str:
    if not urls:
        return "<p>None yet.</p>"
    rows = "".join(f"<tr><td>{n}</td><td><code>{html.escape(u)}</code></td></tr>" for u, n in urls)
    return f"<table>{rows}</table>"


def _store_text(store: dict[str, Any]) -> str:
    if store["kind"] == "none":
        return "no cache on these routes"
    used = "?" if store["bytes"] is None else _size(store["bytes"])
    return f"{store['kind']}: {store['entries']} entries, {used} of {_size(store['max_bytes'])}"


def _store_fill(store: dict[str, Any]) -> str:
    if store["bytes"] is None:
        return "0"
    return f"{min(100.0, 100 * store['bytes'] / store['max_bytes']):.1f}"


def _percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{100 * ratio:.1f}%"


def _size(n: float) -> str:
    units = ("B", "KiB", "MiB", "GiB")
    step = 0
    while n >= 1024 and step < len(units) - 1:
        n, step = n / 1024, step + 1
    return f"{n:.0f} B" if step == 0 else f"{n:.1f} {units[step]}"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"
