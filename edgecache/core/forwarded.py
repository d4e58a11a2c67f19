"""Forwarding headers for a reverse proxy: X-Forwarded-*, RFC 7239 Forwarded, Via
(RFC 9110 §7.6.3), and which client address to believe."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from edgecache.core.headers import (
    ACCEPT_ENCODING,
    HOP_BY_HOP,
    HOST,
    Headers,
    connection_tokens,
    split_list,
)

X_FORWARDED_FOR = b"x-forwarded-for"
X_FORWARDED_PROTO = b"x-forwarded-proto"
X_FORWARDED_HOST = b"x-forwarded-host"
FORWARDED = b"forwarded"
VIA = b"via"
CLIENT_FORWARDING = (X_FORWARDED_FOR, X_FORWARDED_PROTO, X_FORWARDED_HOST, FORWARDED)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(e, strict=False) for e in entries)


def is_trusted(address: str | None, trusted: Sequence[Network]) -> bool:
    if not address or not trusted:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def client_address(peer: str | None, headers: Headers, trusted: Sequence[Network]) -> str | None:
    """The address of the client as far as trusted proxies vouch for it: walking
    X-Forwarded-For from the right, the first hop that is not a trusted proxy."""
    if not is_trusted(peer, trusted):
        return peer
    hops = [h.decode("latin-1").strip() for h in split_list(headers.get_joined(X_FORWARDED_FOR))]
    for hop in reversed(hops):
        if not is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


@dataclass(frozen=True, slots=True)
class ForwardOptions:
    trusted: tuple[Network, ...] = ()
    preserve_host: bool = True
    forwarded_header: bool = False
    drop_accept_encoding: bool = False
    """Ask the upstream for identity bodies: the edge encodes and keeps encoded copies."""
    via_name: str = "edgecache"


def _forwarded_node(address: str) -> str:
    # RFC 7239 §6: IPv6 addresses are bracketed and the value quoted.
    return f'"[{address}]"' if ":" in address else address


X_REMOTE_USER = b"x-remote-user"


def upstream_request_headers(
    headers: Headers,
    peer: str | None,
    user: str | None,
    scheme: str,
    http_version: str,
    upstream_host: str,
    options: ForwardOptions,
) -> list[tuple[bytes, bytes]]:
    """The request headers to send upstream.

    Hop-by-hop fields and those named in Connection go (RFC 9110 §7.6.1); incoming
    X-Forwarded-* and Forwarded are kept only from a trusted proxy, and this hop is
    appended; Via gains this hop (§7.6.3); Host is the client's or the upstream's;
    X-Remote-User is the edge's authenticated ``user`` or absent.
    """
    drop = HOP_BY_HOP | connection_tokens(headers) | {HOST, X_REMOTE_USER}
    trusted = is_trusted(peer, options.trusted)
    if not trusted:
        drop |= set(CLIENT_FORWARDING)
    if options.drop_accept_encoding:
        drop |= {ACCEPT_ENCODING}
    out = [(n, v) for n, v in headers if n not in drop and n not in CLIENT_FORWARDING]
    client_host = headers.get(HOST) or upstream_host.encode()
    out.append((HOST, client_host if options.preserve_host else upstream_host.encode()))
    hop = (peer or "unknown").encode()
    prior_for = headers.get_joined(X_FORWARDED_FOR) if trusted else None
    out.append((X_FORWARDED_FOR, prior_for + b", " + hop if prior_for else hop))
    proto = (headers.get(X_FORWARDED_PROTO) if trusted else None) or scheme.encode()
    out.append((X_FORWARDED_PROTO, proto))
    fwd_host = (headers.get(X_FORWARDED_HOST) if trusted else None) or client_host
    out.append((X_FORWARDED_HOST, fwd_host))
    if options.forwarded_header:
        element = f"for={_forwarded_node(peer or 'unknown')};proto={scheme};host=".encode()
        element += b'"' + client_host.replace(b'"', b"") + b'"'
        prior = headers.get_joined(FORWARDED) if trusted else None
        out.append((FORWARDED, prior + b", " + element if prior else element))
    out.append((VIA, with_via(headers.get_joined(VIA), http_version, options.via_name)))
    if user is not None:  # set by the edge's own auth; a client's claim never passes
        out.append((X_REMOTE_USER, user.encode("utf-8")))
    return out


def with_via(existing: bytes | None, http_version: str, name: str) -> bytes:
    """Via with this hop appended, e.g. ``1.1 edgecache``."""
    hop = f"{http_version} {name}".encode()
    return existing + b", " + hop if existing else hop


def downstream_response_headers(
    raw: Sequence[tuple[bytes, bytes]], http_version: str, via_name: str
) -> list[tuple[bytes, bytes]]:
    """The upstream's response headers for the client: names lowercased, hop-by-hop and
    Connection-named fields removed, repeated fields kept in order, Via appended."""
    headers = Headers.from_raw(raw)
    drop = HOP_BY_HOP | connection_tokens(headers) | {VIA}
    out = [(n, v) for n, v in headers if n not in drop]
    out.append((VIA, with_via(headers.get_joined(VIA), http_version, via_name)))
    return out
