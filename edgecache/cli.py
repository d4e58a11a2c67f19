"""The ``edgecache`` command: ``proxy``, ``serve``, ``check-config``, ``reload``,
``passwd``, ``compress-static``, ``explain``.

Every setting is a flag and an ``EDGECACHE_*`` variable; ``--help`` lists them with
their defaults. Flags are exported to the environment so worker processes rebuild the
same settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import sys
from collections.abc import Callable

from edgecache import __version__
from edgecache.auth import update_htpasswd
from edgecache.config import GROUPS, Settings
from edgecache.errors import ConfigError
from edgecache.explain_cli import add_explain_command
from edgecache.settings.flags import VALUES_HELP, add_setting_flags, flag_variables


def export_settings(args: argparse.Namespace) -> Settings:
    """Flags given become EDGECACHE_* variables (for workers too); then validate."""
    os.environ.update(flag_variables(args, Settings.specs()))
    return Settings.from_env()


def _proxy(args: argparse.Namespace) -> int:
    from edgecache.wire.runner import run

    settings = export_settings(args)
    if not settings.upstream and not settings.config:
        raise ConfigError(
            "setting upstream (--upstream, EDGECACHE_UPSTREAM) or config (--config, "
            "EDGECACHE_CONFIG) is required, e.g. --upstream http://127.0.0.1:8000"
        )
    return run(settings, log_level=settings.log_level)


def _serve(args: argparse.Namespace) -> int:
    from edgecache.serve.runner import run

    settings = export_settings(args)
    return run(
        # The proxy's own settings (variables can still set them) do not apply to an app.
        dataclasses.replace(settings, upstream="", config=""),
        args.app,
        log_level=settings.log_level,
    )


def _check_config(args: argparse.Namespace) -> int:
    """Validate the settings and what they name (route file, user files, TLS files)
    without starting, as ``nginx -t`` does; the ports are not tried (a server that is
    running may hold them)."""
    from edgecache.proxy.server import preflight

    settings = export_settings(args)
    if not settings.upstream and not settings.config:
        raise ConfigError("setting upstream (--upstream) or config (--config) is required")
    preflight(settings, ports=False)
    print(f"edgecache: configuration ok ({settings.config or settings.upstream})")
    return 0


def _reload(args: argparse.Namespace) -> int:
    """SIGHUP to the server whose pid file is given: it reloads in place."""
    import signal

    try:
        with open(args.pid_file) as f:
            pid = int(f.read().strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"pid file {args.pid_file!r}: cannot signal its server: {exc}") from None
    print(f"edgecache: asked process {pid} to reload; its log says whether it did")
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
    parser.add_argument("--version", action="version", version=f"edgecache {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    proxy = _command(
        sub,
        "proxy",
        _proxy,
        usage="%(prog)s [options]",
        help="reverse proxy with cache, compression, auth, TLS",
        description="Put the edge chain in front of any HTTP backend.",
    )
    serve = _command(
        sub,
        "serve",
        _serve,
        usage="%(prog)s [options] app",
        help="run a WSGI or ASGI app behind the edge chain",
        description="Serve a Python app behind the edge chain.",
    )
    serve.add_argument("app", help="module:attribute of the WSGI or ASGI app")
    check = _command(
        sub,
        "check-config",
        _check_config,
        usage="%(prog)s [proxy options]",
        help="validate the proxy's settings and route file without starting (nginx -t)",
        description="Check the settings, the route file, user files and TLS files as "
        "`edgecache proxy` would at start; exit 0 when they are fine, 2 naming the "
        "first problem (file, line and key for the route file).",
    )
    for name, command in (("proxy", proxy), ("serve", serve), ("proxy", check)):
        add_setting_flags(command, GROUPS, name)
        command.epilog = VALUES_HELP
    reload = _command(
        sub,
        "reload",
        _reload,
        help="make a running server re-read its configuration, keeping its cache",
        description="Send SIGHUP to the server whose --pid-file is given: it re-reads "
        "its settings, route file, user files and TLS certificates and keeps its cache; "
        "a bad configuration is refused (see its log) and the old one keeps serving.",
    )
    reload.add_argument("--pid-file", required=True, help="the server's --pid-file")
    passwd = _command(
        sub,
        "passwd",
        _passwd,
        help="create or update a bcrypt user, like htpasswd -B",
        description="Add or update USER in an htpasswd FILE; the password is read from "
        "the terminal (twice) or one line of stdin.",
    )
    passwd.add_argument("file", help="htpasswd file (created when missing)")
    passwd.add_argument("user", help="user name (no colon)")
    passwd.add_argument("--cost", type=int, default=10, help="bcrypt cost (default %(default)s)")
    squeeze = _command(
        sub,
        "compress-static",
        _compress_static,
        help="write .br/.zst/.gz siblings of static files, max quality",
        description="Write .br, .zst and .gz siblings beside the compressible files of "
        "DIRECTORY, kept only where they save enough.",
    )
    squeeze.add_argument("directory", help="the static root, walked recursively")
    add_explain_command(sub)
    return parser


def _command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    func: Callable[[argparse.Namespace], int],
    help: str,
    description: str,
    usage: str | None = None,
) -> argparse.ArgumentParser:
    # allow_abbrev off: a prefix that works today would become ambiguous, or mean
    # another flag, when a setting is added; a typo gets a did-you-mean instead.
    command = sub.add_parser(
        name, allow_abbrev=False, help=help, description=description, usage=usage
    )
    command.set_defaults(func=func)
    return command


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next(
        dict(action.choices)
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
    )


def _unrecognised(command: argparse.ArgumentParser, extra: list[str]) -> str:
    """argparse's message, with the nearest flag of this command."""
    message = f"unrecognized arguments: {' '.join(extra)}"
    flags = [option for action in command._actions for option in action.option_strings]
    typed = next((word.split("=", 1)[0] for word in extra if word.startswith("-")), "")
    close = difflib.get_close_matches(typed, flags, n=1, cutoff=0.6)
    return message + (f" (did you mean {close[0]}?)" if close else "")


def main(argv: list[str] | None = None) -> int:
    # parse_known_args, so a mistyped flag is reported by its command's parser (with
    # that command's usage) rather than by the top-level one.
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        command = _subcommands(parser)[args.command]
        command.error(_unrecognised(command, extra))
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"edgecache: {exc}", file=sys.stderr)
        return 2
