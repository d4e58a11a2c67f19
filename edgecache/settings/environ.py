"""Reading ``EDGECACHE_*`` variables: the one function that does, and the warning for
a variable that names no setting (a typo must not be silently ignored)."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from edgecache.settings.fields import ENV_PREFIX, Spec

APP_VARIABLE = "EDGECACHE_APP"
"""module:attribute of the app ``edgecache serve`` runs (set for its workers)."""
NOT_SETTINGS = frozenset({APP_VARIABLE})
"""``EDGECACHE_*`` variables edgecache sets or reads that are not settings."""

log = logging.getLogger("edgecache.settings")
_warned: set[str] = set()
"""Names already warned about in this process (settings are read more than once)."""


def values_from_environ(specs: Iterable[Spec], environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings ``environ`` sets, read; ConfigError naming the variable if bad."""
    return {
        spec.name: spec.read(environ[spec.variable]) for spec in specs if spec.variable in environ
    }


def unknown_variables(specs: Iterable[Spec], environ: Mapping[str, str]) -> list[str]:
    """A message for each ``EDGECACHE_*`` variable that is no setting, with the
    nearest real name."""
    known = {spec.variable for spec in specs} | NOT_SETTINGS
    messages = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in known:
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        messages.append(f"edgecache: {name} is not a setting and is ignored{hint}")
    return messages


def warn_unknown_variables(specs: Iterable[Spec], environ: Mapping[str, str]) -> None:
    """Log ``unknown_variables`` once per process each."""
    for message in unknown_variables(specs, environ):
        if message not in _warned:
            _warned.add(message)
            log.warning("%s", message)
