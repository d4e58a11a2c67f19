"""Running the chain: uvicorn (httptools + uvloop) with TLS, workers, an HTTP->HTTPS
redirect listener and graceful shutdown. ``edgecache proxy`` and ``edgecache serve``.

Worker processes rebuild the app from ``EDGECACHE_*`` variables (the CLI exports what
its flags set), so every process runs the same validated settings.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import ssl
import sys
import tempfile
import threading
from typing import Any

import uvicorn

from edgecache.asgi.types import ASGIApp, Receive, Scope, Send
from edgecache.auth import check_user_file
from edgecache.config import Settings
from edgecache.errors import ConfigError
from edgecache.proxy.accesslog import AccessLogMiddleware
from edgecache.proxy.admin import AdminMiddleware
from edgecache.proxy.forward import Forwarder
from edgecache.proxy.router import Router
from edgecache.proxy.routes import load_routes
from edgecache.proxy.static import check_root
from edgecache.proxy.tls import MODERN_CIPHERS, harden, remove_at_exit, self_signed_files
from edgecache.settings.environ import APP_VARIABLE as APP_VARIABLE  # the runner imports it here
from edgecache.settings.fields import named
from edgecache.stack import EdgeCache, detect_interface
from edgecache.storage import Store


class HSTSMiddleware:
    """Strict-Transport-Security on every answer sent over TLS."""

    def __init__(self, app: ASGIApp, max_age: int) -> None:
        self.app = app
        self.value = f"max-age={max_age}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("scheme") != "https":
            await self.app(scope, receive, send)
            return

        async def with_hsts(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [*message["headers"], (b"strict-transport-security", self.value)],
                }
            await send(message)

        await self.app(scope, receive, with_hsts)


def build_app(
    settings: Settings, app: Any = None, *, wire: bool = False, store: Store | None = None
) -> ASGIApp:
    """The whole chain around ``app`` (a Python app for serve) or the upstream forwarder.
    ``wire``: for the wire layer, which adds HSTS and writes the access log itself.
    ``store``: the one to keep using (a reload keeps the cache); else one is made."""
    if app is None and settings.config:
        table = load_routes(settings.config, settings)
        return _outer(Router(table, settings, store=store), settings, wire)
    if app is None:
        if not settings.upstream:
            raise ConfigError("setting upstream (EDGECACHE_UPSTREAM, --upstream) is required")
        inner: Any = Forwarder(settings)
    elif detect_interface(app) == "wsgi":
        from a2wsgi import WSGIMiddleware

        inner = WSGIMiddleware(EdgeCache(app, settings=settings, store=store), workers=8)
        return _outer(inner, settings, wire)
    else:
        inner = app
    chain = EdgeCache(inner, settings=settings, interface="asgi", store=store)
    return _outer(chain, settings, wire)


def _outer(chain: ASGIApp, settings: Settings, wire: bool = False) -> ASGIApp:
    if settings.admin_token:
        chain = AdminMiddleware(chain, settings)
    if wire:
        return chain  # the wire layer counts and logs (proxy.traffic.CountingLog)
    if settings.hsts:
        chain = HSTSMiddleware(chain, settings.hsts)
    # Always: the counters run without an admin token too (for the status page).
    return AccessLogMiddleware(chain, settings.access_log)


def create_app() -> ASGIApp:
    """Factory for worker processes: settings and app from the environment."""
    from edgecache.apps import load_app

    spec = os.environ.get(APP_VARIABLE)
    settings = Settings.from_env(warn_unknown=False)  # the starting process warned
    app = build_app(settings, load_app(spec) if spec else None)
    # Everything built so far lives as long as the process: keep the collector from
    # walking it again and again, and collect young garbage less often. Measured on the
    # proxy's miss path: +5% requests/s, p99 21 ms -> 9 ms (benchmarks/proxy.py).
    gc.collect()
    gc.freeze()
    gc.set_threshold(7000, 20, 20)
    return app


class _Config(uvicorn.Config):
    """uvicorn's config with our TLS context hardened after it is built (in every
    worker, since each loads its own)."""

    def load(self) -> None:
        super().load()
        if isinstance(self.ssl, ssl.SSLContext):
            harden(self.ssl)


def redirect_app(https_port: int) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        host = dict(scope["headers"]).get(b"host", b"localhost").decode("latin-1")
        host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        port = "" if https_port == 443 else f":{https_port}"
        path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        if scope.get("query_string"):
            path += "?" + scope["query_string"].decode("latin-1")
        location = f"https://{host}{port}{path}".encode("latin-1")
        await send(
            {
                "type": "http.response.start",
                "status": 308,
                "headers": [(b"location", location), (b"content-length", b"0")],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    return app


def check_port_free(host: str, port: int, setting: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"setting {setting}: cannot listen on {host}:{port}: {exc.strerror}"
            ) from None


def preflight(settings: Settings, ports: bool = True) -> Settings:
    """Everything that can be checked before serving, with errors naming the setting.

    The chain is not built here: each server process builds it once, when it starts
    serving. Building it here as well would make a store twice (a Redis store starts two
    threads, which leaked) and load every user file twice; ``check_chain`` finds what
    building it would refuse instead."""
    if ports:  # not for check-config: the server checked may be running on them
        check_port_free(settings.listen_host, settings.listen_port, "listen_port (--port)")
    if settings.redirect_http_port:
        if not (settings.certfile or settings.self_signed):
            raise ConfigError("setting redirect_http_port needs TLS (--certfile or --self-signed)")
        if ports:
            check_port_free(settings.listen_host, settings.redirect_http_port, "redirect_http_port")
    for name in ("certfile", "keyfile"):
        path = getattr(settings, name)
        if path and not os.access(path, os.R_OK):
            raise ConfigError(
                f"setting {name} (EDGECACHE_{name.upper()}, --{name}): "
                f"{path!r} does not exist or cannot be read"
            )
    if settings.certfile:
        try:
            harden(ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)).load_cert_chain(
                settings.certfile, settings.keyfile
            )
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"setting certfile/keyfile: cannot load them: {exc}") from None
    check_chain(settings)
    return settings


def share_metrics(settings: Settings) -> None:
    """With several workers, a directory where each writes its counters (the
    exposition and the status page sum them), removed when this process exits."""
    if settings.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        folder = tempfile.mkdtemp(prefix="edgecache-metrics-")
        remove_at_exit(folder)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder


def check_chain(settings: Settings) -> None:
    """What ``build_app`` would refuse, found without making a store, pool or thread:
    the route file, static roots, user files and the disk store's directory."""
    every = [settings]
    if settings.config:
        table = load_routes(settings.config, settings)
        every += [route.settings for route in table.routes if route.settings is not None]
        for route in table.routes:
            if route.static is not None:
                check_root(route.static)
    for rule in {rule for part in every for rule in part.auth}:
        check_user_file(rule.user_file)
    if settings.store == "disk":
        try:
            os.makedirs(settings.store_path, exist_ok=True)
            writable = os.access(settings.store_path, os.W_OK)
        except OSError:
            writable = False
        if not writable:
            raise named(Settings, "store_path").fail(
                settings.store_path, "a directory that can be created and written"
            )


