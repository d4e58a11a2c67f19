"""A small WSGI app to try edgecache with: ``edgecache serve examples.hello:app``.

``/`` is fresh for 10 seconds; ``/slow`` takes a second to build and is fresh for 30;
``/private`` is never shared. Watch the Age and Cache-Status headers with ``curl -i``.
"""

import time


def app(environ, start_response):  # type: ignore[no-untyped-def]
    path = environ.get("PATH_INFO", "/")
    if path == "/slow":
        time.sleep(1)
        body, cc = b"built slowly at %d\n" % time.time(), "max-age=30"
    elif path == "/private":
        body, cc = b"only for you\n", "private, max-age=60"
    else:
        body, cc = b"hello from behind edgecache at %d\n" % time.time(), "max-age=10"
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                              ("Cache-Control", cc), ("Content-Length", str(len(body)))])
    return [body]
