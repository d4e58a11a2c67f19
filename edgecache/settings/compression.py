"""The compression layer's settings: codings offered, what is compressed, qualities."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edgecache.compression import QUALITY_RANGE, SUPPORTED
from edgecache.core.encoding import DEFAULT_TYPES, EncodingRules
from edgecache.core.negotiation import negotiator
from edgecache.settings.fields import check_fields, setting
from edgecache.settings.values import parse_codings

_ON_THE_FLY = "paid on every uncached answer, so fast"
_STORED = "paid once per entry and coding, off the request path, so it can be the smallest"


def _quality(coding: str, default: int, stored: bool) -> int:
    low, high = QUALITY_RANGE[coding]
    what = "level" if coding != "br" else "quality"
    why = _STORED if stored else _ON_THE_FLY
    kind = "of the encoded copies the cache keeps" if stored else "on the fly"
    return setting(default, f"{coding} {what} {kind} ({why}).", at_least=low, at_most=high)


@dataclass(frozen=True)
class CompressionSettings:
    """Content-coding of answers, and of the copies the cache keeps."""

    compress: bool = setting(
        True, "Content-encode compressible answers for clients that accept it."
    )
    codings: tuple[str, ...] = setting(
        ("br", "zstd", "gzip"),
        "Codings offered, comma-separated, in the server's order among equal q-values.",
        choices=SUPPORTED,
        parse=parse_codings,
        metavar="CODING,...",
    )
    compress_min_size: int = setting(
        256, "Bodies smaller than this are sent as they are.", unit="bytes", at_least=0
    )
    compress_types: tuple[str, ...] = setting(
        DEFAULT_TYPES,
        "Content types compressed, comma-separated; text/* and */*+json patterns allowed.",
        valid=lambda pattern: "/" in pattern,
        accepted="media types like text/*",
        metavar="TYPE,...",
    )
    br_quality: int = _quality("br", 4, stored=False)
    zstd_level: int = _quality("zstd", 3, stored=False)
    gzip_level: int = _quality("gzip", 5, stored=False)
    stored_br_quality: int = _quality("br", 11, stored=True)
    stored_zstd_level: int = _quality("zstd", 19, stored=True)
    stored_gzip_level: int = _quality("gzip", 9, stored=True)

    def __post_init__(self) -> None:
        check_fields(self, CompressionSettings)

    def encoding_rules(self) -> EncodingRules:
        return EncodingRules(self.codings, self.compress_min_size, self.compress_types)

    def negotiator(self) -> Callable[[bytes | None], str]:
        """Accept-Encoding -> the coding to answer in, memoised per header value."""
        return negotiator(self.codings)

    def quality(self, coding: str, stored: bool = False) -> int:
        """The quality or level for ``coding``, on the fly or for a stored copy."""
        name = {"br": "br_quality", "zstd": "zstd_level", "gzip": "gzip_level"}[coding]
        return int(getattr(self, ("stored_" if stored else "") + name))
