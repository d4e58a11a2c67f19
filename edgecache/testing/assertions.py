"""What the plugin's answers carry and asserts: the parsed Cache-Status, and
``assert_cached`` / ``assert_not_cached`` with failure messages in words."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from edgecache.core.explain import Explanation, reason_words
from edgecache.core.storability import NotStored


@dataclass(frozen=True)
class CacheStatus:
    """This cache's member of the Cache-Status field (RFC 9211 §2)."""

    raw: str = ""
    hit: bool = False
    fwd: str | None = None
    fwd_status: int | None = None
    stored: bool = False
    collapsed: bool = False
    ttl: int | None = None
    detail: str | None = None


def parse_cache_status(value: str | None, name: str) -> CacheStatus:
    """The last member named ``name`` (ours comes after any upstream cache's); lenient:
    a malformed parameter is skipped, a missing member is an empty CacheStatus."""
    members = [m.strip() for m in (value or "").split(",")]
    ours = [m for m in members if m.split(";", 1)[0].strip().strip('"') == name]
    if not ours:
        return CacheStatus()
    params: dict[str, str | None] = {}
    for param in ours[-1].split(";")[1:]:
        key, eq, arg = (p.strip() for p in param.partition("="))
        params[key.lower()] = arg.strip('"') if eq else None

    def number(key: str) -> int | None:
        raw = params.get(key)
        return int(raw) if raw is not None and raw.lstrip("-").isdigit() else None

    return CacheStatus(
        raw=ours[-1],
        hit="hit" in params,
        fwd=params.get("fwd"),
        fwd_status=number("fwd-status"),
        stored="stored" in params,
        collapsed="collapsed" in params,
        ttl=number("ttl"),
        detail=params.get("detail"),
    )


@dataclass(frozen=True)
class EdgeResponse:
    """An answer through the edge, with the cache's view of its URL just after it."""

    method: str
    path: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    cache_status: CacheStatus
    explanation: Explanation = field(repr=False)

    def header(self, name: str) -> str | None:
        """The field's lines joined with ", ", or None."""
        lines = [v for n, v in self.headers if n.lower() == name.lower()]
        return ", ".join(lines) if lines else None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def _why_not_stored(explanation: Explanation) -> str:
    last = explanation.not_stored
    if last is not None:
        return f"not stored: {last.why}"
    return f"nothing stored for this request ({explanation.next.why})"


def assert_cached(
    response: EdgeResponse, ttl: float | None = None, vary: Iterable[str] | None = None
) -> None:
    """The answer's URL is stored for this request: shared, fresh for ``ttl`` seconds
    (its freshness lifetime, within a second), varying on exactly ``vary``."""
    __tracebackhide__ = True
    where = f"{response.method} {response.path}"
    variant = response.explanation.selected()
    if variant is None:
        raise AssertionError(
            f"expected {where} to be cached, but {_why_not_stored(response.explanation)}"
        )
    if ttl is not None and abs(variant.freshness_lifetime - ttl) >= 1:
        raise AssertionError(
            f"expected {where} to be cached for {ttl:g} s, but it is cached for "
            f"{variant.freshness_lifetime:g} s, from {variant.lifetime_why}"
        )
    if vary is not None:
        wanted = {name.lower() for name in vary}
        if set(variant.vary) != wanted:
            raise AssertionError(
                f"expected {where} to vary on {sorted(wanted)}, but it varies on "
                f"{sorted(variant.vary)}"
            )


def assert_not_cached(response: EdgeResponse, reason: str | NotStored | None = None) -> None:
    """The answer's URL is not stored for this request; with ``reason`` (a NotStored
    member or its value, e.g. "set-cookie"), the last answer was refused for it."""
    __tracebackhide__ = True
    where = f"{response.method} {response.path}"
    want = _reason(reason)
    because = f" because {reason_words(want)}" if want is not None else ""
    variant = response.explanation.selected()
    if variant is not None:
        raise AssertionError(
            f"expected {where} not to be cached{because}, but it is stored, with a "
            f"lifetime from {variant.lifetime_why}"
        )
    if want is None:
        return
    last = response.explanation.not_stored
    if last is None:
        raise AssertionError(
            f"expected {where} not to be stored because {reason_words(want)}, but no "
            f"answer was refused: {response.explanation.next.why}"
        )
    if last.reason != want.value:
        raise AssertionError(
            f"expected {where} not to be stored because {reason_words(want)}, but it was "
            f"not stored because {last.why}"
        )


def _reason(reason: str | NotStored | None) -> NotStored | None:
    if reason is None or isinstance(reason, NotStored):
        return reason
    try:
        return NotStored(reason)
    except ValueError:
        known = ", ".join(r.value for r in NotStored)
        raise ValueError(f"reason={reason!r}: expected one of {known}") from None
