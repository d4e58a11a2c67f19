"""Background revalidation (RFC 5861 stale-while-revalidate) through a lane's pool: the
stale answer is on its way, and one request per URL refreshes the entry meanwhile."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from edgecache.core.exchange import Exchange, Respond, Upstream
from edgecache.core.forwarded import downstream_response_headers, upstream_request_headers
from edgecache.core.headers import Headers
from edgecache.proxy.forward import Failure
from edgecache.proxy.lanes import Lane, store_ended

log = logging.getLogger("edgecache.proxy")


class Revalidations:
    """The refreshes under way in this process (kept, so none is collected midway)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def start(
        self,
        lane: Lane,
        exchange: Exchange,
        respond: Respond,
        user: str = "",
        client: str | None = None,
    ) -> None:
        """Refresh the entry ``respond`` answered stale from, unless a refresh or a
        fetch of the same URL is already on its way. ``user`` and ``client``: of the
        request that got the stale answer, so the refresh goes upstream as it would
        have (an origin behind auth sees the same X-Remote-User, not an anonymous
        request whose answer, a login page, would then replace the entry)."""
        assert lane.cache is not None and respond.refresh is not None
        coalescer = lane.cache.coalescer
        key = exchange.request.primary_key
        if coalescer.in_flight(key):
            return
        coalescer.begin(key)
        revalidation = lane.cache.engine.revalidation(exchange, respond.refresh)
        work = _revalidate(lane, revalidation, user, client)
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _revalidate(lane: Lane, exchange: Exchange, user: str, client: str | None) -> None:
    assert lane.cache is not None and lane.forwarder is not None
    engine = lane.cache.engine
    key = exchange.request.primary_key
    first = exchange.first
    assert isinstance(first, Upstream)
    forwarder = lane.forwarder
    fields = first.headers

    def upstream_fields(place: Any) -> list[tuple[bytes, bytes]]:
        return upstream_request_headers(
            fields,
            client,
            user or None,
            exchange.request.scheme,
            "1.1",
            place.host,
            forwarder.options,
        )

    try:
        opened = await forwarder.open("GET", exchange.request.target, upstream_fields, None)
        if isinstance(opened, Failure):
            return
        try:
            response = opened.response
            headers = downstream_response_headers(
                response.headers, response.http_version, forwarder.options.via_name
            )
            action = exchange.on_head(response.status, Headers(headers), engine.clock())
            engine.apply(exchange)
            if isinstance(action, Respond) or not action.keep_copy:
                return
            async for chunk in response:
                exchange.on_body(chunk)
            store_ended(lane, exchange)
        finally:
            forwarder.finished(opened)
    except Exception:
        exchange.on_abort()
        log.exception("background revalidation of %s failed", key)
    finally:
        lane.cache.coalescer.end(key)
