"""A setting is a dataclass field plus its metadata (help text, unit, bounds, which
command takes it). Everything else is derived from the annotation and that metadata:
the parser of its ``EDGECACHE_*`` variable and CLI flag, its check, its choices and
how ``--help`` shows it. There is no second table to keep in step.

    max_bytes: int = setting(256 * 1024**2, "Total size the store may hold.",
                             unit="bytes", above=0)

gives ``EDGECACHE_MAX_BYTES`` and ``--max-bytes``, both accepting ``256M``, a check
that fails with ``setting max_bytes (EDGECACHE_MAX_BYTES, --max-bytes) = 0: expected
a size > 0``, and a help line showing ``default: 256 MiB``.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from edgecache.errors import ConfigError
from edgecache.settings.values import (
    format_seconds,
    format_size,
    parse_bool,
    parse_float,
    parse_int,
    parse_names,
    parse_seconds,
    parse_size,
    parse_whole_seconds,
)

ENV_PREFIX = "EDGECACHE_"
Unit = Literal["", "bytes", "seconds"]
_T = TypeVar("_T")
_KEY = "edgecache.setting"


@dataclass(frozen=True)
class Meta:
    """What a setting's annotation cannot say."""

    help: str
    unit: Unit = ""
    above: float | None = None
    at_least: float | None = None
    at_most: float | None = None
    valid: Callable[[Any], bool] | None = None
    """A further test of the value (of each item, for a tuple)."""
    accepted: str = ""
    """What the error message says is expected, when the bounds do not say it."""
    choices: tuple[str, ...] = ()
    """For a tuple of names: the names allowed (a Literal annotation gives its own)."""
    parse: Callable[[str], Any] | None = None
    """For annotations with no parser of their own (auth rules, codings)."""
    metavar: str = ""
    aliases: tuple[str, ...] = ()
    """More flag spellings (``--port`` for ``--listen-port``)."""
    proxy_only: bool = False
    """Only ``edgecache proxy`` takes it (upstreams, forwarding); ``serve`` has no flag."""


def setting(
    default: _T,
    help: str,
    *,
    unit: Unit = "",
    above: float | None = None,
    at_least: float | None = None,
    at_most: float | None = None,
    valid: Callable[[Any], bool] | None = None,
    accepted: str = "",
    choices: tuple[str, ...] = (),
    parse: Callable[[str], Any] | None = None,
    metavar: str = "",
    aliases: tuple[str, ...] = (),
    proxy_only: bool = False,
) -> _T:
    """A settings dataclass field: its default and its metadata (see ``Meta``)."""
    meta = Meta(
        " ".join(help.split()),
        unit,
        above,
        at_least,
        at_most,
        valid,
        accepted,
        choices,
        parse,
        metavar,
        aliases,
        proxy_only,
    )
    field: _T = dataclasses.field(default=default, metadata={_KEY: meta})
    return field


