"""The wire layer's limits and deadlines, one frozen value shared by every connection.
Built from Settings by the runner, or directly (tests, embedding)."""

from __future__ import annotations

from dataclasses import dataclass

from edgecache.config import Settings


@dataclass(frozen=True, slots=True)
class WireConfig:
    header_timeout: float = 10.0
    """A whole request head must arrive within this many seconds (408 after)."""
    keepalive_timeout: float = 75.0
    """An idle keep-alive connection is closed after this many seconds."""
    body_timeout: float = 60.0
    """Longest gap between request body bytes while the handler waits for them."""
    write_timeout: float = 60.0
    """Longest the client may leave our write buffer full."""
    max_header_bytes: int = 32 * 1024
    max_header_fields: int = 100
    max_uri_bytes: int = 8 * 1024
    max_body_size: int = 100 * 1024**2
    max_connections: int = 4096
    hsts: int = 0
    """Strict-Transport-Security max-age added to every answer over TLS; 0: none."""
    shutdown_timeout: float = 30.0
    """On SIGTERM, in-flight requests get this long to finish."""
    http2: bool = True
    """TLS listeners hand a connection whose ALPN chose ``h2`` to ``wire.h2``."""
    http2_max_concurrent_streams: int = 100
    http2_hpack_table_size: int = 4096

    @classmethod
    def from_settings(cls, settings: Settings) -> WireConfig:
        return cls(
            header_timeout=settings.header_timeout,
            keepalive_timeout=settings.keepalive_timeout,
            body_timeout=settings.send_timeout,
            write_timeout=settings.write_timeout,
            max_header_bytes=settings.max_header_bytes,
            max_header_fields=settings.max_header_fields,
            max_uri_bytes=settings.max_uri_bytes,
            max_body_size=settings.max_body_size,
            max_connections=settings.max_connections,
            hsts=settings.hsts,
            http2=settings.http2,
            http2_max_concurrent_streams=settings.http2_max_concurrent_streams,
            http2_hpack_table_size=settings.http2_hpack_table_size,
        )
