"""What can go wrong talking to an upstream, as exceptions a caller maps to answers:
any ``UpstreamTimeout`` is a 504, every other ``UpstreamError`` a 502."""

from __future__ import annotations


class UpstreamError(Exception):
    """The exchange with the upstream failed."""


class ConnectError(UpstreamError):
    """Refused or unreachable: no byte of the request reached the upstream, so any
    request may go to another server."""


class UpstreamTimeout(UpstreamError, TimeoutError):
    """The upstream (or the network to it) was too slow."""


class ConnectTimeout(UpstreamTimeout):
    """No connection within the connect timeout."""


class ReadTimeout(UpstreamTimeout):
    """No answer head within the read timeout after the request was sent."""


class SendTimeout(UpstreamTimeout):
    """The upstream took no request bytes for the send timeout."""


class ProtocolError(UpstreamError):
    """The answer was not valid HTTP/1.1 (httptools refused it)."""


class UpstreamClosed(UpstreamError):
    """The upstream closed the connection before a whole answer head."""


class IncompleteBody(UpstreamError):
    """The answer broke off mid-body: what was relayed is truncated, store nothing."""


class BodyTimeout(ReadTimeout, IncompleteBody):
    """No body bytes for the read timeout: the body is truncated too."""


class RequestBodyError(UpstreamError):
    """The request body did not match its declared Content-Length."""
