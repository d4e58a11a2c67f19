"""Byte ranges (RFC 9110 §14): one range served as 206, anything else as the whole."""

from __future__ import annotations

from typing import Literal

UNSATISFIABLE: Literal["unsatisfiable"] = "unsatisfiable"
RangeChoice = tuple[int, int] | Literal["unsatisfiable"] | None


def parse_range(
    value: bytes | None, size: int
) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """The one byte range ``value`` asks of a ``size``-byte representation, inclusive.

    None means "send the whole": no header, another unit, a malformed value or several
    ranges (a server may ignore Range, §14.2). A well-formed range that starts past the
    end is unsatisfiable (416, §15.5.17).
    """
    if not value:
        return None
    unit, _, spec = value.strip().partition(b"=")
    if unit.strip().lower() != b"bytes" or b"," in spec:
        return None
    first, dash, last = spec.strip().partition(b"-")
    if not dash:
        return None
    first, last = first.strip(), last.strip()
    if not first:  # suffix: the last N bytes
        if not last.isdigit() or int(last) == 0:
            return None if not last.isdigit() else UNSATISFIABLE
        return max(0, size - int(last)), size - 1
    if not first.isdigit() or (last and not last.isdigit()):
        return None
    start = int(first)
    if start >= size:
        return UNSATISFIABLE
    end = int(last) if last else size - 1
    if end < start:
        return None
    return start, min(end, size - 1)


def content_range(start: int, end: int, size: int) -> bytes:
    return f"bytes {start}-{end}/{size}".encode()
