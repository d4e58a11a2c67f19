"""ASGI 3 type aliases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from edgecache.core.headers import Headers

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@runtime_checkable
class AnswersHits(Protocol):
    """The contract between a layer and a cache below it: ``answer_hit`` answers from
    the cache and returns True, or sends nothing and returns False (then the layer calls
    the cache as any ASGI app). A compression layer above a cache calls it first, so a
    hit, already in the client's coding, skips the compression wrapping."""

    async def answer_hit(self, scope: Scope, send: Send, headers: Headers) -> bool: ...
