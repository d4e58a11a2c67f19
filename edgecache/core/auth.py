"""HTTP Basic authentication (RFC 7617): credentials, challenges, path rules and
htpasswd parsing. Pure: password checking needs hashing libraries and lives in
``edgecache.auth``."""

from __future__ import annotations

import binascii
import posixpath
import re
from base64 import b64decode
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple


class Credentials(NamedTuple):
    user: str
    password: str


@dataclass(frozen=True, slots=True)
class AuthRule:
    """Protect ``prefix`` (and everything below it) with the users of ``user_file``."""

    prefix: str
    user_file: str
    realm: str = "Restricted"

    def covers(self, path: str) -> bool:
        # "/admin/" also covers "/admin" itself, which would otherwise slip past.
        return path.startswith(self.prefix) or path == self.prefix.rstrip("/")


def parse_basic(value: bytes | None) -> Credentials | None:
    """Credentials from an ``Authorization: Basic ...`` value; None when absent or
    malformed (another scheme, bad base64, no colon, not UTF-8). Never raises."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return None
    token = token.strip()
    try:
        decoded = b64decode(token, validate=True)
        text = decoded.decode("utf-8")  # RFC 7617 §2.1: the charset we announce
    except (binascii.Error, ValueError):
        return None
    user, colon, password = text.partition(":")
    if not colon or not user:
        return None
    return Credentials(user, password)


def challenge(realm: str) -> bytes:
    """The WWW-Authenticate value for ``realm`` (RFC 7617 §2, with charset §2.1)."""
    escaped = realm.replace("\\", "\\\\").replace('"', '\\"')
    return f'Basic realm="{escaped}", charset="UTF-8"'.encode()


def normalise_path(path: str) -> str:
    """The path as an origin would resolve it: dot segments removed (RFC 3986 §5.2.4)
    and repeated slashes collapsed, so ``/public/../admin/`` meets the ``/admin/`` rule.
    ``path`` is already percent-decoded by the server."""
    if not path.startswith("/"):
        path = "/" + path
    elif "/." not in path and "//" not in path:
        return path  # already normal: the common case, kept cheap
    normal = posixpath.normpath(path)
    if normal.startswith("//"):
        normal = "/" + normal.lstrip("/")
    if path.endswith("/") and not normal.endswith("/"):
        normal += "/"
    return normal


def match_rule(path: str, rules: Sequence[AuthRule]) -> AuthRule | None:
    """The rule with the longest prefix covering ``path``, or None."""
    best: AuthRule | None = None
    for rule in rules:
        if rule.covers(path) and (best is None or len(rule.prefix) > len(best.prefix)):
            best = rule
    return best


class HtpasswdError(NamedTuple):
    line: int
    message: str


SCHEMES = (
    ("$2y$", "bcrypt"),
    ("$2b$", "bcrypt"),
    ("$2a$", "bcrypt"),
    ("$apr1$", "apr1"),
    ("$1$", "md5-crypt"),
    ("$5$", "sha256-crypt"),
    ("$6$", "sha512-crypt"),
    ("{SHA}", "sha1"),
    ("{SSHA}", "ssha"),
)


# Traditional DES crypt (htpasswd -d): 2 salt + 11 hash characters of crypt's alphabet,
# no prefix. It keeps only the first 8 characters of a password, and no maintained
# library we use checks it, so such lines are refused with a message saying so.
_DES_CRYPT = re.compile(r"[./0-9A-Za-z]{13}")


def hash_scheme(stored: str) -> str:
    """The scheme of an htpasswd hash; ``des-crypt`` for a 13-character crypt(3) hash,
    ``plain`` when it has no known shape."""
    for prefix, scheme in SCHEMES:
        if stored.startswith(prefix):
            return scheme
    if _DES_CRYPT.fullmatch(stored):
        return "des-crypt"
    return "plain"


def parse_htpasswd(text: str, allow_plaintext: bool) -> tuple[dict[str, str], list[HtpasswdError]]:
    """``user -> hash`` from an htpasswd file, and the lines skipped with why.

    Blank lines and ``#`` comments are ignored; a malformed line is reported and
    skipped without affecting the others; a later line for the same user wins, as in
    Apache. Plain-text passwords are refused unless ``allow_plaintext``.
    """
    users: dict[str, str] = {}
    errors: list[HtpasswdError] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, colon, stored = line.partition(":")
        if not colon or not user or not stored:
            errors.append(HtpasswdError(number, "expected user:hash"))
            continue
        scheme = hash_scheme(stored)
        if scheme not in ("plain", "des-crypt"):
            stored = stored.split(":", 1)[0]  # Apache allows trailing fields after a hash
        # The messages name the line, never the user: user names are not logged.
        if scheme == "des-crypt":
            # Refused even with auth_plaintext: taking it as plain text would make the
            # hash itself the password.
            errors.append(
                HtpasswdError(
                    number, "DES crypt hash is not supported (re-hash it with htpasswd -B)"
                )
            )
            continue
        if scheme == "plain" and not allow_plaintext:
            errors.append(
                HtpasswdError(number, "unrecognised hash (plain text needs auth_plaintext)")
            )
            continue
        users[user] = stored
    return users, errors


@dataclass(frozen=True, slots=True)
class Failures:
    """Failed password checks for one key (an address, or an address and user name)
    since ``since``; ``locked_until`` is when a lockout ends (0: none)."""

    count: int
    since: float
    locked_until: float = 0.0


def lock_remaining(failures: Failures | None, now: float) -> float:
    """Seconds left of a lockout, 0 when there is none."""
    return max(failures.locked_until - now, 0.0) if failures is not None else 0.0


def recent_failures(failures: Failures | None, now: float, window: float) -> int:
    """Failures that still count: those in the window that began with the first one,
    unless a lockout they caused is over (it was served; the count starts afresh)."""
    if failures is None or now - failures.since > window:
        return 0
    if 0 < failures.locked_until <= now:
        return 0
    return failures.count


def count_failure(
    failures: Failures | None, now: float, window: float, cap: int, lockout: float
) -> Failures:
    """``failures`` with one more; reaching ``cap`` within ``window`` locks for ``lockout``."""
    count, since = 1, now
    if failures is not None and recent_failures(failures, now, window):
        count, since = failures.count + 1, failures.since
    return Failures(count, since, now + lockout if count >= cap else 0.0)


def admits(failures: Failures | None, pending: int, now: float, window: float, cap: int) -> bool:
    """Whether one more guess may be checked: not locked, and the failures so far plus
    the checks still running stay under ``cap``. Counting running checks keeps an
    attacker who sends many guesses at once from getting more than ``cap`` checked."""
    if lock_remaining(failures, now) > 0:
        return False
    return recent_failures(failures, now, window) + pending < cap