@dataclass(frozen=True)
class Spec:
    """One setting as the environment reader, the checks and the CLI see it."""

    name: str
    kind: Any
    """The resolved annotation: bool, int, float, str, a Literal or a tuple type."""
    default: Any
    meta: Meta

    @property
    def variable(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def is_literal(self) -> bool:
        return typing.get_origin(self.kind) is Literal

    @property
    def choices(self) -> tuple[str, ...]:
        if self.is_literal:
            return tuple(str(a) for a in typing.get_args(self.kind))
        return self.meta.choices

    @property
    def is_tuple(self) -> bool:
        return typing.get_origin(self.kind) is tuple

    def parse(self, raw: str) -> Any:
        """The value of ``raw`` text (a variable or a flag); ValueError when malformed."""
        return _parser(self)(raw)

    def show(self, value: Any) -> str:
        """``value`` as text the parser accepts: ``256 MiB``, ``5m``, ``on``."""
        if isinstance(value, bool):
            return "on" if value else "off"
        if self.meta.unit == "bytes":
            return format_size(value)
        if self.meta.unit == "seconds":
            return format_seconds(value)
        if isinstance(value, tuple):
            return ",".join(str(v) for v in value) or "none"
        return str(value) if value != "" else "none"

    @property
    def label(self) -> str:
        """How messages name it: every face's spelling."""
        return f"setting {self.name} ({self.variable}, {self.flag})"

    def fail(self, value: object, expected: str) -> ConfigError:
        return ConfigError(f"{self.label} = {value!r}: expected {expected}")

    def read(self, raw: str) -> Any:
        """``raw`` text's value, parsed and checked; ConfigError naming the setting."""
        try:
            value = self.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{self.label} = {raw!r}: {exc}") from None
        self.check(value)
        return value

    def check(self, value: Any) -> None:
        """Raise ConfigError, naming the setting, unless ``value`` is acceptable."""
        items = value if self.is_tuple and isinstance(value, tuple) else (value,)
        if not _has_type(self.kind, value):
            raise self.fail(value, _noun(self))
        choices = self.choices
        valid = self.meta.valid
        for item in items:
            if choices and item not in choices:
                raise self.fail(item, "one of " + ", ".join(choices))
            if valid is not None and not valid(item):
                raise self.fail(item, self.meta.accepted or _noun(self))
        if not self.is_tuple and not _in_bounds(self.meta, value):
            raise self.fail(value, self.meta.accepted or _bounds(self))


_SPECS: dict[type, tuple[Spec, ...]] = {}


def specs(cls: type) -> tuple[Spec, ...]:
    """The settings of a settings dataclass, in field order (resolved once per class)."""
    found = _SPECS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        found = _SPECS[cls] = tuple(
            Spec(f.name, hints[f.name], f.default, f.metadata[_KEY])
            for f in dataclasses.fields(cls)
        )
    return found


def named(cls: type, name: str) -> Spec:
    """The setting ``name`` of ``cls``, for a check that spans several settings."""
    return next(spec for spec in specs(cls) if spec.name == name)


def check_fields(settings: object, cls: type) -> None:
    """Every check ``cls``'s fields declare, on ``settings``. Text given for a setting
    whose values are not text (a keyword ``max_bytes="256M"``, a route file's
    ``fail_timeout = "10s"``) is read as its variable would be."""
    for spec in specs(cls):
        value = getattr(settings, spec.name)
        if isinstance(value, str) and spec.kind is not str and not spec.is_literal:
            value = spec.read(value)
            object.__setattr__(settings, spec.name, value)  # frozen, but still being made
        spec.check(value)


def _parser(spec: Spec) -> Callable[[str], Any]:
    kind, meta = spec.kind, spec.meta
    if meta.parse is not None:
        return meta.parse
    if meta.unit == "bytes":
        return parse_size
    if meta.unit == "seconds":
        return parse_whole_seconds if kind is int else parse_seconds
    simple: dict[Any, Callable[[str], Any]] = {
        bool: parse_bool,
        int: parse_int,
        float: parse_float,
        str: str,
    }
    if kind in simple:
        return simple[kind]
    if spec.is_literal:
        return str  # the check then names the choices
    if typing.get_args(kind) == (str, ...):
        return parse_names
    raise TypeError(f"setting {spec.name}: no parser for {kind!r}; give one with parse=")


def _has_type(kind: Any, value: Any) -> bool:
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in (bool, str):
        return isinstance(value, kind)
    if typing.get_origin(kind) is tuple:
        return isinstance(value, tuple)
    return True  # a Literal: its choices are checked


def _in_bounds(meta: Meta, value: Any) -> bool:
    if not isinstance(value, int | float):
        return True
    return (
        (meta.above is None or value > meta.above)
        and (meta.at_least is None or value >= meta.at_least)
        and (meta.at_most is None or value <= meta.at_most)
    )


def _noun(spec: Spec) -> str:
    if spec.meta.unit == "bytes":
        return "a size"
    if spec.meta.unit == "seconds":
        return "seconds"
    if spec.kind is bool:
        return "on or off"
    if spec.kind is int:
        return "an integer"
    if spec.kind is float:
        return "a number"
    if spec.is_tuple:
        return "a list"
    return "text"


def _bounds(spec: Spec) -> str:
    meta = spec.meta
    low = f"{meta.at_least:g}" if meta.at_least is not None else None
    high = f"{meta.at_most:g}" if meta.at_most is not None else None
    if low is not None and high is not None:
        return f"{_noun(spec)} from {low} to {high}"
    parts = [
        f"{op} {bound:g}"
        for op, bound in ((">", meta.above), (">=", meta.at_least), ("<=", meta.at_most))
        if bound is not None
    ]
    return " ".join([_noun(spec), *parts])
