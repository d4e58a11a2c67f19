"""A Starlette (ASGI) app under uvicorn workers, behind edgecache:

    edgecache serve examples.starlette_app:app --workers 4

A FastAPI app is served the same way (``edgecache serve main:app``): any ASGI app runs
under uvicorn workers, each on its own unix socket behind the one edge.
"""

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route


async def home(request: Request) -> HTMLResponse:
    return HTMLResponse(
        f"<h1>Hello from uvicorn worker {os.getpid()}</h1>\n",
        headers={"Cache-Control": "public, max-age=30"},
    )


app = Starlette(routes=[Route("/", home)])
