"""Streaming encoders for br, zstd and gzip, behind one small interface.

Each encoder takes chunks and returns whatever compressed bytes are ready; ``flush``
pushes out everything buffered so far (for event streams, at some cost in ratio), and
``finish`` ends the stream. Memory stays bounded by the codec's window, not the body.
"""

from __future__ import annotations

import threading
import zlib
from collections import Counter
from typing import Protocol

import brotli
import zstandard

SUPPORTED = ("br", "zstd", "gzip")

# Quality ranges per codec, for validating settings.
QUALITY_RANGE = {"br": (0, 11), "zstd": (1, 22), "gzip": (1, 9)}


class Encoder(Protocol):
    def compress(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...

    def finish(self) -> bytes: ...


class _Brotli:
    def __init__(self, quality: int) -> None:
        self._c = brotli.Compressor(quality=quality)

    def compress(self, data: bytes) -> bytes:
        return bytes(self._c.process(data))

    def flush(self) -> bytes:
        return bytes(self._c.flush())

    def finish(self) -> bytes:
        return bytes(self._c.finish())


class _Gzip:
    def __init__(self, level: int) -> None:
        self._c = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS, 8)

    def compress(self, data: bytes) -> bytes:
        return self._c.compress(data)

    def flush(self) -> bytes:
        return self._c.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        return self._c.flush(zlib.Z_FINISH)


class _Zstd:
    def __init__(self, level: int) -> None:
        self._c = zstandard.ZstdCompressor(level=level).compressobj()

    def compress(self, data: bytes) -> bytes:
        return bytes(self._c.compress(data))

    def flush(self) -> bytes:
        return bytes(self._c.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK))

    def finish(self) -> bytes:
        return bytes(self._c.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH))


class EncodingCounter:
    """How many bodies were encoded, by purpose and coding (tests and metrics read it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[tuple[str, str]] = Counter()

    def add(self, purpose: str, coding: str) -> None:
        with self._lock:
            self.counts[(purpose, coding)] += 1

    def get(self, purpose: str, coding: str) -> int:
        with self._lock:
            return self.counts[(purpose, coding)]


ENCODINGS = EncodingCounter()


def make_encoder(coding: str, quality: int) -> Encoder:
    if coding == "br":
        return _Brotli(quality)
    if coding == "gzip":
        return _Gzip(quality)
    if coding == "zstd":
        return _Zstd(quality)
    raise ValueError(f"unsupported coding {coding!r}")


def encode(data: bytes, coding: str, quality: int) -> bytes:
    """A whole body in one go (stored copies, made off the request path)."""
    encoder = make_encoder(coding, quality)
    return encoder.compress(data) + encoder.finish()


def decode(data: bytes, coding: str) -> bytes:
    """For tests and tools: the inverse of ``encode``."""
    if coding == "br":
        return bytes(brotli.decompress(data))
    if coding == "gzip":
        return zlib.decompress(data, 16 + zlib.MAX_WBITS)
    if coding == "zstd":
        return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(data))
    raise ValueError(f"unsupported coding {coding!r}")
