"""When a response may be content-encoded at the edge, and how its headers change.

Pure rules, shared by the compression middleware (on-the-fly encoding) and the cache
(stored encoded copies), so both make the same decision for the same response.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from edgecache.core.cache_control import parse_cache_control
from edgecache.core.headers import (
    ACCEPT_ENCODING,
    CACHE_CONTROL,
    CONTENT_ENCODING,
    CONTENT_LENGTH,
    CONTENT_RANGE,
    CONTENT_TYPE,
    ETAG,
    RANGE,
    VARY,
    Headers,
    split_list,
)
from edgecache.core.model import Entry

DEFAULT_TYPES = (
    "text/*",
    "application/json",
    "application/javascript",
    "application/x-javascript",
    "application/ecmascript",
    "application/xml",
    "application/xhtml+xml",
    "application/rss+xml",
    "application/atom+xml",
    "application/ld+json",
    "application/manifest+json",
    "application/geo+json",
    "application/graphql-response+json",
    "application/wasm",
    "application/vnd.api+json",
    "application/x-ndjson",
    "image/svg+xml",
    "image/x-icon",
    "image/bmp",
    "font/ttf",
    "font/otf",
    "application/vnd.ms-fontobject",
    "*/*+json",
    "*/*+xml",
)
"""Types worth compressing. Not images, video, audio, archives or woff2, which are
compressed already; ``*/*+json`` matches any structured-syntax suffix."""


@dataclass(frozen=True, slots=True)
class EncodingRules:
    codings: tuple[str, ...] = ("br", "zstd", "gzip")
    min_size: int = 256
    types: tuple[str, ...] = DEFAULT_TYPES

    def type_matches(self, content_type: bytes | None) -> bool:
        if not content_type:
            return False
        mime = content_type.split(b";", 1)[0].strip().lower().decode("latin-1")
        major, _, minor = mime.partition("/")
        for pattern in self.types:
            if pattern == mime:
                return True
            p_major, _, p_minor = pattern.partition("/")
            if p_minor == "*" and p_major == major:
                return True
            if p_major == "*" and p_minor.startswith("*+") and minor.endswith(p_minor[1:]):
                return True
        return False


def already_encoded(raw_headers: list[tuple[bytes, bytes]]) -> bool:
    """A quick look at unparsed response headers for a Content-Encoding other than
    identity, so answers encoded below (stored copies) pass with no further parsing."""
    for name, value in raw_headers:
        if len(name) == 16 and name.lower() == CONTENT_ENCODING:
            return value.strip().lower() != b"identity"
    return False


def is_encodable(
    method: str,
    status: int,
    request_headers: Headers,
    response_headers: Headers,
    rules: EncodingRules,
) -> bool:
    """May this response be sent content-encoded?

    Not for HEAD, 1xx/204/304 (no body), 206 or a Range request (a range is of the
    representation as the origin sent it), a response that is already encoded or says
    ``no-transform`` (RFC 9111 §5.2.2.6), one smaller than ``min_size``, or a content
    type outside ``rules.types``.
    """
    if method == "HEAD" or status < 200 or status in (204, 206, 304):
        return False
    if RANGE in request_headers or CONTENT_RANGE in response_headers:
        return False
    existing = response_headers.get(CONTENT_ENCODING)
    if existing is not None and existing.strip().lower() != b"identity":
        return False
    cc = response_headers.get_joined(CACHE_CONTROL)
    if cc is not None and parse_cache_control(cc).no_transform:
        return False
    length = response_headers.get(CONTENT_LENGTH)
    if length is not None and length.strip().isdigit() and int(length) < rules.min_size:
        return False
    return rules.type_matches(response_headers.get(CONTENT_TYPE))


def weak_etag(etag: bytes) -> bytes:
    """An encoded representation's ETag: the identity one, weakened (RFC 9110 §8.8.1).

    Weak comparison, which If-None-Match uses, still matches it against the identity
    ETag, so conditional requests keep working whichever coding the client got.
    """
    etag = etag.strip()
    return etag if etag.startswith(b"W/") else b"W/" + etag


def with_vary_accept_encoding(headers: Headers) -> Headers:
    """Add Accept-Encoding to Vary, merged into an existing Vary (``*`` left alone)."""
    names = [n.lower() for n in split_list(headers.get_joined(VARY))]
    if b"*" in names or ACCEPT_ENCODING in names:
        return headers
    merged = b", ".join([*split_list(headers.get_joined(VARY)), b"Accept-Encoding"])
    return headers.replaced([(VARY, merged)])


def encoded_headers(headers: Headers, coding: str, length: int | None) -> Headers:
    """Headers of the ``coding`` representation: Content-Encoding, weak ETag, Vary, and
    Content-Length when known (streamed bodies go without, chunked or close-delimited)."""
    updates = [(CONTENT_ENCODING, coding.encode("ascii"))]
    etag = headers.get(ETAG)
    if etag is not None:
        updates.append((ETAG, weak_etag(etag)))
    out = with_vary_accept_encoding(headers.without((CONTENT_LENGTH,))).replaced(updates)
    if length is not None:
        out = out.with_added([(CONTENT_LENGTH, str(length).encode())])
    return out


def worth_keeping(identity_size: int, encoded_size: int) -> bool:
    """Is an encoding worth sending or keeping instead of identity? The one rule for the
    compression layer, stored copies and precompressed static files: at least 5%
    smaller, so a client never pays a decode for a rounding error."""
    return encoded_size <= identity_size * 0.95


def mark_encodable(entry: Entry, rules: EncodingRules) -> Entry:
    """``entry`` with ``encodable`` set by the rules above; an encodable entry's identity
    headers say ``Vary: Accept-Encoding``, as the compression layer would, so its
    identity answers need not pass through that layer."""
    if not is_encodable("GET", entry.status, Headers(), entry.headers, rules):
        return entry
    # New headers: nothing serialised from the old ones may follow the entry.
    return dataclasses.replace(
        entry,
        encodable=True,
        headers=with_vary_accept_encoding(entry.headers),
        encoded={},
        wire_heads={},
    )


def carry_copies(old: Entry | None, new: Entry, rules: EncodingRules) -> Entry:
    """After a 304 the body is the same: ``new`` keeps ``old``'s encoded copies, with the
    new headers."""
    new = mark_encodable(new, rules)
    if old is not None and new.encodable:
        for coding, (_, body) in list(old.encoded.items()):
            new.encoded[coding] = (encoded_headers(new.headers, coding, len(body)).pairs, body)
    return new
