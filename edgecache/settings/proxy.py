"""``edgecache proxy``'s own settings: the upstreams, balancing, health and forwarding.
``edgecache serve`` sets them itself, to its app workers' unix sockets."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from edgecache.settings.fields import check_fields, named, setting

_UPSTREAM_EXAMPLE = "an http:// or https:// URL with a host, e.g. http://127.0.0.1:8000"


def parse_upstreams(text: str) -> list[tuple[str, int]]:
    """``http://a:1;weight=3, http://b:2`` -> [(url, weight), ...]."""
    result = []
    for item in text.split(","):
        url, *params = (p.strip() for p in item.strip().split(";"))
        if not url:
            continue
        weight = 1
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() != "weight" or not value.strip().isdigit():
                raise named(ProxySettings, "upstream").fail(
                    text, f"URL[;weight=N], got {item.strip()!r}"
                )
            weight = int(value)
        result.append((url, weight))
    return result


def _is_upstream_url(url: str) -> bool:
    if url.startswith("unix:"):  # an app worker's socket, as edgecache serve sets
        return url.startswith("unix:/")
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and not parts.query
        and not parts.fragment
    )


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class ProxySettings:
    """Where edgecache proxy sends requests, and how (serve sets them: its app workers)."""

    upstream: str = setting(
        "",
        """The backends, URL[;weight=N], comma-separated or the flag repeated; requests
        are spread over them by --balance.""",
        metavar="URL[;weight=N]",
        proxy_only=True,
    )
    balance: Literal["round-robin", "least-conn"] = setting(
        "round-robin",
        """How requests are spread over several upstreams: smooth weighted round-robin,
        or the one with the fewest requests under way.""",
        proxy_only=True,
    )
    max_fails: int = setting(
        3,
        "Failures within fail-timeout after which an upstream is skipped for as long.",
        at_least=1,
        proxy_only=True,
    )
    fail_timeout: float = setting(
        10.0,
        "The window for max-fails, and how long a failing upstream is then skipped.",
        unit="seconds",
        above=0,
        proxy_only=True,
    )
    health_path: str = setting(
        "",
        "When set, each upstream is probed with GET on this path every health-interval.",
        valid=lambda path: not path or path.startswith("/"),
        accepted="a path such as /healthz",
        metavar="PATH",
        proxy_only=True,
    )
    health_interval: float = setting(
        5.0, "Time between health probes.", unit="seconds", above=0, proxy_only=True
    )
    config: str = setting(
        "",
        "A TOML route file (routes, pools, static roots, redirects); see README.",
        metavar="FILE",
        proxy_only=True,
    )
    preserve_host: bool = setting(
        True,
        "Send the client's Host upstream; off sends the upstream's own host name.",
        proxy_only=True,
    )
    trusted_proxies: tuple[str, ...] = setting(
        (),
        """Addresses or networks (CIDR), comma-separated, whose X-Forwarded-* are
        believed; none by default.""",
        valid=_is_network,
        accepted="IP addresses or networks (CIDR)",
        metavar="NETWORK,...",
        proxy_only=True,
    )
    forwarded_header: bool = setting(
        False, "Also send an RFC 7239 Forwarded header upstream.", proxy_only=True
    )
    connect_timeout: float = setting(
        5.0,
        "Longest wait for a connection to the upstream; then 504.",
        unit="seconds",
        above=0,
        proxy_only=True,
    )
    read_timeout: float = setting(
        60.0,
        "Longest wait for the upstream's next bytes (headers or body); then 504.",
        unit="seconds",
        above=0,
        proxy_only=True,
    )
    tunnel_idle_timeout: float = setting(
        300.0,
        """After a websocket's 101: how long the tunnel may carry no byte either way
        before both sides are closed (nginx's proxy_read_timeout for upgrades); keep it
        above the application's ping interval.""",
        unit="seconds",
        above=0,
        proxy_only=True,
    )

    def __post_init__(self) -> None:
        check_fields(self, ProxySettings)
        for url, weight in parse_upstreams(self.upstream):
            if not _is_upstream_url(url):
                raise named(ProxySettings, "upstream").fail(url, _UPSTREAM_EXAMPLE)
            if weight < 1:
                raise named(ProxySettings, "upstream").fail(
                    self.upstream, "weights >= 1 (URL;weight=N)"
                )
