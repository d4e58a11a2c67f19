"""The ``edgecache`` command: ``proxy``, ``serve``, ``passwd``.

Every setting is a flag and an ``EDGECACHE_*`` variable; ``--help`` lists them with
their defaults. Flags are exported to the environment so worker processes rebuild the
same settings.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import os
import sys
from collections.abc import Callable
from typing import Any

from edgecache.apps import load_app
from edgecache.auth import update_htpasswd
from edgecache.config import ENV_PREFIX, Settings
from edgecache.errors import ConfigError
from edgecache.explain_cli import add_explain_command

ALIASES = {"listen_host": ["--host"], "listen_port": ["--port"]}


@functools.cache
def setting_docs() -> dict[str, str]:
    """Each setting's docstring, read from the Settings class source: one place for them."""
    tree = ast.parse(inspect.getsource(Settings))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, following in zip(body, [*body[1:], None], strict=True):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            text = ""
            if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
                text = " ".join(str(following.value.value).split())
            docs[node.target.id] = text
    return docs


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "none"
    return str(value) if value != "" else "none"


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (flag, or the EDGECACHE_* variable)")
    docs = setting_docs()
    for field in dataclasses.fields(Settings):
        flags = ["--" + field.name.replace("_", "-"), *ALIASES.get(field.name, [])]
        variable = ENV_PREFIX + field.name.upper()
        default = field.default
        help_text = f"{docs.get(field.name, '')} [{variable}; default: {_shown(default)}]"
        if field.name == "upstream":
            group.add_argument(
                *flags,
                dest=f"setting_{field.name}",
                action="append",
                metavar="URL[;weight=N]",
                help=help_text + " (repeatable)",
            )
        elif isinstance(default, bool):
            group.add_argument(
                *flags,
                dest=f"setting_{field.name}",
                default=None,
                action=argparse.BooleanOptionalAction,
                help=help_text,
            )
        else:
            group.add_argument(
                *flags,
                dest=f"setting_{field.name}",
                default=None,
                metavar="VALUE",
                help=help_text.replace("%", "%%"),
            )


def export_settings(args: argparse.Namespace) -> Settings:
    """Flags given become EDGECACHE_* variables (for workers too); then validate."""
    for field in dataclasses.fields(Settings):
        value = getattr(args, f"setting_{field.name}", None)
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, list):
            value = ",".join(value)
        os.environ[ENV_PREFIX + field.name.upper()] = str(value)
    return Settings.from_env()


def _runner(settings: Settings) -> Callable[..., int]:
    """The server under proxy/serve: uvicorn, or the wire layer (``--server wire``)."""
    if settings.server == "wire":
        from edgecache.wire.runner import run as run_wire

        return run_wire
    from edgecache.proxy.server import run

    return run


def _proxy(args: argparse.Namespace) -> int:
    settings = export_settings(args)
    run = _runner(settings)
    if not settings.upstream and not settings.config:
        raise ConfigError(
            "setting upstream (--upstream, EDGECACHE_UPSTREAM) or config (--config, "
            "EDGECACHE_CONFIG) is required, e.g. --upstream http://127.0.0.1:8000"
        )
    return run(settings, log_level=args.log_level)


def _serve(args: argparse.Namespace) -> int:
    settings = export_settings(args)
    run = _runner(settings)
    load_app(args.app)  # fail here, clearly, before any server starts
    return run(
        dataclasses.replace(settings, upstream=""), app_spec=args.app, log_level=args.log_level
    )


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


def _compress_static(args: argparse.Namespace) -> int:
    """Write .br, .zst and .gz siblings at maximum quality beside compressible files."""
    from edgecache.static_compress import compress_tree

    written, skipped = compress_tree(args.directory)
    print(
        f"edgecache: wrote {written} precompressed files ({skipped} not worth it)", file=sys.stderr
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgecache", description="The edge layer nginx plays, in Python."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    proxy = sub.add_parser(
        "proxy",
        help="reverse proxy with cache, compression, auth, TLS",
        description="Put the edge chain in front of any HTTP backend.",
    )
    proxy.set_defaults(func=_proxy)
    serve = sub.add_parser(
        "serve",
        help="run a WSGI or ASGI app behind the edge chain",
        description="Serve a Python app behind the edge chain.",
    )
    serve.add_argument("app", help="module:attribute of the WSGI or ASGI app")
    serve.set_defaults(func=_serve)
    for command in (proxy, serve):
        command.add_argument(
            "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
        )
        add_setting_flags(command)
    passwd = sub.add_parser("passwd", help="create or update a bcrypt user, like htpasswd -B")
    passwd.add_argument("file", help="htpasswd file (created when missing)")
    passwd.add_argument("user")
    passwd.add_argument("--cost", type=int, default=10, help="bcrypt cost (default %(default)s)")
    passwd.set_defaults(func=_passwd)
    squeeze = sub.add_parser(
        "compress-static", help="write .br/.zst/.gz siblings of static files, max quality"
    )
    squeeze.add_argument("directory")
    squeeze.set_defaults(func=_compress_static)
    add_explain_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"edgecache: {exc}", file=sys.stderr)
        return 2
