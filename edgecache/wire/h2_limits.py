"""HTTP/2's numbers beyond the WireConfig settings, and the budgets that stop floods.

A flood is a stream of frames each cheap to send and not free to answer: a client
opening and cancelling streams (rapid reset, CVE-2023-44487), SETTINGS or PING frames
that each make us queue an acknowledgement, PRIORITY or empty DATA frames. Each kind
has a token bucket per connection: a burst well above what any browser sends, then a
steady rate. Spent, the connection gets GOAWAY (ENHANCE_YOUR_CALM) and closes; other
connections never notice. The CONTINUATION flood (CVE-2024-27316) is bounded by size
instead: a header block's bytes across CONTINUATION frames may not pass
``max_header_bytes`` (h2 itself caps it at 64 frames).
"""

from __future__ import annotations

STREAM_WINDOW = 256 * 1024
"""Our SETTINGS_INITIAL_WINDOW_SIZE: unread request body bytes a stream may hold.
Acknowledged (WINDOW_UPDATE) only as the handler consumes them."""
CONNECTION_WINDOW = 1024 * 1024
"""The connection's receive window: unread request body bytes over all its streams."""
STREAM_BUFFER = 64 * 1024
"""Answer bytes a stream may queue beyond its send window before ``write`` waits."""

RESET_BURST, RESET_RATE = 200, 20.0
"""Streams the client may cancel while we answer them: burst, then per second."""
SETTINGS_BURST, SETTINGS_RATE = 32, 2.0
PING_BURST, PING_RATE = 32, 2.0
MINOR_BURST, MINOR_RATE = 512, 64.0
"""PRIORITY frames and empty DATA frames that do not end their stream."""


class Budget:
    """A token bucket: ``spend`` is False once more than ``burst`` events came faster
    than ``rate`` per second."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, burst: int, rate: float, now: float) -> None:
        self.burst = float(burst)
        self.rate = rate
        self.tokens = float(burst)
        self.stamp = now

    def spend(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Floods:
    """The budgets of one connection."""

    __slots__ = ("minor", "ping", "reset", "settings")

    def __init__(self, now: float) -> None:
        self.reset = Budget(RESET_BURST, RESET_RATE, now)
        self.settings = Budget(SETTINGS_BURST, SETTINGS_RATE, now)
        self.ping = Budget(PING_BURST, PING_RATE, now)
        self.minor = Budget(MINOR_BURST, MINOR_RATE, now)
