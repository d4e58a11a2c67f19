"""Settings from keywords and EDGECACHE_* variables; bad values fail naming the setting.
Parsers, checks and shown defaults are derived from the annotations and metadata."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgecache import ConfigError, EdgeCache, Settings
from edgecache.config import GROUPS
from edgecache.core.auth import AuthRule
from edgecache.settings.auth import AuthSettings
from edgecache.settings.cache import CacheSettings
from edgecache.settings.compression import CompressionSettings
from edgecache.settings.environ import NOT_SETTINGS, unknown_variables
from edgecache.settings.fields import specs
from edgecache.settings.proxy import ProxySettings
from edgecache.settings.values import format_seconds, format_size, parse_seconds, parse_size


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


# -- derived from the annotations and the field metadata ------------------------------


def test_every_setting_has_help_and_accepts_its_shown_default() -> None:
    for spec in Settings.specs():
        assert spec.meta.help.strip(), spec.name
        shown = spec.show(spec.default)
        if shown != "none":
            assert spec.parse(shown) == spec.default, (spec.name, shown)


@pytest.mark.parametrize(
    ("raw", "size"),
    [
        pytest.param("268435456", 256 * 1024**2, id="bytes"),
        pytest.param("256M", 256 * 1024**2, id="nginx-M"),
        pytest.param("256MiB", 256 * 1024**2, id="MiB"),
        pytest.param("256 MiB", 256 * 1024**2, id="as-shown"),
        pytest.param("512k", 512 * 1024, id="k"),
        pytest.param("1G", 1024**3, id="G"),
    ],
)
def test_sizes_are_read_in_binary_units(raw: str, size: int) -> None:
    assert parse_size(raw) == size
    assert Settings.from_env({"EDGECACHE_MAX_BODY_SIZE": raw}).max_body_size == size


@pytest.mark.parametrize(
    ("size", "shown"),
    [(256 * 1024**2, "256 MiB"), (32 * 1024, "32 KiB"), (1024**3, "1 GiB"), (256, "256 B")],
)
def test_sizes_are_shown_readable(size: int, shown: str) -> None:
    assert format_size(size) == shown


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("30", 30.0), ("1.5", 1.5), ("250ms", 0.25), ("30s", 30.0), ("5m", 300.0), ("1d", 86400.0)],
)
def test_durations_accept_nginx_units(raw: str, seconds: float) -> None:
    assert parse_seconds(raw) == seconds
    assert Settings.from_env({"EDGECACHE_READ_TIMEOUT": raw}).read_timeout == seconds


@given(st.integers(min_value=0, max_value=2**50))
def test_a_shown_size_reads_back(size: int) -> None:
    assert parse_size(format_size(size)) == size


@given(st.integers(min_value=0, max_value=10**7), st.sampled_from([1, 0.001]))
def test_a_shown_duration_reads_back(count: int, unit: float) -> None:
    seconds = count * unit
    assert parse_seconds(format_seconds(seconds)) == pytest.approx(seconds)


@given(st.text(max_size=20))
def test_size_and_duration_parsers_raise_only_value_error(raw: str) -> None:
    for parse in (parse_size, parse_seconds):
        with contextlib.suppress(ValueError):
            parse(raw)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"max_bytes": "lots"}, "max_bytes"),
        ({"workers": 1.5}, "workers"),
        ({"compress": "maybe"}, "compress"),
        ({"balance": "random"}, "balance"),
        ({"codings": ("br", "lzma")}, "codings"),
        ({"br_quality": 12}, "br_quality"),
        ({"listen_port": 70000}, "listen_port"),
        ({"trusted_proxies": ("10.0.0.0/8", "nope")}, "trusted_proxies"),
    ],
)
def test_bad_keywords_fail_naming_the_setting(options: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=rf"setting {named} \(EDGECACHE_{named.upper()}"):
        Settings(**options)  # type: ignore[arg-type]


def test_each_concern_stands_alone() -> None:
    assert CompressionSettings(codings=("gzip",)).encoding_rules().codings == ("gzip",)
    assert CacheSettings(max_variants=3).policy_options().max_variants == 3
    with pytest.raises(ConfigError, match="auth_max_failures_per_address"):
        AuthSettings(auth_max_failures=10, auth_max_failures_per_address=5)
    every = {spec.name for group in GROUPS for spec in specs(group)}
    assert every == {spec.name for spec in Settings.specs()}


def test_proxy_only_settings_are_the_proxy_group() -> None:
    proxy_only = {spec.name for spec in Settings.specs() if spec.meta.proxy_only}
    assert proxy_only == {spec.name for spec in specs(ProxySettings)}
    assert {"upstream", "balance", "config", "trusted_proxies"} <= proxy_only


def test_unknown_variable_is_named_with_the_nearest_setting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    environ = {"EDGECACHE_COMPRES": "off", "EDGECACHE_APP": "examples.hello:app"}
    assert unknown_variables(Settings.specs(), environ) == [
        "edgecache: EDGECACHE_COMPRES is not a setting and is ignored; "
        "did you mean EDGECACHE_COMPRESS?"
    ]
    with caplog.at_level("WARNING", logger="edgecache.settings"):
        assert Settings.from_env(environ).compress is True
    assert "did you mean EDGECACHE_COMPRESS?" in caplog.text


def test_the_readme_table_shows_real_settings_and_their_defaults() -> None:
    """The README's table is written by hand; it must not drift from the fields."""
    readme = Path(__file__).parent.parent / "README.md"
    known = {spec.name: spec for spec in Settings.specs()}
    rows = 0
    for line in readme.read_text().splitlines():
        m = re.match(r"^\| ((?:`[a-z_]+`(?:, )?)+) \| [^|]+ \| ([^|]+) \|", line)
        if not m:
            continue
        rows += 1
        names = re.findall(r"`([a-z_]+)`", m.group(1))
        assert set(names) <= set(known), names
        defaults = m.group(2).strip().split(", ")
        if all(d.startswith("`") for d in defaults):
            shown = [known[n].show(known[n].default) for n in names]
            assert [d.strip("`") for d in defaults] == shown, line
    assert rows >= 30


def test_the_docs_and_deployment_files_name_real_variables() -> None:
    """A variable misspelt in the README, the Makefile or deploy/ would be ignored
    (with a warning) by whoever copies it."""
    root = Path(__file__).parent.parent
    known = {spec.variable for spec in Settings.specs()} | NOT_SETTINGS
    files = [root / "README.md", root / "Makefile", *(root / "deploy").glob("*")]
    for path in (p for p in files if p.is_file()):
        text = path.read_text().replace("EDGECACHE_COMPRES is not", "")  # the typo shown
        for name in set(re.findall(r"EDGECACHE_[A-Z_]*[A-Z]", text)):
            assert name in known, (path.name, name)


def test_keywords_given_as_text_are_read_as_their_variables_are() -> None:
    """A route file's or a dict's text (``"1G"``, ``"5m"``, ``"off"``) is parsed."""
    text = {"max_bytes": "1G", "read_timeout": "5m", "compress": "off", "codings": "gzip, BR"}
    s = Settings(**text)  # type: ignore[arg-type]
    assert (s.max_bytes, s.read_timeout, s.compress) == (1024**3, 300.0, False)
    assert s.codings == ("gzip", "br")
    rule = AuthRule("/admin/", "users", "Admin")
    assert Settings(**{"auth": "/admin/:users:Admin"}).auth == (rule,)  # type: ignore[arg-type]
