"""One frozen, validated settings object; keyword arguments, ``EDGECACHE_*`` variables
and CLI flags map onto it. A bad value fails here, at start, naming the setting.

``Settings`` is the union of the settings of each concern (``edgecache.settings``):
every field keeps its flat name (``settings.max_bytes``, ``Settings(max_bytes=...)``,
``EDGECACHE_MAX_BYTES``, ``--max-bytes``), and each part checks its own fields.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edgecache.errors import ConfigError
from edgecache.settings.auth import AuthSettings
from edgecache.settings.cache import REDIS_SCHEMES, CacheSettings, StoreKind
from edgecache.settings.compression import CompressionSettings
from edgecache.settings.environ import values_from_environ, warn_unknown_variables
from edgecache.settings.fields import ENV_PREFIX, Spec, specs
from edgecache.settings.proxy import ProxySettings, parse_upstreams
from edgecache.settings.server import LimitSettings, ServerSettings
from edgecache.settings.values import parse_auth, parse_bool, parse_size

__all__ = [
    "ENV_PREFIX",
    "GROUPS",
    "REDIS_SCHEMES",
    "Settings",
    "StoreKind",
    "parse_auth",
    "parse_bool",
    "parse_size",
    "parse_upstreams",
]


@dataclass(frozen=True)
class Settings(
    CacheSettings,
    CompressionSettings,
    AuthSettings,
    ProxySettings,
    ServerSettings,
    LimitSettings,
):
    """Every setting, with its safe default (the parts document each one)."""

    def __post_init__(self) -> None:
        for group in GROUPS:
            group.__post_init__(self)  # type: ignore[attr-defined]

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        warn_unknown: bool = True,
        **overrides: Any,
    ) -> Settings:
        """Settings from ``EDGECACHE_*`` variables; keyword arguments take precedence.
        A variable that names no setting is logged (once) with the nearest real name,
        unless ``warn_unknown`` is false (worker processes: their parent warned)."""
        environ = os.environ if environ is None else environ
        every = specs(cls)
        if warn_unknown:
            warn_unknown_variables(every, environ)
        unknown = set(overrides) - {spec.name for spec in every}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return cls(**{**values_from_environ(every, environ), **overrides})

    @classmethod
    def specs(cls) -> tuple[Spec, ...]:
        """Every setting's name, type, default and metadata."""
        return specs(cls)


GROUPS: tuple[type, ...] = Settings.__bases__
"""The parts, in the order ``--help`` lists them."""
