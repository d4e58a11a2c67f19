"""The ``edgecache`` command. ``serve module:app`` runs an app behind EdgeCache."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

from edgecache.config import Settings
from edgecache.errors import ConfigError
from edgecache.stack import EdgeCache, detect_interface


def load_app(spec: str) -> Any:
    """Import ``module:attribute`` (the current directory is importable, as in gunicorn)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"app {spec!r}: expected module:attribute, e.g. myproject.app:app")
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"app {spec!r}: cannot import {module_name!r}: {exc}") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ConfigError(f"app {spec!r}: {module_name!r} has no {attribute!r}") from None


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = Settings.from_env()
    app = load_app(args.app)
    wrapped = EdgeCache(app, settings=settings)
    if detect_interface(app) == "wsgi":
        from a2wsgi import WSGIMiddleware

        wrapped = WSGIMiddleware(wrapped, workers=args.threads)
    print(
        f"edgecache: serving {args.app} on http://{args.host}:{args.port} "
        f"({settings.store} store, {settings.max_bytes // 1024**2} MiB)",
        file=sys.stderr,
    )
    uvicorn.run(
        wrapped,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        http="httptools",
        loop="uvloop",
    )
    return 0


def _passwd(args: argparse.Namespace) -> int:
    """Create or update a bcrypt entry, like ``htpasswd -B``."""
    import getpass

    import bcrypt

    if ":" in args.user or not args.user:
        raise ConfigError(f"user {args.user!r}: a user name is non-empty and has no colon")
    if sys.stdin.isatty():
        password = getpass.getpass(f"Password for {args.user}: ")
        if getpass.getpass("Again: ") != password:
            print("edgecache: passwords differ, nothing written", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    secret = password.encode("utf-8")
    if len(secret) > 72:
        raise ConfigError("password: bcrypt uses at most 72 bytes; choose a shorter one")
    hashed = bcrypt.hashpw(secret, bcrypt.gensalt(args.cost)).decode()
    replaced = update_htpasswd(args.file, args.user, hashed)
    print(
        f"edgecache: {'updated' if replaced else 'added'} {args.user} in {args.file}",
        file=sys.stderr,
    )
    return 0


def update_htpasswd(path: str, user: str, hashed: str) -> bool:
    """Replace or append ``user``'s line, keeping every other line; written atomically.
    True when the user was there already."""
    lines: list[str] = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    entry = f"{user}:{hashed}"
    existed = any(line.split(":", 1)[0] == user for line in lines)
    replaced = [entry if line.split(":", 1)[0] == user else line for line in lines]
    if not existed:
        replaced.append(entry)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(replaced) + "\n")
    if os.path.exists(path):
        os.chmod(tmp, os.stat(path).st_mode & 0o777)
    os.replace(tmp, path)
    return existed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgecache", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run a WSGI or ASGI app behind the edge chain")
    serve.add_argument("app", help="module:attribute of the WSGI or ASGI app")
    serve.add_argument(
        "--host",
        default=os.environ.get("EDGECACHE_HOST", "127.0.0.1"),
        help="listen address (EDGECACHE_HOST, default %(default)s)",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("EDGECACHE_PORT", 8080)),
        help="listen port (EDGECACHE_PORT, default %(default)s)",
    )
    serve.add_argument(
        "--threads", type=int, default=8, help="threads for a WSGI app (default %(default)s)"
    )
    serve.add_argument("--log-level", default="info", help="uvicorn log level")
    serve.set_defaults(func=_serve)
    passwd = sub.add_parser("passwd", help="create or update a bcrypt user, like htpasswd -B")
    passwd.add_argument("file", help="htpasswd file (created when missing)")
    passwd.add_argument("user")
    passwd.add_argument("--cost", type=int, default=10, help="bcrypt cost (default %(default)s)")
    passwd.set_defaults(func=_passwd)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"edgecache: {exc}", file=sys.stderr)
        return 2
