"""Requests the cache makes on its own (stale-while-revalidate refreshes)."""

from __future__ import annotations

import asyncio

import pytest


def test_background_request_body_is_empty_then_silent() -> None:
    from edgecache.asgi.cache import empty_body

    async def check() -> None:
        receive = empty_body()
        assert (await receive())["more_body"] is False
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(receive(), 0.01)

    asyncio.run(check())
