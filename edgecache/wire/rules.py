"""RFC 9112 rules for a request head, as pure functions: the request-target's form, the
Host field, the version. A request that breaks one is refused here, before any handler
sees it. No I/O, no parser: the connection feeds what httptools reported."""

from __future__ import annotations

import re

import httptools

from edgecache.wire.types import Headers, Request


class Refusal(Exception):
    """A request the wire layer answers itself with ``status`` and closes."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(status, text)
        self.status = status
        self.text = text


# RFC 3986 host [":" port]: an IP-literal, or a reg-name (IPv4 addresses are reg-names
# lexically). pct-encoded triplets are checked loosely: '%' must start one.
_AUTHORITY = re.compile(
    rb"(?:\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)(?::[0-9]*)?"
)
_ABSOLUTE = re.compile(rb"https?://", re.IGNORECASE)


_SEEN: dict[bytes, bool] = {}
"""Host values already judged: a server sees the same few again and again."""
_SEEN_MAX = 1024


def valid_authority(value: bytes) -> bool:
    known = _SEEN.get(value)
    if known is not None:
        return known
    valid = _AUTHORITY.fullmatch(value) is not None
    if len(_SEEN) >= _SEEN_MAX:
        _SEEN.clear()
    _SEEN[value] = valid
    return valid


def build_request(
    method: bytes,
    target: bytes,
    version: str,
    headers: Headers,
    hosts: int,
    host: bytes,
    has_body: bool,
    keep_alive: bool,
    upgrade: bytes | None,
    scheme: str,
    client: tuple[str, int] | None,
) -> Request:
    """The validated Request, or Refusal. ``hosts`` counts the Host field lines and
    ``host`` is the (last) value; ``headers`` may be edited (absolute-form Host)."""
    if version not in ("1.1", "1.0"):
        if version == "0.9":
            raise Refusal(400, "Bad Request: HTTP/0.9 is not served")
        raise Refusal(505, "HTTP Version Not Supported")
    if method == b"CONNECT":
        raise Refusal(501, "Not Implemented: CONNECT")
    if hosts > 1:
        raise Refusal(400, "Bad Request: more than one Host")  # RFC 9112 §3.2
    if hosts == 0 and version == "1.1":
        raise Refusal(400, "Bad Request: no Host")
    if hosts and not valid_authority(host):
        raise Refusal(400, "Bad Request: invalid Host")
    authority = host.lower()
    if target[:1] == b"/":
        path, _, query = target.partition(b"?")
    elif target == b"*":
        if method != b"OPTIONS":
            raise Refusal(400, "Bad Request: * is only for OPTIONS")
        path, query = b"*", b""
    elif _ABSOLUTE.match(target):
        authority, path, query = _absolute_form(target)
        # RFC 9112 §3.2.2: the target's authority wins; the Host field is replaced.
        if hosts:
            headers[:] = [(n, authority if n == b"host" else v) for n, v in headers]
        else:
            headers.append((b"host", authority))
    else:
        raise Refusal(400, "Bad Request: invalid request-target")
    return Request(
        method.decode("ascii"),
        target.decode("latin-1"),
        path.decode("latin-1"),
        query.decode("latin-1"),
        authority.decode("latin-1"),
        scheme,
        version,
        headers,
        client,
        keep_alive,
        has_body,
        upgrade,
    )


def _absolute_form(target: bytes) -> tuple[bytes, bytes, bytes]:
    try:
        url = httptools.parse_url(target)
    except httptools.HttpParserInvalidURLError:
        raise Refusal(400, "Bad Request: invalid request-target") from None
    if url.userinfo or not url.host:
        raise Refusal(400, "Bad Request: invalid authority in the request-target")
    authority = url.host.lower()
    if url.port is not None:
        authority += b":%d" % url.port
    if not valid_authority(authority):
        raise Refusal(400, "Bad Request: invalid authority in the request-target")
    return authority, url.path or b"/", url.query or b""
