"""A Flask app under gunicorn workers, behind edgecache (nginx + gunicorn in one):

    edgecache serve examples.flask_app:app --workers 4     # sync gunicorn workers
    edgecache serve examples.flask_app:app --workers 4 --worker-class gthread

The app says how long its pages may be shared; edgecache caches and compresses them,
so a hit never reaches a gunicorn worker.
"""

import os

from flask import Flask

app = Flask(__name__)


@app.route("/")
def home():  # type: ignore[no-untyped-def]
    return f"<h1>Hello from gunicorn worker {os.getpid()}</h1>\n", {
        "Cache-Control": "public, max-age=30"
    }


@app.route("/account")
def account():  # type: ignore[no-untyped-def]
    return "yours only\n", {"Cache-Control": "private, no-store"}
