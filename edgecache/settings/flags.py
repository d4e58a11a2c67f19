"""CLI flags from the settings' metadata: one flag per setting (its variable's twin),
grouped by concern, with its description, choices, default in the form the flag
accepts (``256 MiB``, ``5m``), and ``proxy``-only settings left out of ``serve``."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from typing import Any

from edgecache.errors import ConfigError
from edgecache.settings.fields import Spec, specs

VALUES_HELP = (
    "Sizes: 1048576, 512k, 256M, 256MiB, 1G. Durations: 30 (seconds), 250ms, 30s, 5m, "
    "1h, 1d. Lists are comma-separated. Every flag has an EDGECACHE_* variable twin; "
    "flags win over variables."
)
_METAVARS = {"bytes": "SIZE", "seconds": "TIME"}
_KIND_METAVARS: dict[Any, str] = {int: "N", float: "NUMBER", str: "TEXT"}


def add_setting_flags(
    parser: argparse.ArgumentParser, groups: Sequence[type], command: str
) -> None:
    """A flag for each setting of ``groups`` that ``command`` takes."""
    for group in groups:
        taken = [s for s in specs(group) if command == "proxy" or not s.meta.proxy_only]
        if not taken:
            continue
        title = group.__name__.removesuffix("Settings").lower() + " settings"
        section = parser.add_argument_group(title, (group.__doc__ or "").strip())
        for spec in taken:
            _add_flag(section, spec)


def _add_flag(section: Any, spec: Spec) -> None:
    flags = [spec.flag, *spec.meta.aliases]
    options: dict[str, Any] = {"dest": dest(spec), "help": _help(spec)}
    if isinstance(spec.default, bool):
        options["action"] = argparse.BooleanOptionalAction
    else:
        options["type"] = _validated(spec)
        options["metavar"] = _metavar(spec)
        if spec.name == "upstream":
            options["action"] = "append"
    section.add_argument(*flags, **options)


def _metavar(spec: Spec) -> str:
    if spec.meta.metavar:
        return spec.meta.metavar
    if spec.choices and not spec.is_tuple:
        # Listed like argparse's own choices, but checked by the setting, so that a bad
        # one is reported naming the setting, its variable and its flag.
        return "{" + ",".join(spec.choices) + "}"
    if spec.meta.unit:
        return _METAVARS[spec.meta.unit]
    return _KIND_METAVARS.get(spec.kind, "VALUE")


def dest(spec: Spec) -> str:
    return "setting_" + spec.name


def _help(spec: Spec) -> str:
    text = spec.meta.help
    if spec.is_tuple and spec.choices:
        text += " Any of: " + ", ".join(spec.choices) + "."
    if spec.name == "upstream":
        text += " Repeatable."
    text += f" [{spec.variable}; default: {_shown_default(spec)}]"
    return text.replace("%", "%%")  # argparse formats help with %


def _shown_default(spec: Spec) -> str:
    """The default as the flag takes it; a long list by its first items and its count."""
    if spec.is_tuple and len(spec.default) > 4:
        return ",".join(spec.default[:3]) + f",... ({len(spec.default)} in all)"
    return spec.show(spec.default)


def _validated(spec: Spec) -> Any:
    """argparse ``type``: the text unchanged if the setting takes it, so a bad value
    fails at once, naming the setting, with the command's usage."""

    def check(raw: str) -> str:
        try:
            spec.read(raw)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return raw

    check.__name__ = spec.name  # argparse names the type in some messages
    return check


def flag_variables(args: argparse.Namespace, every: Iterable[Spec]) -> dict[str, str]:
    """The ``EDGECACHE_*`` variables that the flags given stand for."""
    variables = {}
    for spec in every:
        value = getattr(args, dest(spec), None)
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, list):
            value = ",".join(value)
        variables[spec.variable] = str(value)
    return variables
