"""The app workers behind the edge: started, awaited, restarted, stopped.

Each worker slot has a unix socket that this process binds and keeps open, and a thread
that starts the slot's process, waits for it to exit and starts another after a
back-off. Because the socket outlives its process, a request sent while a worker
restarts waits in the backlog for the next one rather than being refused; only the
requests the dead worker had taken fail (the edge answers those 502).

Workers run in their own session, so a terminal's Ctrl-C reaches the edge alone: the
edge finishes its requests first, then stops the workers (``stop``), which finish
theirs. ``reload`` (SIGHUP) replaces them one by one, the new before the old goes.
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
    """The edge connects here: a second name (hard link) of the socket the worker
    has, because gunicorn's arbiter unlinks the name it was bound to when it stops,
    and the next worker must still be reachable."""
    sock: socket.socket
    proc: subprocess.Popen[bytes] | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    failed: str = ""
    restarts: int = 0
    successor: subprocess.Popen[bytes] | None = None
    """A worker started on reload, already accepting, that takes over once ``proc``
    has drained and exited."""
    reload: threading.Event = field(default_factory=threading.Event)
    reloaded: threading.Event = field(default_factory=threading.Event)


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
        bound = os.path.join(self.folder, f"app-{index}.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(bound)
        sock.listen(1024)
        sock.set_inheritable(True)
        path = os.path.join(self.folder, f"edge-{index}.sock")
        os.link(bound, path)
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
        """The slot's thread: run a worker, and another whenever one exits. It alone
        starts the slot's processes: they die with the thread that started them."""
        delay = BACKOFF_FIRST
        while not self._stopping.is_set():
            started = time.monotonic()
            if slot.successor is not None:  # reloaded: the new one accepts already
                proc, slot.successor, ready = slot.successor, None, True
                slot.reloaded.set()
            else:
                proc, ready_r = self._spawn(slot)
                ready = self._await_ready(slot, proc, ready_r)
            slot.proc = proc
            status = self._wait(slot, proc)
            if self._stopping.is_set():
                return
            if slot.successor is not None:
                continue
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

    def _wait(self, slot: _Slot, proc: subprocess.Popen[bytes]) -> int:
        """Until ``proc`` exits; on a reload request, start its successor first."""
        while True:
            try:
                return proc.wait(0.1)
            except subprocess.TimeoutExpired:
                if slot.reload.is_set():
                    slot.reload.clear()
                    self._replace(slot, proc)

    def _replace(self, slot: _Slot, old: subprocess.Popen[bytes]) -> None:
        new, ready_r = self._spawn(slot)
        if not self._await_ready(slot, new, ready_r):
            log.error("serve: a new worker %d did not start; keeping the old one", slot.index)
            new.kill()
            new.wait()
            slot.reloaded.set()
            return
        slot.successor = new
        old.send_signal(signal.SIGTERM)  # it drains; _keep adopts the new one then

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

    def reload(self) -> None:
        """Replace every worker, one slot at a time, with no gap: the new process
        accepts on the slot's socket before the old one is told to drain and exit
        (SIGHUP to the edge; new code or settings of the app are picked up)."""
        for slot in self.slots:
            slot.reloaded.clear()
            slot.reload.set()  # the slot's thread does it (see _keep)
            while not slot.reloaded.wait(0.1):
                if self._stopping.is_set():
                    return
        log.warning("serve: app workers reloaded")

    def stop(self) -> None:
        """SIGTERM every worker and wait for them (they finish what they took)."""
        self._stopping.set()
        procs = [p for s in self.slots for p in (s.proc, s.successor) if p is not None]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(GRACE + 5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for thread in self._threads:
            thread.join(1)
        for slot in self.slots:
            slot.sock.close()
        shutil.rmtree(self.folder, ignore_errors=True)
