"""The server under ``edgecache proxy`` and ``edgecache serve``: where it listens, TLS,
workers, logs and the admin endpoints; and the limits and deadlines it holds clients
to (the wire layer's, nginx's client_* directives)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from edgecache.settings.fields import check_fields, named, setting


@dataclass(frozen=True)
class ServerSettings:
    """Listening, TLS, processes, logs, admin."""

    listen_host: str = setting(
        "127.0.0.1",
        "Address to listen on (0.0.0.0 or :: for every interface).",
        aliases=("--host",),
        metavar="ADDRESS",
    )
    listen_port: int = setting(
        8080,
        "Port to listen on.",
        at_least=0,
        at_most=65535,
        accepted="a port number",
        aliases=("--port",),
        metavar="PORT",
    )
    workers: int = setting(
        1,
        """proxy: server processes sharing one listening socket and one cache (the memory
        store becomes the shared one). serve: the app's worker processes behind the edge.""",
        at_least=1,
    )
    edge_workers: int = setting(
        1,
        """serve: edge processes in front of the app's workers; more than one share one
        cache (the shared store) and coalesce misses across processes.""",
        at_least=1,
    )
    wsgi_server: Literal["gunicorn", "uvicorn"] = setting(
        "gunicorn", "serve: what runs a WSGI app's workers: gunicorn, or uvicorn through a2wsgi."
    )
    worker_class: str = setting(
        "sync",
        "serve: gunicorn's worker class for a WSGI app (sync, gthread, gevent, ...).",
        valid=bool,
        accepted="a gunicorn worker class",
        metavar="CLASS",
    )
    access_log: Literal["combined", "json", "off"] = setting(
        "combined",
        """One line per request on stderr: nginx's combined format plus the cache status
        and upstream time, JSON lines, or none.""",
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = setting(
        "info", "Least severe server message logged; the access log is set by access-log."
    )
    admin_token: str = setting(
        "",
        """Bearer token (or Basic password) for the status page /_edgecache/,
        /_edgecache/purge and /_edgecache/metrics; empty turns them off.""",
        metavar="TOKEN",
    )
    pid_file: str = setting(
        "",
        """Write the server's process id here at start (removed at exit), for
        `edgecache reload` and `kill -HUP`; empty: none.""",
        metavar="FILE",
    )
    certfile: str = setting(
        "", "TLS certificate chain (PEM); with keyfile, serves HTTPS.", metavar="FILE"
    )
    keyfile: str = setting("", "TLS private key (PEM) of certfile.", metavar="FILE")
    self_signed: bool = setting(
        False, "Serve TLS with a throwaway certificate made at start, for local use only."
    )
    redirect_http_port: int = setting(
        0,
        "With TLS, also listen for plain HTTP on this port and redirect it to HTTPS; 0: no.",
        at_least=0,
        at_most=65535,
        accepted="a port number, 0 for none",
        metavar="PORT",
    )
    hsts: int = setting(
        0,
        "Strict-Transport-Security max-age sent on TLS answers; 0 sends none.",
        unit="seconds",
        at_least=0,
    )
    http2: bool = setting(
        True,
        """Over TLS, offer HTTP/2 (ALPN h2, then http/1.1); off offers http/1.1 only.
        Wire server.""",
    )
    http2_cleartext_port: int = setting(
        0,
        """Also listen on this port for HTTP/2 over plain TCP with prior knowledge (h2c,
        no TLS, no HTTP/1.1), for a load balancer in front; 0: no. Wire server.""",
        at_least=0,
        at_most=65535,
        accepted="a port number, 0 for none",
        metavar="PORT",
    )

    def __post_init__(self) -> None:
        check_fields(self, ServerSettings)
        if bool(self.certfile) != bool(self.keyfile):
            raise named(ServerSettings, "certfile").fail(
                self.certfile, "certfile and keyfile together"
            )


@dataclass(frozen=True)
class LimitSettings:
    """What the server allows a client: sizes, counts and deadlines."""

    header_timeout: float = setting(
        10.0,
        """Longest a client may take to send a whole request head (nginx's
        client_header_timeout); then 408 and the connection is closed. Wire server.""",
        unit="seconds",
        above=0,
    )
    send_timeout: float = setting(
        60.0,
        "Longest wait for the client to send the next part of its request body; then 408.",
        unit="seconds",
        above=0,
    )
    keepalive_timeout: float = setting(
        75.0,
        "An idle keep-alive connection is closed after this long. Wire server.",
        unit="seconds",
        above=0,
    )
    write_timeout: float = setting(
        60.0,
        """Longest wait for the client to take the next part of an answer (nginx's
        send_timeout); then the connection is closed. Wire server.""",
        unit="seconds",
        above=0,
    )
    max_body_size: int = setting(
        100 * 1024**2,
        "Largest request body accepted; larger ones get 413.",
        unit="bytes",
        above=0,
    )
    max_header_bytes: int = setting(
        32 * 1024,
        "Largest request head (request line and fields); then 431. Wire server.",
        unit="bytes",
        at_least=256,
    )
    max_header_fields: int = setting(
        100, "Most header field lines in a request; then 431. Wire server.", at_least=1
    )
    max_uri_bytes: int = setting(
        8 * 1024, "Longest request-target; then 414. Wire server.", unit="bytes", at_least=256
    )
    max_connections: int = setting(
        4096,
        """Open client connections per worker; beyond it new ones wait in the listen
        backlog instead of the process running out of files. Wire server.""",
        at_least=1,
    )
    http2_max_concurrent_streams: int = setting(
        100,
        """Streams one HTTP/2 connection may have under way, counting handlers still
        busy for streams the client cancelled (nginx's default). Wire server.""",
        at_least=1,
    )
    http2_hpack_table_size: int = setting(
        4096,
        "The HPACK dynamic table an HTTP/2 client may make us keep. Wire server.",
        unit="bytes",
        at_least=0,
        at_most=65536,
    )

    def __post_init__(self) -> None:
        check_fields(self, LimitSettings)
