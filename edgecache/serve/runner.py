"""``edgecache serve module:app``: the app's workers behind one edge process.

1. The app is imported here once, to learn its interface and to refuse one that wraps
   itself in EdgeCache already (two caches stacked, each with its own rules).
2. ``AppWorkers`` starts ``workers`` processes on unix sockets and returns once each
   accepts: uvicorn for ASGI apps; gunicorn (``worker_class``, sync by default) or
   uvicorn + a2wsgi for WSGI apps (``wsgi_server``).
3. The edge is ``edgecache proxy`` over those sockets (the wire layer, one cache,
   least-connections balancing), so a hit never reaches an app process; it prints
   "ready" once it listens, which is after every worker accepts. ``edge_workers``
   edge processes share the cache as ``proxy --workers`` do (each balances over every
   app worker by its own count of requests in flight).
4. SIGHUP: the app workers are replaced one by one, each new one accepting before the
   old one drains (``AppWorkers.reload``): new app code with no request refused.
5. SIGTERM/SIGINT: the edge stops accepting and finishes its requests, then the workers
   are stopped and finish theirs.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import threading
from typing import Any

from edgecache.apps import load_app
from edgecache.config import ENV_PREFIX, Settings
from edgecache.errors import ConfigError
from edgecache.proxy.server import preflight
from edgecache.serve.workers import AppWorkers
from edgecache.stack import cache_layers, detect_interface
from edgecache.wire import runner as wire

log = logging.getLogger("edgecache.serve")


def refuse_wrapped(app: Any, spec: str) -> None:
    """ConfigError if ``app`` already runs EdgeCache's cache inside itself (directly,
    or as a Flask app's ``wsgi_app``)."""
    for candidate in (app, getattr(app, "wsgi_app", None)):
        if candidate is not None and cache_layers(candidate):
            raise ConfigError(
                f"app {spec!r} already wraps itself in EdgeCache: serve puts the cache in "
                "front, so two caches would stack. Serve the unwrapped app, or run the "
                "wrapped one under any server without edgecache serve."
            )


def app_server(settings: Settings, kind: str) -> str:
    """What runs the workers: see ``edgecache.serve.worker``."""
    if kind == "asgi":
        return "uvicorn"
    if settings.wsgi_server == "uvicorn":
        return "uvicorn-wsgi"
    from gunicorn.util import load_class

    try:  # a bad class fails here, named, rather than in every worker
        load_class(settings.worker_class, section="gunicorn.workers")
    except (RuntimeError, ImportError) as exc:
        raise ConfigError(
            f"setting worker_class ({ENV_PREFIX}WORKER_CLASS, --worker-class) = "
            f"{settings.worker_class!r}: not a gunicorn worker class ({exc})"
        ) from None
    return "gunicorn"


def run(settings: Settings, app_spec: str, log_level: str = "info") -> int:
    """Serve ``app_spec`` until SIGTERM/SIGINT."""
    app = load_app(app_spec)
    refuse_wrapped(app, app_spec)
    server = app_server(settings, detect_interface(app))
    preflight(settings)
    workers = AppWorkers(app_spec, server, settings.workers, settings.worker_class)
    label = f"{server} ({settings.worker_class})" if server == "gunicorn" else server
    print(
        f"edgecache: starting {settings.workers} {label} worker(s) for {app_spec}",
        file=sys.stderr,
        flush=True,
    )
    try:
        workers.start()
        upstream = ",".join(workers.upstreams)
        # The edge processes (and any worker of theirs) rebuild settings from these.
        os.environ[ENV_PREFIX + "UPSTREAM"] = upstream
        os.environ[ENV_PREFIX + "BALANCE"] = "least-conn"
        os.environ[ENV_PREFIX + "WORKERS"] = str(settings.edge_workers)
        os.environ.pop(ENV_PREFIX + "CONFIG", None)  # a route file is the proxy's, not ours
        edge = dataclasses.replace(
            settings, upstream=upstream, balance="least-conn", workers=settings.edge_workers
        )
        # SIGHUP: the edge reloads in place, and new app workers replace the old ones
        # without a gap (in a thread: the replacement waits for each to accept).
        return wire.run(
            edge,
            log_level=log_level,
            on_reload=lambda: threading.Thread(target=workers.reload, daemon=True).start(),
        )
    finally:
        workers.stop()