def run(settings: Settings, app_spec: str | None = None, log_level: str = "info") -> int:
    """Serve until SIGTERM/SIGINT; in-flight requests finish first (up to 30 s)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    preflight(settings)
    share_metrics(settings)
    certfile, keyfile = settings.certfile, settings.keyfile
    if settings.self_signed and not certfile:
        certfile, keyfile = self_signed_files(["localhost", "127.0.0.1", "::1"])
    if app_spec:
        os.environ[APP_VARIABLE] = app_spec
    if settings.redirect_http_port:
        _start_redirect(settings)
    config = _Config(
        "edgecache.proxy.server:create_app",
        factory=True,
        host=settings.listen_host,
        port=settings.listen_port,
        workers=settings.workers,
        http="httptools",
        loop="uvloop",
        lifespan="on" if not app_spec else "auto",
        log_level=log_level,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=30,
        ssl_certfile=certfile or None,
        ssl_keyfile=keyfile or None,
        ssl_ciphers=MODERN_CIPHERS,
    )
    scheme = "https" if certfile else "http"
    target = settings.upstream or app_spec or settings.config
    print(
        f"edgecache: {scheme}://{settings.listen_host}:{settings.listen_port} -> {target} "
        f"({settings.store} cache, {settings.workers} worker(s))",
        file=sys.stderr,
    )
    server = uvicorn.Server(config)
    if settings.workers > 1:
        sock = config.bind_socket()
        uvicorn.supervisors.Multiprocess(config, sockets=[sock]).run()
    else:
        server.run()
    return 0


def _start_redirect(settings: Settings) -> None:
    config = uvicorn.Config(
        redirect_app(settings.listen_port),
        host=settings.listen_host,
        port=settings.redirect_http_port,
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, name="edgecache-redirect", daemon=True).start()
