"""How an upstream can fail without giving an answer: one enum every face reports.

The forwarder (and the wire layer after it) answers such a failure itself with 502 or
504. Those answers are the cache's own, not the origin's, so they carry an
``UpstreamError`` beside them: the policy may then serve a stale entry (RFC 9111 §4.2.4
allows a disconnected cache to), which it would never do for an origin's own 502.
"""

from __future__ import annotations

import enum


class UpstreamError(enum.Enum):
    """Why no usable answer came from the upstream."""

    REFUSED = "refused"
    """No connection: refused, unreachable, name not found, or no upstream available."""
    RESET = "reset"
    """The connection was reset or closed before a complete response head."""
    TIMEOUT = "timeout"
    """Connecting, or waiting for the response head, took longer than allowed."""
    INVALID = "invalid"
    """What came back was not a valid HTTP response."""

    @property
    def status(self) -> int:
        """The status the edge answers with when nothing stored can (RFC 9110 §15.6)."""
        return 504 if self is UpstreamError.TIMEOUT else 502

    @property
    def detail(self) -> str:
        """The Cache-Status ``detail`` (RFC 9211 §2.8) naming it."""
        return f"upstream-{self.value}"


ASGI_KEY = "edgecache.upstream_error"
"""Where an ASGI app below the cache puts the UpstreamError in its
``http.response.start`` message for an answer it made because the upstream failed."""
