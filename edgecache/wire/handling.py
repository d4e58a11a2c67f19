"""Running a handler for one request, the same on HTTP/1.1 and HTTP/2: what its
exceptions become (413, 408, an abort, 500) before or after the answer started."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from edgecache.wire.types import BodyTimeout, BodyTooLarge, ClientGone, Handler, Reply, Request

log = logging.getLogger("edgecache.wire")


class Answering(Reply, Protocol):
    """A Reply the wire layer can also answer in the handler's place."""

    @property
    def request(self) -> Request: ...

    @property
    def finished(self) -> bool: ...

    def fail(self, status: int, text: str) -> None: ...


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
