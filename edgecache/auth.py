"""The basic-auth gate both middlewares use: user files that reload when they change,
password checks by maintained libraries, a memo of verified credentials, and a
per-address throttle. The adapters only translate and send what the gate decides."""

from __future__ import annotations

import hmac
import logging
import math
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import blake2b
from typing import NamedTuple

import bcrypt
from cachetools import TTLCache
from passlib.hash import (
    apr_md5_crypt,
    ldap_salted_sha1,
    ldap_sha1,
    md5_crypt,
    sha256_crypt,
    sha512_crypt,
)

from edgecache.config import Settings
from edgecache.core.auth import (
    AuthRule,
    challenge,
    hash_scheme,
    match_rule,
    normalise_path,
    parse_basic,
    parse_htpasswd,
)
from edgecache.errors import ConfigError
from edgecache.metrics import AUTH_FAILURES

log = logging.getLogger("edgecache.auth")

_PASSLIB = {
    "apr1": apr_md5_crypt,
    "md5-crypt": md5_crypt,
    "sha256-crypt": sha256_crypt,
    "sha512-crypt": sha512_crypt,
    "sha1": ldap_sha1,
    "ssha": ldap_salted_sha1,
}
# Checked against for unknown users, so they cost as much as known ones.
_DUMMY_BCRYPT = b"$2b$10$" + b"N9qo8uLOickgx2ZMRZoMye" + b"IjZAgcfl7p92ldGxad68LJZdL17lhWy"


def verify_password(stored: str, password: str) -> bool:
    """Check ``password`` against an htpasswd hash, in constant time where it matters."""
    scheme = hash_scheme(stored)
    candidate = password.encode("utf-8")
    try:
        if scheme == "bcrypt":
            # bcrypt reads at most 72 bytes; longer passwords are refused, not truncated.
            return len(candidate) <= 72 and bcrypt.checkpw(candidate, stored.encode())
        if scheme in _PASSLIB:
            return bool(_PASSLIB[scheme].verify(password, stored))
        return hmac.compare_digest(candidate, stored.encode("utf-8"))
    except ValueError:  # a damaged hash
        return False


