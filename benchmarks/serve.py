"""``edgecache serve`` against gunicorn alone and against nginx + gunicorn, on a Flask
page, in one run: the servers (and their app workers) on core 0, wrk on core 1.

- gunicorn alone, 2 sync workers (no cache: every request runs the app);
- nginx (1 worker, ``proxy_cache``) in front of the same gunicorn;
- ``edgecache serve --workers 2`` (2 gunicorn sync workers behind one edge), and the
  same with the workers under uvicorn + a2wsgi (keep-alive from the edge);
- goal: serve's hits >= nginx + gunicorn's, and misses >= 0.8x theirs;
- ``edgecache proxy`` in front of gunicorn: ``--workers 2`` (the shared store) against
  one process with the memory store, hits only: the shared cache's hit cost.

    python -m benchmarks.serve [--seconds 5]
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

from benchmarks.common import edgecache_proxy, free_port, nginx, pinned_module, wrk

SPEC = "benchmarks.flask_page:app"
NGINX_CONF = """
proxy_cache_path {tmp}/cache levels=1:2 keys_zone=c:10m max_size=100m inactive=1h;
upstream app {{ server 127.0.0.1:{upstream}; }}
server {{
    listen 127.0.0.1:{port};
    access_log off;
    location / {{ proxy_pass http://app; proxy_cache c; proxy_http_version 1.1; }}
}}
"""


def gunicorn(core: int = 0) -> contextlib.AbstractContextManager[int]:
    port = free_port()
    args = ["gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "--log-level", "warning", SPEC]
    return pinned_module(args, port, core)


@contextlib.contextmanager
def serve(*extra: str, core: int = 0) -> Iterator[int]:
    port = free_port()
    args = ["edgecache", "serve", SPEC, "--workers", "2", "--port", str(port), *extra]
    with pinned_module([*args, "--access-log", "off", "--log-level", "warning"], port, core):
        yield port


def measure(port: int, seconds: int) -> tuple[float, float]:
    """Requests/s of hits (``/page``, warmed) and of misses (``/miss``)."""
    wrk(f"http://127.0.0.1:{port}/page", 1, 4)
    hits = wrk(f"http://127.0.0.1:{port}/page", seconds, 32)["rps"]
    misses = wrk(f"http://127.0.0.1:{port}/miss", seconds, 16)["rps"]
    return hits, misses


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    seconds = parser.parse_args().seconds
    rows: dict[str, tuple[float, float]] = {}
    with gunicorn() as port:
        rows["gunicorn alone (2 sync workers)"] = measure(port, seconds)
        with nginx(NGINX_CONF, upstream=port) as front:
            rows["nginx proxy_cache + gunicorn"] = measure(front, seconds)
        with edgecache_proxy("--upstream", f"http://127.0.0.1:{port}") as proxy:
            proxy_one = measure(proxy, seconds)[0]
        with edgecache_proxy("--upstream", f"http://127.0.0.1:{port}", "--workers", "2") as proxy:
            proxy_two = measure(proxy, seconds)[0]
    with serve() as port:
        rows["edgecache serve --workers 2"] = measure(port, seconds)
    with serve("--wsgi-server", "uvicorn") as port:
        rows["  the same, uvicorn + a2wsgi"] = measure(port, seconds)
    base_hits, base_misses = rows["nginx proxy_cache + gunicorn"]
    print(f"{'':34} {'hits/s':>9} {'x nginx':>8} {'misses/s':>9} {'x nginx':>8}")
    for name, (hits, misses) in rows.items():
        print(
            f"{name:34} {hits:9.0f} {hits / base_hits:8.2f} "
            f"{misses:9.0f} {misses / base_misses:8.2f}"
        )
    print(
        f"edgecache proxy hits: 1 process, memory store {proxy_one:.0f}/s; "
        f"2 workers, shared store {proxy_two:.0f}/s ({proxy_two / proxy_one:.2f}x), "
        "all on one core"
    )


if __name__ == "__main__":
    main()
