"""``edgecache proxy`` (and the edge of ``edgecache serve``, in front of its app
workers): the edge chain (``build_app``) on the wire layer, on uvloop, with the proxy's
own handler (``proxy.handler``) in front of it.

The one module of ``edgecache.wire`` that knows the proxy: it wires the two together.
It binds the listening sockets (and the redirect listener's), builds the TLS context
(``harden``: TLS 1.2+, ALPN h2 and http/1.1), and serves in this process, or in ``workers``
processes sharing the sockets under a supervisor that restarts a worker that died and
stops them all on SIGTERM. Workers are fresh interpreters (fork + exec of
``python -m edgecache.wire.runner``) rather than bare forks: prometheus_client picks
its multi-process mode when it is first imported, which in this process has happened.

SIGTERM: stop accepting, let answers under way finish (up to 30 s), then exit 0.
"ready" is printed once every listening socket is served.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import logging
import os
import resource
import select
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from edgecache.config import Settings
from edgecache.errors import ConfigError
from edgecache.proxy.handler import EdgeHandler
from edgecache.proxy.reload import Reloader
from edgecache.proxy.server import build_app, preflight, share_metrics
from edgecache.proxy.tls import harden, remove_at_exit, self_signed_files
from edgecache.proxy.traffic import CountingLog
from edgecache.storage import Store
from edgecache.wire.config import WireConfig
from edgecache.wire.redirect import RedirectHandler
from edgecache.wire.server import WireServer

log = logging.getLogger("edgecache.wire")

_FDS = "_EDGECACHE_WIRE_FDS"
"""For a worker: the inherited listening sockets, ``main[,redirect][,h2c]``, and the pipe
on which it says it is ready."""


class JsonLines:
    """stderr for ``--access-log json``: every line the process writes is JSON. Lines
    that are not (log messages, warnings, tracebacks) become {"message": ...}."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._partial = ""

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        out = []
        for line in lines:
            if line.startswith("{") and line.endswith("}"):
                out.append(line)
            elif line:
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
                out.append(json.dumps({"time": stamp, "message": line}, separators=(",", ":")))
        if out:
            self.stream.write("\n".join(out) + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _setup_logging(settings: Settings, log_level: str) -> None:
    if settings.access_log == "json" and not isinstance(sys.stderr, JsonLines):
        sys.stderr = JsonLines(sys.stderr)
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(message)s",
        stream=sys.stderr,
        force=True,
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.set_inheritable(True)
    return sock


def _raise_fd_limit(settings: Settings) -> int:
    """Room for every allowed connection (a client socket, perhaps an upstream one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    room = max(16, (soft - 64) // 2)
    if settings.max_connections > room:
        log.warning(
            "wire: max_connections %d lowered to %d: the open-files limit is %d",
            settings.max_connections,
            room,
            soft,
        )
        return room
    return settings.max_connections


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.certfile:
        return None
    alpn = ("h2", "http/1.1") if settings.http2 else ("http/1.1",)
    context = harden(ssl.create_default_context(ssl.Purpose.CLIENT_AUTH), alpn)
    context.load_cert_chain(settings.certfile, settings.keyfile)
    return context


def _handler(settings: Settings, store: Store | None = None) -> EdgeHandler:
    app = build_app(settings, store=store)
    # What is built now lives as long as the process: keep the collector from walking
    # it again and again, and collect young garbage less often (measured on the miss
    # path under uvicorn: +5% requests/s, p99 21 ms -> 9 ms).
    gc.collect()
    gc.freeze()
    gc.set_threshold(7000, 20, 20)
    return EdgeHandler(
        app,
        lifespan="on",
        server=(settings.listen_host, settings.listen_port),
    )


def run(
    settings: Settings,
    log_level: str = "info",
    on_reload: Callable[[], None] | None = None,
) -> int:
    """Serve until SIGTERM/SIGINT; in-flight requests finish first (up to 30 s).
    ``on_reload`` is called on SIGHUP too, beside the reload in place (serve's app
    workers are replaced then); it must return at once."""
    _setup_logging(settings, log_level)
    preflight(settings)
    share_metrics(settings)
    settings = share_cache(settings)
    if settings.self_signed and not settings.certfile:
        certfile, keyfile = self_signed_files(["localhost", "127.0.0.1", "::1"])
        os.environ["EDGECACHE_CERTFILE"], os.environ["EDGECACHE_KEYFILE"] = certfile, keyfile
        settings = Settings.from_env()
    socks = [_bind(settings.listen_host, settings.listen_port)]
    if settings.redirect_http_port:
        socks.append(_bind(settings.listen_host, settings.redirect_http_port))
    if settings.http2_cleartext_port:
        socks.append(_bind(settings.listen_host, settings.http2_cleartext_port))
    scheme = "https" if settings.certfile else "http"
    target = settings.upstream or settings.config
    print(
        f"edgecache: {scheme}://{settings.listen_host}:{settings.listen_port} -> {target} "
        f"({settings.store} cache, {settings.workers} worker(s), wire server)",
        file=sys.stderr,
        flush=True,
    )
    with _pid_file(settings.pid_file):
        if settings.workers == 1:
            serve(settings, socks, None, on_reload)
        else:
            _supervise(settings, socks, on_reload)
    return 0


@contextlib.contextmanager
def _pid_file(path: str) -> Iterator[None]:
    """This process's id in ``path`` while it serves (``edgecache reload`` reads it)."""
    if not path:
        yield
        return
    try:
        with open(path, "w") as f:
            f.write(f"{os.getpid()}\n")
    except OSError as exc:
        raise ConfigError(f"setting pid_file (--pid-file): cannot write {path!r}: {exc}") from None
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def share_cache(settings: Settings) -> Settings:
    """With several workers, the memory store becomes the shared one (LMDB in a
    folder removed at exit), so that a URL costs one miss in all and a purge reaches
    every worker; the workers read it from the environment."""
    if settings.workers == 1 or settings.store != "memory":
        return settings
    folder = tempfile.mkdtemp(prefix="edgecache-cache-")
    remove_at_exit(folder)
    os.environ["EDGECACHE_STORE"], os.environ["EDGECACHE_STORE_PATH"] = "shared", folder
    return dataclasses.replace(settings, store="shared", store_path=folder)


def serve(
    settings: Settings,
    socks: list[socket.socket],
    ready_fd: int | None,
    on_reload: Callable[[], None] | None = None,
) -> None:
    """One process's server (and redirect listener) on uvloop, until SIGTERM."""
    import uvloop

    cap = _raise_fd_limit(settings)
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_serve(settings, socks, ready_fd, cap, on_reload))
    finally:
        loop.close()


