"""Running a handler for one request, the same on HTTP/1.1 and HTTP/2: the fast path
first, then a task; what the handler's exceptions become (413, 408, an abort, 500)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from edgecache.wire.types import (
    Answer,
    BodyTimeout,
    BodyTooLarge,
    ClientGone,
    Handler,
    Reply,
    Request,
)

log = logging.getLogger("edgecache.wire")


class Answering(Reply, Protocol):
    """A Reply the wire layer can also answer in the handler's place."""

    @property
    def request(self) -> Request: ...

    @property
    def finished(self) -> bool: ...

    def fail(self, status: int, text: str) -> None: ...

    def answer(self, answer: Answer) -> None: ...

    task: asyncio.Task[None] | None


Item = TypeVar("Item", bound=Answering)


def begin(
    handler: Handler,
    item: Item,
    loop: asyncio.AbstractEventLoop,
    tasks: set[asyncio.Task[None]],
    run: Callable[[Item], Coroutine[Any, Any, None]],
) -> None:
    """``answer_now`` at once (a hit: no task, no coroutine), else ``run(item)`` in a
    task the server keeps until it ends."""
    request = item.request
    try:
        answer = handler.answer_now(request)
    except Exception:
        log.exception("wire: answer_now failed for %r", request)
        item.fail(500, "Internal Server Error")
        return
    if answer is not None:
        item.answer(answer)
        return
    task = loop.create_task(run(item))
    item.task = task
    tasks.add(task)
    task.add_done_callback(tasks.discard)


def wake(waiter: asyncio.Future[None] | None, error: BaseException | None = None) -> None:
    """Wake the body's reader: with ``error`` raised in it, or to read on."""
    if waiter is not None and not waiter.done():
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)


async def run_handler(handler: Handler, reply: Answering) -> bool:
    """Await ``handler.handle``; True when it returned, having answered or not (the
    caller checks which), False when it raised and was answered for here."""
    try:
        await handler.handle(reply.request, reply)
    except BodyTooLarge:
        reply.fail(413, "Content Too Large")
    except BodyTimeout:
        reply.fail(408, "Request Timeout")
    except ClientGone:
        reply.abort()
    except asyncio.CancelledError:
        reply.abort()
        raise
    except Exception:
        log.exception("wire: handler failed for %r", reply.request)
        reply.fail(500, "Internal Server Error")
    else:
        return True
    return False


def unfinished(reply: Answering) -> None:
    """After a handler returned: no answer is a 500; an answer left mid-body is cut
    (the client learns it by a close on HTTP/1.1, a reset on HTTP/2)."""
    if not reply.started:
        log.error("wire: handler returned no answer for %r", reply.request)
        reply.fail(500, "Internal Server Error")
    elif not reply.finished:
        reply.abort()  # returned mid-body: truncated, so say it by a close or a reset
