"""Building the edge chain for ``edgecache proxy`` and ``edgecache serve``, and the checks
made before serving. The wire layer (``edgecache.wire.runner``) serves it: our own
HTTP/1.1 server with TLS, workers, the HTTP->HTTPS redirect and graceful shutdown.

Worker processes rebuild the chain from ``EDGECACHE_*`` variables (the CLI exports what
its flags set), so every process runs the same validated settings.
"""

from __future__ import annotations

import os
import socket
import ssl
import tempfile

from edgecache.asgi.types import ASGIApp
from edgecache.auth import check_user_file
from edgecache.config import Settings
from edgecache.errors import ConfigError
from edgecache.proxy.admin import AdminMiddleware
from edgecache.proxy.forward import Forwarder
from edgecache.proxy.router import Router
from edgecache.proxy.routes import load_routes
from edgecache.proxy.static import check_root
from edgecache.proxy.tls import harden, remove_at_exit
from edgecache.settings.fields import named
from edgecache.stack import EdgeCache
from edgecache.storage import Store


def build_app(settings: Settings, *, store: Store | None = None) -> ASGIApp:
    """The whole chain around the upstream forwarder (or the route file's router); the
    wire layer adds HSTS and counts and logs each answer itself. An app of
    ``edgecache serve`` runs in worker processes behind it, never in this process.
    ``store``: the one to keep using (a reload keeps the cache); else one is made."""
    if settings.config:
        table = load_routes(settings.config, settings)
        return _outer(Router(table, settings, store=store), settings)
    if not settings.upstream:
        raise ConfigError("setting upstream (EDGECACHE_UPSTREAM, --upstream) is required")
    chain = EdgeCache(Forwarder(settings), settings=settings, interface="asgi", store=store)
    return _outer(chain, settings)


def _outer(chain: ASGIApp, settings: Settings) -> ASGIApp:
    if settings.admin_token:
        chain = AdminMiddleware(chain, settings)
    return chain


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
