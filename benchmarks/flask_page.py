"""The 10 KB page of benchmarks/apps.py as a Flask app: ``/page`` fresh for an hour,
``/miss`` never stored (benchmarks/serve.py)."""

from __future__ import annotations

from flask import Flask, Response

from benchmarks.apps import BODY

app = Flask(__name__)


@app.route("/page")
def page() -> Response:
    return Response(BODY, content_type="text/html", headers={"Cache-Control": "max-age=3600"})


@app.route("/miss")
def miss() -> Response:
    return Response(BODY, content_type="text/html", headers={"Cache-Control": "no-store"})