class UserFile:
    """An htpasswd file, re-read when it changes (checked at most once a second)."""

    CHECK_INTERVAL = 1.0

    def __init__(self, path: str, allow_plaintext: bool, clock: Callable[[], float]):
        self.path = path
        self._allow_plaintext = allow_plaintext
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._checked = -math.inf
        self.users: dict[str, str] = {}
        self.version = 0
        try:
            self._load(os.stat(path))
        except OSError as exc:
            raise ConfigError(
                f"setting auth (EDGECACHE_AUTH): user file {path!r} cannot be read: {exc.strerror}"
            ) from None

    def current(self) -> dict[str, str]:
        now = self._clock()
        if now - self._checked >= self.CHECK_INTERVAL:
            with self._lock:
                self._checked = now
                try:
                    st = os.stat(self.path)
                except OSError:
                    if self.users:
                        log.error("user file %s is gone: nobody is let in", self.path)
                    self.users, self._stamp = {}, None
                    self.version += 1
                else:
                    if (st.st_mtime_ns, st.st_size, st.st_ino) != self._stamp:
                        self._load(st)
        return self.users

    def _load(self, st: os.stat_result) -> None:
        with open(self.path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        users, errors = parse_htpasswd(text, self._allow_plaintext)
        for error in errors:
            log.error("%s line %d skipped: %s", self.path, error.line, error.message)
        self.users = users
        self._stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        self.version += 1
        log.info("loaded %d users from %s", len(users), self.path)


def _person(rule: AuthRule) -> bytes:
    """Separates the memo keys of different user files (blake2b's 16-byte personalisation)."""
    return blake2b(rule.user_file.encode(), digest_size=16).digest()


class Open(NamedTuple):
    """No rule covers the path."""


class Allowed(NamedTuple):
    user: str


class Challenge(NamedTuple):
    """Answer 401 with ``www_authenticate``, after waiting ``delay`` seconds."""

    www_authenticate: bytes
    delay: float


class Locked(NamedTuple):
    """Too many failures from this address: answer 429."""

    retry_after: int


GateDecision = Open | Allowed | Challenge | Locked


@dataclass
class _Failures:
    count: int
    since: float
    locked_until: float = 0.0


class _Memo:
    """Verified credentials by keyed hash: user, user-file version, expiry. A plain
    dict, oldest dropped first when full; dict operations are atomic under the GIL."""

    def __init__(self, size: int, ttl: float) -> None:
        self._entries: dict[bytes, tuple[str, int, float]] = {}
        self._size = size
        self._ttl = ttl

    def get(self, key: bytes, version: int, now: float) -> str | None:
        found = self._entries.get(key)
        if found is None:
            return None
        user, seen_version, expires = found
        if seen_version != version or expires <= now:
            self._entries.pop(key, None)
            return None
        return user

    def put(self, key: bytes, user: str, version: int, now: float) -> None:
        while len(self._entries) >= self._size:
            try:
                self._entries.pop(next(iter(self._entries)))
            except (StopIteration, KeyError, RuntimeError):
                break
        self._entries[key] = (user, version, now + self._ttl)


class Gate:
    """Decides, per request, whether a protected path may be passed on."""

    def __init__(self, settings: Settings, clock: Callable[[], float]):
        self.rules = settings.auth
        self.settings = settings
        self._clock = clock
        self._files = {
            rule.user_file: UserFile(rule.user_file, settings.auth_plaintext, clock)
            for rule in self.rules
        }
        self._persons = {rule.user_file: _person(rule) for rule in self.rules}
        self._key = secrets.token_bytes(32)  # memo keys are keyed hashes, never passwords
        self._lock = threading.Lock()
        self._memo: _Memo | None = None
        if settings.auth_memo:
            self._memo = _Memo(settings.auth_memo_size, settings.auth_memo_ttl)
        window = settings.auth_failure_window + settings.auth_lockout
        self._failures: TTLCache[str, _Failures] = TTLCache(
            maxsize=100_000, ttl=window, timer=clock
        )

    def rule_for(self, path: str) -> AuthRule | None:
        if not self.rules:
            return None
        return match_rule(normalise_path(path), self.rules)

    def check(self, rule: AuthRule, authorization: bytes | None, address: str) -> GateDecision:
        user_file = self._files[rule.user_file]
        users = user_file.current()
        key = b""
        if authorization is not None and self._memo is not None:
            # Credentials verified in the last few minutes pass on a keyed-hash lookup;
            # a lockout only stops guesses, and a remembered credential is no guess.
            key = blake2b(
                authorization, key=self._key, person=self._persons[rule.user_file]
            ).digest()
            remembered = self._memo.get(key, user_file.version, self._clock())
            if remembered is not None:
                return Allowed(remembered)
        now = self._clock()
        with self._lock:
            failures = self._failures.get(address)
        if failures is not None and failures.locked_until > now:
            return Locked(math.ceil(failures.locked_until - now))
        if authorization is None:  # the first request of a browser: not a failure
            return Challenge(challenge(rule.realm), 0.0)
        user = self._verified(users, authorization)
        if user is None:
            return self._failed(rule, address, now)
        if failures is not None:
            with self._lock:
                self._failures.pop(address, None)
        if self._memo is not None:
            self._memo.put(key, user, user_file.version, now)
        return Allowed(user)

    @staticmethod
    def _verified(users: dict[str, str], authorization: bytes) -> str | None:
        credentials = parse_basic(authorization)
        if credentials is None:
            return None
        stored = users.get(credentials.user)
        if stored is None:
            bcrypt.checkpw(b"unknown user", _DUMMY_BCRYPT)  # as slow as a known user
            return None
        return credentials.user if verify_password(stored, credentials.password) else None

    def _failed(self, rule: AuthRule, address: str, now: float) -> GateDecision:
        s = self.settings
        with self._lock:
            failures = self._failures.get(address)
            if failures is None or now - failures.since > s.auth_failure_window:
                failures = _Failures(0, now)
            failures.count += 1
            if failures.count >= s.auth_max_failures:
                failures.locked_until = now + s.auth_lockout
            self._failures[address] = failures
        AUTH_FAILURES.inc()
        # Never the user name or password: only where the attempt came from.
        log.warning(
            "basic auth failed for %s from %s (%d in a row)", rule.prefix, address, failures.count
        )
        if failures.locked_until > now:
            return Locked(math.ceil(s.auth_lockout))
        delay = min(s.auth_failure_delay * failures.count, 2.0)
        return Challenge(challenge(rule.realm), delay)


X_REMOTE_USER = b"x-remote-user"


def denial(decision: Challenge | Locked) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body of a refused request."""
    if isinstance(decision, Challenge):
        status, body = 401, b"401 Unauthorized\n"
        extra = [(b"www-authenticate", decision.www_authenticate)]
    else:
        status, body = 429, b"429 Too Many Requests: too many failed logins, try later\n"
        extra = [(b"retry-after", str(decision.retry_after).encode())]
    return (
        status,
        [
            *extra,
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
        ],
        body,
    )
