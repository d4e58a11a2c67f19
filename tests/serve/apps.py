"""The same small app as Flask (WSGI) and Starlette (ASGI), for ``edgecache serve`` in
tests. Every call appends ``path pid`` to the file named by ``SERVE_TEST_CALLS``, so a
test counts what reached an app process, whichever process it was.

    /cached   fresh for 60 s, built in 0.2 s (so that concurrent misses overlap)
    /pid      never stored: the pid of the worker that answered
    /slow     never stored, takes ``SERVE_TEST_SLOW`` seconds (default 2)
"""

from __future__ import annotations

import asyncio
import os
import time

from flask import Flask, Response
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

time.sleep(float(os.environ.get("SERVE_TEST_IMPORT_DELAY", "0")))  # a slow-booting app
SLOW = float(os.environ.get("SERVE_TEST_SLOW", "2"))
CACHED = {"cache-control": "max-age=60"}
UNCACHED = {"cache-control": "no-store"}


def record(path: str) -> None:
    calls = os.environ.get("SERVE_TEST_CALLS")
    if calls:
        with open(calls, "a") as f:  # one short append: whole lines, even from many processes
            f.write(f"{path} {os.getpid()}\n")


flask_app = Flask(__name__)


@flask_app.route("/cached")
def flask_cached() -> Response:
    record("/cached")
    time.sleep(0.2)
    return Response(f"cached page from {os.getpid()}\n", headers=CACHED)


@flask_app.route("/pid")
def flask_pid() -> Response:
    record("/pid")
    return Response(str(os.getpid()), headers=UNCACHED)


@flask_app.route("/slow")
def flask_slow() -> Response:
    record("/slow")
    time.sleep(SLOW)
    return Response("slow done", headers=UNCACHED)


async def star_cached(request: Request) -> PlainTextResponse:
    record("/cached")
    await asyncio.sleep(0.2)
    return PlainTextResponse(f"cached page from {os.getpid()}\n", headers=CACHED)


async def star_pid(request: Request) -> PlainTextResponse:
    record("/pid")
    return PlainTextResponse(str(os.getpid()), headers=UNCACHED)


async def star_slow(request: Request) -> PlainTextResponse:
    record("/slow")
    await asyncio.sleep(SLOW)
    return PlainTextResponse("slow done", headers=UNCACHED)


starlette_app = Starlette(
    routes=[Route("/cached", star_cached), Route("/pid", star_pid), Route("/slow", star_slow)]
)


def _wrapped() -> object:
    from edgecache import EdgeCache

    return EdgeCache(starlette_app)


wrapped_app = _wrapped()
"""Already wrapped in EdgeCache: serve must refuse it."""
