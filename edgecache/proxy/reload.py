"""Reload in place (SIGHUP, ``edgecache reload``), as ``nginx -s reload`` does.

The settings are read again (the route file, user files and TLS certificates with
them), the new chain is built around the *same* store, so every cached entry is kept,
and new connections go to it. A connection already open gets one more answer from the
chain it started with, saying ``connection: close`` (HTTP/2: GOAWAY): closing it at once
would race a request the client is sending. The old chain is stopped (health probes,
upstream pools, the engines' copy threads) once the last of them has closed. A
configuration that fails to build is refused: the error, which names the file, line
and key, is logged and the running chain goes on.

Entries are kept whatever changed: a route that now points at another pool answers
from what the old one stored until those entries expire; purge them if that matters.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

from edgecache.config import Settings
from edgecache.errors import ConfigError
from edgecache.proxy.handler import EdgeHandler
from edgecache.stack import cache_layers
from edgecache.storage import Store
from edgecache.wire.server import WireServer

log = logging.getLogger("edgecache")

RETIRE_WAIT = 300.0
"""Seconds the old chain waits for its last connection before it is stopped anyway."""


def store_of(handler: EdgeHandler) -> Store | None:
    """The one store the running chain's caches share (None without a cache)."""
    layers = cache_layers(handler.chain.app)
    return layers[0].engine.store if layers else None


class Reloader:
    """Rebuilds the handler of ``server`` on demand; one per process."""

    def __init__(
        self,
        server: WireServer,
        build: Callable[[Settings, Store | None], EdgeHandler],
        tls: ssl.SSLContext | None,
    ) -> None:
        self.server = server
        self.build = build
        self.tls = tls
        self.count = 0
        self._busy = False

    async def reload(self) -> bool:
        if self._busy:
            log.warning("edgecache: a reload is already under way")
            return False
        self._busy = True
        try:
            return await self._reload()
        finally:
            self._busy = False

    async def _reload(self) -> bool:
        old = self.server.handler
        assert isinstance(old, EdgeHandler)
        handler: EdgeHandler | None = None
        try:
            settings = Settings.from_env()
            if self.tls is not None and settings.certfile:
                # Tried on a scratch context first: a failed load_cert_chain leaves the
                # live one with the new certificate and no key, and every handshake
                # after that would fail (a renewal caught half-way).
                scratch = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                scratch.load_cert_chain(settings.certfile, settings.keyfile or None)
            handler = self.build(settings, store_of(old))
            await handler.startup()
        except (ConfigError, OSError, ssl.SSLError, ValueError) as exc:
            log.error("edgecache: reload refused, the running configuration goes on: %s", exc)
            if handler is not None:
                await handler.shutdown()  # its health probers and pools, started
                close_engines(handler)
            return False
        if self.tls is not None and settings.certfile:
            self.tls.load_cert_chain(settings.certfile, settings.keyfile or None)
        self.server.handler = handler
        for conn in list(self.server.connections):
            if conn.handler is old:
                conn.wind_down()  # its next answer ends it: new requests meet the new chain
        self.count += 1
        log.warning("edgecache: reloaded (%d); open connections finish on the old one", self.count)
        asyncio.get_running_loop().create_task(self._retire(old))
        return True

    async def _retire(self, old: EdgeHandler) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RETIRE_WAIT
        while loop.time() < deadline and any(
            conn.handler is old for conn in self.server.connections
        ):
            await asyncio.sleep(1.0)
        await old.shutdown()
        close_engines(old)


def close_engines(handler: EdgeHandler) -> None:
    """Stop what the chain's cache engines run beside the store (the encoded copies'
    worker thread); the store itself goes on with the new chain."""
    for layer in cache_layers(handler.chain.app):
        layer.engine.close()
