"""``edgecache explain URL [-H 'Header: v' ...]``: ask a running edge why it does what
it does for URL (its ``/_edgecache/explain`` endpoint, behind the admin token).

The token comes from ``--token`` or ``EDGECACHE_ADMIN_TOKEN``, as the edge reads it.
The edge asked is the URL's own scheme and host unless ``--edge`` names another
address (a node behind a balancer, say): the URL is still explained as clients ask it.
Only the standard library is used, so the command works wherever edgecache installs.
"""

from __future__ import annotations

import argparse
import os
import ssl
import sys
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode, urlsplit

from edgecache.config import ENV_PREFIX

ENDPOINT = "/_edgecache/explain"


def add_explain_command(sub: Any) -> None:
    """Register ``explain`` on the ``edgecache`` command's subparsers."""
    command = sub.add_parser(
        "explain",
        help="ask a running edge why a URL is (not) cached",
        description="Explain the cache's view of URL: stored variants, age and lifetime, "
        "what the next request would get and why, or why the last answer was not stored.",
    )
    command.add_argument("url", help="the URL as clients ask the edge for it")
    command.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'Name: value'",
        help="a request header of the request to explain (repeatable)",
    )
    command.add_argument(
        "--method", default="GET", choices=["GET", "HEAD"], help="the request's method"
    )
    command.add_argument("--edge", help="the edge to ask (default: the URL's scheme://host)")
    command.add_argument("--token", help=f"admin token [default: ${ENV_PREFIX}ADMIN_TOKEN]")
    command.add_argument("--json", action="store_true", help="answer as JSON")
    command.add_argument(
        "--insecure", action="store_true", help="do not verify the edge's TLS certificate"
    )
    command.set_defaults(func=run_explain)


def explain_url(args: argparse.Namespace) -> str:
    """The endpoint URL to ask for ``args``."""
    parts = urlsplit(args.url)
    edge = args.edge or f"{parts.scheme or 'http'}://{parts.netloc}"
    query = [("url", args.url), *(("header", h) for h in args.header)]
    if args.method != "GET":
        query.append(("method", args.method))
    return edge.rstrip("/") + ENDPOINT + "?" + urlencode(query)


def run_explain(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get(ENV_PREFIX + "ADMIN_TOKEN", "")
    if not token:
        print(
            f"edgecache: explain needs the edge's admin token (--token or {ENV_PREFIX}ADMIN_TOKEN)",
            file=sys.stderr,
        )
        return 2
    accept = "application/json" if args.json else "text/plain"
    request = urllib.request.Request(
        explain_url(args), headers={"Authorization": f"Bearer {token}", "Accept": accept}
    )
    context = ssl._create_unverified_context() if args.insecure else None
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:
            sys.stdout.write(answer.read().decode("utf-8"))
            return 0
    except urllib.error.HTTPError as exc:
        body = exc.read().decode("utf-8", "replace").strip()
        print(f"edgecache: the edge answered {exc.code}: {body}", file=sys.stderr)
    except (urllib.error.URLError, OSError) as exc:
        print(f"edgecache: cannot ask the edge at {explain_url(args)}: {exc}", file=sys.stderr)
    return 1
