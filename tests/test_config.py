"""Settings from keywords and EDGECACHE_* variables; bad values fail naming the setting."""

from __future__ import annotations

import pytest

from edgecache import ConfigError, EdgeCache, Settings


def test_defaults_are_safe() -> None:
    s = Settings.from_env({})
    assert s.store == "memory" and s.max_entry_bytes <= s.max_bytes
    assert s.heuristic_fraction == 0.1


def test_environment_maps_onto_settings() -> None:
    s = Settings.from_env(
        {
            "EDGECACHE_STORE": "disk",
            "EDGECACHE_STORE_PATH": "/tmp/x",
            "EDGECACHE_MAX_BYTES": "1G",
            "EDGECACHE_MAX_ENTRY_BYTES": "512k",
            "EDGECACHE_HEURISTIC_FRACTION": "0.05",
            "EDGECACHE_CACHE_NAME": "edge-1",
            "EDGECACHE_TARGETED_FIELDS": "Edge-Cache-Control, CDN-Cache-Control",
            "EDGECACHE_COALESCE": "off",
            "EDGECACHE_UNRELATED": "ignored",
        }
    )
    assert s.store == "disk" and s.max_bytes == 1024**3 and s.max_entry_bytes == 512 * 1024
    assert s.targeted_fields == ("Edge-Cache-Control", "CDN-Cache-Control")
    assert s.coalesce is False and s.cache_name == "edge-1"


def test_keywords_override_environment() -> None:
    s = Settings.from_env({"EDGECACHE_MAX_BYTES": "1G"}, max_bytes=2 * 1024**3)
    assert s.max_bytes == 2 * 1024**3


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"EDGECACHE_STORE": "mongo"}, "EDGECACHE_STORE"),
        ({"EDGECACHE_MAX_BYTES": "lots"}, "EDGECACHE_MAX_BYTES"),
        ({"EDGECACHE_MAX_BYTES": "0"}, "EDGECACHE_MAX_BYTES"),
        ({"EDGECACHE_MAX_ENTRY_BYTES": "2G"}, "EDGECACHE_MAX_ENTRY_BYTES"),
        ({"EDGECACHE_HEURISTIC_FRACTION": "1.5"}, "EDGECACHE_HEURISTIC_FRACTION"),
        ({"EDGECACHE_HEURISTIC_FRACTION": "ten"}, "EDGECACHE_HEURISTIC_FRACTION"),
        ({"EDGECACHE_COALESCE": "maybe"}, "EDGECACHE_COALESCE"),
        ({"EDGECACHE_CACHE_NAME": "has space"}, "EDGECACHE_CACHE_NAME"),
        ({"EDGECACHE_MAX_VARIANTS": "0"}, "EDGECACHE_MAX_VARIANTS"),
        ({"EDGECACHE_COALESCE_TIMEOUT": "-1"}, "EDGECACHE_COALESCE_TIMEOUT"),
    ],
)
def test_bad_values_fail_naming_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(env)


def test_unknown_keyword_fails() -> None:
    with pytest.raises(ConfigError, match="max_bites"):
        Settings.from_env({}, max_bites=5)


def test_edgecache_rejects_non_apps() -> None:
    with pytest.raises(ConfigError, match="WSGI or ASGI"):
        EdgeCache(42)
