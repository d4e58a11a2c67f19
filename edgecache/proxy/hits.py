"""A cache answer as the wire layer's pre-serialised ``Answer``: the hit path's bytes.

The status line and the stored fields of an entry's answer are serialised once per
coding and kept on the entry (``Entry.wire_heads``); a hit then writes that block, a
second one with Age and Cache-Status (the two fields that change per answer), and the
stored body, in one ``writelines``. Answers that differ from the stored head (304, a
range, on-the-fly encoding, header rules) are serialised whole.
"""

from __future__ import annotations

from edgecache.core.exchange import Answer, Respond
from edgecache.core.model import Entry
from edgecache.wire.framing import status_line
from edgecache.wire.types import Answer as WireAnswer

Pairs = list[tuple[bytes, bytes]]
PER_ANSWER = 2
"""The fields ``policy.answer`` appends to the stored ones: Age and Cache-Status."""


def field_lines(pairs: Pairs) -> bytes:
    return b"".join([name + b": " + value + b"\r\n" for name, value in pairs])


def _stored_head(answer: Answer, entry: Entry, coding: str, method: str) -> str | None:
    """The coding whose stored head ``answer`` starts with, or None when it differs."""
    if answer.status != entry.status:
        return None
    size = len(answer.headers) - PER_ANSWER
    if answer.body is entry.body or method == "HEAD":
        return "identity" if size == len(entry.headers) else None
    copy = entry.encoded.get(coding)
    if copy is not None and answer.body is copy[1] and size == len(copy[0]):
        return coding
    return None


def wire_answer(
    respond: Respond, answer: Answer, method: str, updates: Pairs, route: str = ""
) -> WireAnswer:
    """``answer`` (what the engine made of ``respond``) as bytes for the wire layer;
    ``updates`` are header rules' fields to set, ``route`` the metrics' label."""
    entry = respond.entry
    headers = answer.headers
    cache_status = headers[-1][1].decode("latin-1") if headers else ""
    outcome = respond.outcome
    if entry is not None and not updates:
        key = _stored_head(answer, entry, respond.coding, method)
        if key is not None:
            block = entry.wire_heads.get(key)
            if block is None:
                block = status_line(answer.status) + field_lines(headers[:-PER_ANSWER])
                entry.wire_heads[key] = block
            tail = field_lines(headers[-PER_ANSWER:])
            return WireAnswer(
                answer.status, (block, tail), (answer.body,), True, cache_status, "", outcome, route
            )
    if updates:
        names = {name for name, _ in updates}
        headers = [h for h in headers if h[0] not in names] + updates
    has_date = any(name == b"date" for name, _ in headers)
    head = status_line(answer.status) + field_lines(headers)
    body = (answer.body,)
    return WireAnswer(answer.status, (head,), body, has_date, cache_status, "", outcome, route)
