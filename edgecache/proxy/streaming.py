"""A miss or pass whose body is too large to read whole: streamed from the upstream to
the client chunk by chunk, encoded on the way when the compression driver said so, with
the exchange keeping its copy while it means to store (and the copy fits)."""

from __future__ import annotations

from edgecache.compression import ENCODINGS, make_encoder
from edgecache.core.compressing import Compressing, Hold, Replace, Unchanged
from edgecache.core.exchange import Exchange
from edgecache.metrics import UPSTREAM_BYTES
from edgecache.proxy.forward import Opened
from edgecache.proxy.lanes import Lane, store_ended, with_updates
from edgecache.wire.types import Reply

Pairs = list[tuple[bytes, bytes]]


async def stream_body(
    lane: Lane,
    reply: Reply,
    exchange: Exchange | None,
    opened: Opened,
    plan: Compressing | None,
    step: Hold | Replace | Unchanged,
    status: int,
    headers: Pairs,
    updates: Pairs,
) -> None:
    """``exchange``: set when it keeps a copy. Upstream errors come out as they are
    (the caller closes the client's connection: a truncated answer, never a whole-looking
    one); the exchange then stores nothing."""
    response = opened.response
    encoder = None
    flush_each = False
    if isinstance(step, Hold):
        assert plan is not None and lane.compress is not None
        encoder = make_encoder(plan.coding, lane.compress.settings.quality(plan.coding))
        ENCODINGS.add("stream", plan.coding)
        streaming = plan.streaming()
        flush_each = streaming.flush_each
        headers = streaming.headers
    reply.start(status, with_updates(headers, updates))
    received = 0
    try:
        async for chunk in response:
            received += len(chunk)
            if exchange is not None:
                exchange.on_body(chunk)
            if encoder is not None:
                chunk = encoder.compress(chunk)
                if flush_each:
                    chunk += encoder.flush()
                if not chunk:
                    continue
            await reply.write(chunk)
    finally:
        UPSTREAM_BYTES.inc(received)  # once per answer: the counter takes a lock
    if exchange is not None:
        store_ended(lane, exchange)
    reply.end(encoder.finish() if encoder is not None else b"")
