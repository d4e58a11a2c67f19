"""Setting values as text: what ``EDGECACHE_*`` variables and CLI flags accept, and how
``--help`` shows a default. Parsers raise ValueError with what they expected (the
caller adds the setting's name); formatters are their inverse, so a shown default is
also an accepted value."""

from __future__ import annotations

import re

from edgecache.core.auth import AuthRule

_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SIZE_NAMES = (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))
_SECONDS = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
_SECOND_UNITS = {"ms": 0.001, "": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SECOND_NAMES = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def parse_size(raw: str) -> int:
    """``1048576``, ``512k``, ``256M``, ``256 MiB``, ``1GiB`` -> bytes (binary units,
    as nginx reads ``k`` and ``m``)."""
    m = _SIZE.match(raw)
    if not m:
        raise ValueError("expected a size in bytes such as 1048576, 512k, 256M or 1GiB")
    unit = (m.group(2) or "").lower()[:1]
    return int(m.group(1)) * _SIZE_UNITS[unit]


def format_size(size: int) -> str:
    """268435456 -> ``256 MiB``: the largest binary unit that divides it evenly."""
    for name, factor in _SIZE_NAMES:
        if size and size % factor == 0:
            return f"{size // factor} {name}"
    return f"{size} B"


def parse_seconds(raw: str) -> float:
    """``30``, ``1.5``, ``250ms``, ``30s``, ``5m``, ``1h``, ``1d`` -> seconds."""
    m = _SECONDS.match(raw)
    if not m:
        raise ValueError("expected a duration such as 30 (seconds), 250ms, 30s, 5m, 1h or 1d")
    return float(m.group(1)) * _SECOND_UNITS[(m.group(2) or "").lower()]


def parse_whole_seconds(raw: str) -> int:
    seconds = parse_seconds(raw)
    if seconds != int(seconds):
        raise ValueError("expected a whole number of seconds")
    return int(seconds)


def format_seconds(seconds: float) -> str:
    """300 -> ``5m``, 0.25 -> ``250ms``, 75 -> ``75s``: nginx's notation."""
    for name, factor in _SECOND_NAMES:
        if seconds and seconds % factor == 0:
            return f"{int(seconds // factor)}{name}"
    millis = round(seconds * 1000)
    if seconds and abs(millis - seconds * 1000) < 1e-6:  # 0.001 * n is not exact in floats
        return f"{millis}ms"
    return f"{seconds:.15g}s"


def parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")


def parse_float(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError("expected a number") from None


def parse_int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("expected an integer") from None


def parse_names(raw: str) -> tuple[str, ...]:
    """``a, b,,c`` -> ("a", "b", "c")."""
    return tuple(n.strip() for n in raw.split(",") if n.strip())


def parse_codings(raw: str) -> tuple[str, ...]:
    return tuple(n.lower() for n in parse_names(raw))


def parse_auth(raw: str) -> tuple[AuthRule, ...]:
    """``/admin/:/etc/edgecache/admin.htpasswd:Admin area;/ops/:/etc/ops.htpasswd``"""
    rules = []
    for item in raw.split(";"):
        if not item.strip():
            continue
        parts = item.strip().split(":", 2)
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise ValueError("expected PREFIX:FILE[:REALM] rules separated by ';'")
        rules.append(AuthRule(*parts))
    return tuple(rules)
