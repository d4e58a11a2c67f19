"""Loading the Python app that ``edgecache serve`` runs."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from edgecache.errors import ConfigError


def load_app(spec: str) -> Any:
    """Import ``module:attribute`` (the current directory is importable, as in gunicorn)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"app {spec!r}: expected module:attribute, e.g. myproject.app:app")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"app {spec!r}: cannot import {module_name!r}: {exc}") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ConfigError(f"app {spec!r}: {module_name!r} has no {attribute!r}") from None
