"""Byte ranges (RFC 9110 §14): one range served as 206, anything else as the whole.

The one place for the rule, used by the static files and by answers from the cache.
"""

from __future__ import annotations

from typing import Literal

from edgecache.core.dates import parse_http_date
from edgecache.core.headers import CONTENT_RANGE, ETAG, IF_RANGE, LAST_MODIFIED, RANGE, Headers

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


def if_range_matches(value: bytes, etag: bytes | None, last_modified: float | None) -> bool:
    """RFC 9110 §13.1.5: does the If-Range validator still name this representation?

    An entity-tag must match by strong comparison (a weak tag never matches); a date
    must be exactly the Last-Modified. Anything else: send the whole representation.
    """
    value = value.strip()
    if value.startswith((b'"', b"W/")):
        return etag is not None and not etag.startswith(b"W/") and value == etag.strip()
    date = parse_http_date(value)
    return date is not None and last_modified is not None and date == last_modified


def select_range(
    request_headers: Headers, size: int, etag: bytes | None, last_modified: float | None
) -> RangeChoice:
    """The range a GET asks of a ``size``-byte representation with these validators:
    Range (§14.2) unless an If-Range says the client's copy is another one (§13.1.5)."""
    value = request_headers.get(RANGE)
    if value is None:
        return None
    if_range = request_headers.get(IF_RANGE)
    if if_range is not None and not if_range_matches(if_range, etag, last_modified):
        return None
    return parse_range(value, size)


def stored_part(headers: Headers) -> tuple[int, int, int] | None:
    """``(first, last, complete_length)`` of a 206 a cache may store and reuse (RFC 9111
    §3.3): one ``Content-Range: bytes first-last/length`` with a known length, and a
    strong validator (§3.4: parts are only combinable, or trusted, when the validator
    says they are of one representation). None otherwise."""
    if ETAG not in headers and LAST_MODIFIED not in headers:
        return None
    etag = headers.get(ETAG)
    if etag is not None and etag.strip().startswith(b"W/"):
        return None
    values = headers.get_all(CONTENT_RANGE)
    if len(values) != 1:
        return None
    unit, _, spec = values[0].strip().partition(b" ")
    span, slash, length = spec.strip().partition(b"/")
    first, dash, last = span.partition(b"-")
    if unit.lower() != b"bytes" or not slash or not dash:
        return None
    if not (first.isdigit() and last.isdigit() and length.isdigit()):
        return None
    start, end, size = int(first), int(last), int(length)
    if not start <= end < size:
        return None
    return start, end, size


def part_answers(
    request_headers: Headers, headers: Headers, etag: bytes | None, last_modified: float | None
) -> tuple[int, int, int] | None:
    """The ``(first, last, complete_length)`` a Range request asks of a stored 206 with
    these headers, when the stored part contains it (RFC 9111 §3.4); None otherwise, and
    then the stored part cannot answer the request at all."""
    part = stored_part(headers)
    if part is None:
        return None
    span = select_range(request_headers, part[2], etag, last_modified)
    if not isinstance(span, tuple) or not (part[0] <= span[0] and span[1] <= part[1]):
        return None
    return span[0], span[1], part[2]
