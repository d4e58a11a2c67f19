"""Request metrics through a real proxy: status classes, client-side latency and the
route of each answer, counted on the hit path at the cost of dict increments and
brought into Prometheus once a second (and at each scrape)."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.proxy.conftest import start_proxy
from tests.proxy.origin import Origin


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def test_status_classes_latency_and_routes_are_counted(origin: Origin, tmp_path: Path) -> None:
    config = tmp_path / "routes.toml"
    config.write_text(
        f'[[pool]]\nname = "app"\nservers = ["{origin.url}"]\n\n'
        '[[route]]\npath = "/api/"\npool = "app"\n\n'
        '[[route]]\npath = "/"\npool = "app"\n'
    )
    args = ("--config", str(config), "--admin-token", "tok")
    with start_proxy(tmp_path, *args) as proxy, httpx.Client(base_url=proxy.url) as client:
        for _ in range(3):
            client.get("/cached?m=1")  # a miss, then two hits
        client.get("/api/nothing-here")  # the origin's 404
        client.get("/api/slow?s=0.2")
        scrape = client.get("/_edgecache/metrics", headers={"authorization": "Bearer tok"}).text
    responses = _samples(scrape, "edgecache_responses_total")
    assert responses[(("route", "/"), ("status_class", "2xx"))] == 3
    assert responses[(("route", "/api/"), ("status_class", "4xx"))] == 1
    assert responses[(("route", "/api/"), ("status_class", "2xx"))] == 1
    assert responses[(("route", "/"), ("status_class", "4xx"))] == 1  # the start-up probe
    counts = _samples(scrape, "edgecache_request_seconds_count")
    assert counts[(("route", "/"),)] == 4 and counts[(("route", "/api/"),)] == 2
    buckets = _samples(scrape, "edgecache_request_seconds_bucket")
    # The slow answer took 0.2 s: under the 0.25 s bound, not under 0.1 s.
    assert buckets[(("le", "0.1"), ("route", "/api/"))] == 1
    assert buckets[(("le", "0.25"), ("route", "/api/"))] == 2
    assert buckets[(("le", "+Inf"), ("route", "/"))] == 4
