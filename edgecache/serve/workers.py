"""The app workers behind the edge: started, awaited, restarted, stopped.

Each worker slot has a unix socket that this process binds and keeps open, and a thread
that starts the slot's process, waits for it to exit and starts another after a
back-off. Because the socket outlives its process, a request sent while a worker
restarts waits in the backlog for the next one rather than being refused; only the
requests the dead worker had taken fail (the edge answers those 502).

Workers run in their own session, so a terminal's Ctrl-C reaches the edge alone: the
edge finishes its requests first, then stops the workers (``stop``), which finish
theirs.
"""

from __future__ import annotations

import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

from edgecache.errors import ConfigError
from edgecache.serve.worker import GRACE, PARENT

log = logging.getLogger("edgecache.serve")

BACKOFF_FIRST = 0.1
BACKOFF_MAX = 10.0
"""Seconds before a crashed worker is restarted: doubling from the first to the max."""
STEADY = 10.0
"""A worker that ran this many seconds had started fine: its next crash backs off
from the first delay again."""
START_TIMEOUT = 60.0
"""Longest a worker may take to import the app and accept, seconds."""


@dataclass
class _Slot:
    index: int
    path: str
    sock: socket.socket
    proc: subprocess.Popen[bytes] | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    failed: str = ""
    restarts: int = 0


class AppWorkers:
    """``count`` processes running ``spec`` under ``server`` ("uvicorn" for an ASGI
    app, "uvicorn-wsgi" for WSGI through a2wsgi, "gunicorn" for WSGI)."""

    def __init__(self, spec: str, server: str, count: int, worker_class: str = "sync") -> None:
        self.spec = spec
        self.server = server
        self.worker_class = worker_class
        self.folder = tempfile.mkdtemp(prefix="edgecache-serve-")
        self.slots = [self._bind(i) for i in range(count)]
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def upstreams(self) -> list[str]:
        """The origins the edge forwards to, ``unix:/path``."""
        return [f"unix:{slot.path}" for slot in self.slots]

    def pids(self) -> list[int]:
        return [slot.proc.pid for slot in self.slots if slot.proc is not None]

    def _bind(self, index: int) -> _Slot:
        path = os.path.join(self.folder, f"app-{index}.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
        sock.listen(1024)
        sock.set_inheritable(True)
        return _Slot(index, path, sock)

    def start(self) -> None:
        """Start every worker and return once each accepts; ConfigError if one exits
        or hangs while starting (its output is above)."""
        for slot in self.slots:
            thread = threading.Thread(
                target=self._keep, args=(slot,), name=f"edgecache-app-{slot.index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        deadline = time.monotonic() + START_TIMEOUT
        for slot in self.slots:
            while not slot.ready.wait(0.1):
                if slot.failed or time.monotonic() > deadline:
                    self.stop()
                    why = slot.failed or f"not accepting after {START_TIMEOUT:.0f} s"
                    raise ConfigError(f"app {self.spec!r}: worker {slot.index} {why}")

    def _spawn(self, slot: _Slot) -> tuple[subprocess.Popen[bytes], int]:
        ready_r, ready_w = os.pipe()
        args = [self.server, self.spec, str(slot.sock.fileno()), str(ready_w)]
        if self.server == "gunicorn":
            args.append(self.worker_class)
        proc = subprocess.Popen(
            [sys.executable, "-m", "edgecache.serve.worker", *args],
            pass_fds=[slot.sock.fileno(), ready_w],
            env={**os.environ, PARENT: str(os.getpid())},
            start_new_session=True,
        )
        os.close(ready_w)
        return proc, ready_r

    def _keep(self, slot: _Slot) -> None:
        """The slot's thread: run a worker, and another whenever one exits."""
        delay = BACKOFF_FIRST
        while not self._stopping.is_set():
            proc, ready_r = self._spawn(slot)
            slot.proc = proc
            started = time.monotonic()
            ready = self._await_ready(slot, proc, ready_r)
            status = proc.wait()
            if self._stopping.is_set():
                return
            if not slot.ready.is_set():  # never got going: a broken app, do not loop
                slot.failed = f"exited while starting (status {status})"
                return
            if ready and time.monotonic() - started > STEADY:
                delay = BACKOFF_FIRST
            slot.restarts += 1
            log.warning(
                "serve: app worker %d (pid %d) exited (%d); restarting in %.1f s",
                slot.index,
                proc.pid,
                status,
                delay,
            )
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, BACKOFF_MAX)

    @staticmethod
    def _await_ready(slot: _Slot, proc: subprocess.Popen[bytes], ready_r: int) -> bool:
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while proc.poll() is None and time.monotonic() < deadline:
                if select.select([ready_r], [], [], 0.1)[0]:
                    if os.read(ready_r, 1):
                        slot.ready.set()
                        return True
                    return False  # closed unwritten: it is exiting
            return False
        finally:
            os.close(ready_r)

    def stop(self) -> None:
        """SIGTERM every worker and wait for them (they finish what they took)."""
        self._stopping.set()
        for slot in self.slots:
            if slot.proc is not None and slot.proc.poll() is None:
                slot.proc.send_signal(signal.SIGTERM)
        for slot in self.slots:
            if slot.proc is None:
                continue
            try:
                slot.proc.wait(GRACE + 5)
            except subprocess.TimeoutExpired:
                slot.proc.kill()
                slot.proc.wait()
        for thread in self._threads:
            thread.join(1)
        for slot in self.slots:
            slot.sock.close()
        shutil.rmtree(self.folder, ignore_errors=True)