async def _serve(
    settings: Settings,
    socks: list[socket.socket],
    ready_fd: int | None,
    cap: int,
    on_reload: Callable[[], None] | None,
) -> None:
    loop = asyncio.get_running_loop()
    config = dataclasses.replace(WireConfig.from_settings(settings), max_connections=cap)
    # Counts every answer (the status page), with or without an admin token or a log.
    access = CountingLog(settings.access_log)
    server = WireServer(_handler(settings), config, access)
    await server.start()
    tls = _tls_context(settings)
    server.listen(socks[0], tls)
    reloader = Reloader(server, _handler, tls)

    reloads: set[asyncio.Task[bool]] = set()  # held until done (the loop keeps weak refs)

    def reload() -> None:
        task = loop.create_task(reloader.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)
        if on_reload is not None:
            on_reload()

    loop.add_signal_handler(signal.SIGHUP, reload)
    servers = [server]
    if settings.redirect_http_port:
        redirect = WireServer(RedirectHandler(settings.listen_port), WireConfig(hsts=0))
        await redirect.start()
        redirect.listen(socks[1])
        servers.append(redirect)
    if settings.http2_cleartext_port:
        server.listen(socks[-1], None, h2c=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if ready_fd is None:
        print("edgecache: ready", file=sys.stderr, flush=True)
    else:
        os.write(ready_fd, b"r")
        os.close(ready_fd)
    await stop.wait()
    await asyncio.gather(*(s.shutdown() for s in servers))


# -- several workers -----------------------------------------------------------------


def _supervise(
    settings: Settings, socks: list[socket.socket], on_reload: Callable[[], None] | None
) -> None:
    """Start the workers, restart one that dies, stop them all on SIGTERM/SIGINT."""
    stopping = False
    children: dict[int, subprocess.Popen[bytes]] = {}
    ready_r, ready_w = os.pipe()

    def spawn() -> None:
        env = {**os.environ, _FDS: ",".join(str(s.fileno()) for s in socks) + f";{ready_w}"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "edgecache.wire.runner"],
            env=env,
            pass_fds=[*(s.fileno() for s in socks), ready_w],
        )
        children[proc.pid] = proc

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True  # the loop below tells every worker, those starting too

    def reload(signum: int, frame: Any) -> None:
        for proc in children.values():  # each worker reloads itself, keeping its cache
            proc.send_signal(signal.SIGHUP)
        if on_reload is not None:
            on_reload()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reload)
    for _ in range(settings.workers):
        spawn()
    ready = 0
    while ready < settings.workers and not stopping:
        if select.select([ready_r], [], [], 0.5)[0]:
            ready += len(os.read(ready_r, 64))
        elif any(proc.poll() is not None for proc in children.values()):
            break  # one died before it was ready: the loop below starts another
    if not stopping:
        print("edgecache: ready", file=sys.stderr, flush=True)
    told: set[int] = set()
    while children:
        if stopping:
            # Here, not in the handler: a SIGTERM that came while a replacement was
            # being started reaches it too (the handler saw the workers of its moment).
            for pid in children.keys() - told:
                children[pid].send_signal(signal.SIGTERM)
                told.add(pid)
        # Each worker is waited for by its own pid, not with os.wait(): the process
        # may have other children (edgecache serve's app workers) that are not ours.
        exited = [(pid, p.returncode) for pid, p in children.items() if p.poll() is not None]
        if not exited:
            time.sleep(0.1)
        for pid, status in exited:
            children.pop(pid)
            if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
                from prometheus_client import multiprocess

                # Its live gauges go; its counters stay in the sums (they happened).
                multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
            if not stopping:
                log.warning("wire: worker %d exited (%d); starting another", pid, status)
                time.sleep(0.5)
                if not stopping:
                    spawn()
    os.close(ready_r)
    os.close(ready_w)


def _worker_main() -> None:
    socks_text, ready_text = os.environ.pop(_FDS).split(";")
    socks = [socket.socket(fileno=int(fd)) for fd in socks_text.split(",")]
    settings = Settings.from_env(warn_unknown=False)  # the supervisor warned
    _setup_logging(settings, settings.log_level)
    serve(settings, socks, int(ready_text))


if __name__ == "__main__":
    _worker_main()
