"""Choosing an upstream: smooth weighted round-robin (nginx's algorithm), weighted
least-connections, and passive health. Pure: time comes in as ``now``."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Literal

Strategy = Literal["round-robin", "least-conn"]


@dataclass(eq=False)
class Member:
    url: str
    weight: int = 1
    current: int = 0
    """Smooth weighted round-robin state."""
    active: int = 0
    """Requests in flight to this member."""
    failures: list[float] = field(default_factory=list)
    down_until: float = 0.0


@dataclass(eq=False)
class Balancer:
    """Picks members; marks one down for ``fail_timeout`` seconds after ``max_fails``
    failures within ``fail_timeout`` (as nginx's ``max_fails`` / ``fail_timeout``)."""

    members: list[Member]
    strategy: Strategy = "round-robin"
    max_fails: int = 3
    fail_timeout: float = 10.0

    def available(self, now: float, exclude: Collection[Member] = ()) -> list[Member]:
        return [m for m in self.members if m.down_until <= now and m not in exclude]

    def pick(self, now: float, exclude: Collection[Member] = ()) -> Member | None:
        """The next member, or None when every member is down or excluded. When all
        are down, the one back soonest is tried rather than failing outright."""
        candidates = self.available(now, exclude)
        if not candidates:
            rest = [m for m in self.members if m not in exclude]
            if not rest:
                return None
            return min(rest, key=lambda m: m.down_until)
        if self.strategy == "least-conn":
            return min(candidates, key=lambda m: (m.active / m.weight, -m.weight))
        total = 0
        best = candidates[0]
        for member in candidates:  # smooth weighted round-robin
            member.current += member.weight
            total += member.weight
            if member.current > best.current:
                best = member
        best.current -= total
        return best

    def failed(self, member: Member, now: float) -> None:
        member.failures = [t for t in member.failures if now - t < self.fail_timeout]
        member.failures.append(now)
        if len(member.failures) >= self.max_fails:
            member.down_until = now + self.fail_timeout
            member.failures.clear()

    def succeeded(self, member: Member) -> None:
        member.failures.clear()
        member.down_until = 0.0
