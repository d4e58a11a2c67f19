"""One app worker process of ``edgecache serve``: the app on a unix socket that the
edge bound and passed in, served by uvicorn (ASGI apps, or WSGI through a2wsgi) or by
gunicorn (WSGI apps: an arbiter with one worker of ``--worker-class``).

    python -m edgecache.serve.worker SERVER SPEC LISTEN_FD READY_FD [WORKER_CLASS]

The edge owns the listening socket, so while a worker restarts, connections wait in its
backlog instead of being refused. The worker writes one byte to READY_FD once it
accepts. It dies with the edge (``PR_SET_PDEATHSIG``), so a killed edge leaves no app
process behind. SIGTERM: stop accepting, finish the requests under way (up to 30 s).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
from typing import Any

GRACE = 30
"""Seconds in-flight requests get to finish on SIGTERM."""
PARENT = "_EDGECACHE_SERVE_PARENT"
"""The edge's pid, so that a worker whose edge died before ``die_with_parent`` exits."""
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """SIGTERM when the parent (thread) exits (Linux; elsewhere a no-op)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return


def say_ready(ready_fd: int) -> None:
    try:
        os.write(ready_fd, b"r")
        os.close(ready_fd)
    except OSError:  # the edge stopped listening for it (a later gunicorn re-fork)
        pass


def run_uvicorn(spec: str, listen_fd: int, ready_fd: int, wsgi: bool) -> None:
    import uvicorn

    from edgecache.apps import load_app

    app: Any = load_app(spec)
    if wsgi:
        from a2wsgi import WSGIMiddleware

        app = WSGIMiddleware(app, workers=8)

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if not self.should_exit:
                say_ready(ready_fd)

    config = uvicorn.Config(
        app,
        fd=listen_fd,
        loop="uvloop",
        http="httptools",
        lifespan="auto",
        access_log=False,
        log_level="warning",
        proxy_headers=False,
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=GRACE,
    )
    Server(config).run()


def run_gunicorn(spec: str, listen_fd: int, ready_fd: int, worker_class: str) -> None:
    from gunicorn.app.base import BaseApplication

    from edgecache.apps import load_app

    class Application(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            options = {
                "bind": [f"fd://{listen_fd}"],
                "workers": 1,
                "worker_class": worker_class,
                "graceful_timeout": GRACE,
                "loglevel": "warning",
                "accesslog": None,
                # The gunicorn worker dies with its arbiter, and says when it accepts.
                "post_fork": lambda server, worker: die_with_parent(),
                "post_worker_init": lambda worker: say_ready(ready_fd),
            }
            for name, value in options.items():
                self.cfg.set(name, value)

        def load(self) -> Any:
            return load_app(spec)

    sys.argv = [sys.argv[0]]  # gunicorn parses argv for its own flags
    Application().run()


def main(argv: list[str]) -> None:
    die_with_parent()
    if os.environ.get(PARENT) and os.getppid() != int(os.environ[PARENT]):
        sys.exit(1)  # the edge is gone already
    server, spec, listen_fd, ready_fd, *rest = argv
    if server == "gunicorn":
        run_gunicorn(spec, int(listen_fd), int(ready_fd), rest[0] if rest else "sync")
    else:
        run_uvicorn(spec, int(listen_fd), int(ready_fd), wsgi=server == "uvicorn-wsgi")


if __name__ == "__main__":
    main(sys.argv[1:])
