"""A Flask app under gunicorn workers, behind edgecache (nginx + gunicorn in one):

    edgecache serve examples.flask_app:app --workers 4     # sync gunicorn workers
    edgecache serve examples.flask_app:app --workers 4 --worker-class gthread

The app says how long its pages may be shared; edgecache caches and compresses them,
so a hit never reaches a gunicorn worker.
"""

import os

from flask import Flask

app = Flask(__name__)


PAGE = """<!doctype html><title>edgecache</title>
<h1>Hello from gunicorn worker {pid}</h1>
<p>This page may be shared for 30 seconds (<code>Cache-Control: public, max-age=30</code>).
Ask for it again: the edge answers from its cache, so the worker's pid above stays the
same, <code>Age</code> counts up and <code>Cache-Status</code> says <code>hit</code>.
Ask with <code>Accept-Encoding: br</code> and it comes brotli-encoded, from a copy the
edge made once. <a href="/account">/account</a> is private: never stored.</p>
""" + "<p>" + "Padding so that the page is worth compressing. " * 20 + "</p>\n"


@app.route("/")
def home():  # type: ignore[no-untyped-def]
    return PAGE.format(pid=os.getpid()), {"Cache-Control": "public, max-age=30"}


@app.route("/account")
def account():  # type: ignore[no-untyped-def]
    return "yours only\n", {"Cache-Control": "private, no-store"}
