"""``edgecache compress-static DIR``: precompressed siblings for static roots.

Each compressible file gets ``.br`` (quality 11), ``.zst`` (level 19) and ``.gz``
(level 9) beside it, kept only when at least 5% smaller than the original (as
whitenoise does); the static server sends them to clients that accept the coding.
"""

from __future__ import annotations

import mimetypes
import os

from edgecache.compression import encode
from edgecache.core.encoding import EncodingRules, worth_keeping
from edgecache.proxy.static import SIBLINGS

MAX_QUALITY = {"br": 11, "zstd": 19, "gzip": 9}


def compress_tree(root: str, rules: EncodingRules | None = None) -> tuple[int, int]:
    """(files written, encodings not worth keeping)."""
    rules = rules or EncodingRules()
    written = skipped = 0
    suffixes = tuple(SIBLINGS.values())
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(suffixes) or name.startswith("."):
                continue
            path = os.path.join(folder, name)
            content_type, _ = mimetypes.guess_type(path)
            if not rules.type_matches((content_type or "").encode()):
                continue
            with open(path, "rb") as f:
                data = f.read()
            if len(data) < rules.min_size:
                continue
            for coding, suffix in SIBLINGS.items():
                packed = encode(data, coding, MAX_QUALITY[coding])
                if not worth_keeping(len(data), len(packed)):
                    skipped += 1
                    continue
                with open(path + suffix, "wb") as f:
                    f.write(packed)
                written += 1
    return written, skipped
