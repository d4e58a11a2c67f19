"""The basic-auth gate both middlewares use: user files that reload when they change,
password checks by maintained libraries on a bounded thread pool, a memo of verified
credentials, and a throttle per (address, user name) and per address. The adapters
only translate and send what the gate decides."""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import os
import secrets
import sys
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from hashlib import blake2b
from typing import NamedTuple, TypeVar

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
    Failures,
    admits,
    challenge,
    count_failure,
    hash_scheme,
    lock_remaining,
    match_rule,
    normalise_path,
    parse_basic,
    parse_htpasswd,
)
from edgecache.errors import ConfigError
from edgecache.metrics import AUTH_FAILURES

log = logging.getLogger("edgecache.auth")
_K = TypeVar("_K")

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
        if scheme == "des-crypt":  # never loaded (see parse_htpasswd); refused if given
            return False
        return hmac.compare_digest(candidate, stored.encode("utf-8"))
    except ValueError:  # a damaged hash
        return False


def check_user_file(path: str) -> None:
    """ConfigError unless the user file ``path`` can be read (checked at start, before
    anything is built; ``UserFile`` then loads it)."""
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise _unreadable(path, exc) from None


def _unreadable(path: str, exc: OSError) -> ConfigError:
    return ConfigError(
        f"setting auth (EDGECACHE_AUTH): user file {path!r} cannot be read: {exc.strerror}"
    )


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
            raise _unreadable(path, exc) from None

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
    """Too many failures from this address, or for this user name from it: answer 429."""

    retry_after: int


GateDecision = Open | Allowed | Challenge | Locked

# Linux gives each thread its own nice value; the hashing threads take a lower CPU
# priority so that, under a storm of guesses, the event loop (and WSGI request threads)
# still get a core as soon as they wake up. Guesses wait; other requests do not.
HASH_NICENESS = 10
_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _lower_priority() -> None:
    if sys.platform != "linux":  # elsewhere PRIO_PROCESS would renice the whole process
        return
    tid = threading.get_native_id()
    try:
        niceness = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(niceness + HASH_NICENESS, 19))
    except OSError:  # not allowed here: run at the priority we have
        pass


def hash_pool(threads: int) -> ThreadPoolExecutor:
    """The process's password-checking pool of ``threads`` threads, shared by every gate
    that asks for that size. Bounded: when every thread is busy, checks queue."""
    with _POOLS_LOCK:
        pool = _POOLS.get(threads)
        if pool is None:
            pool = _POOLS[threads] = ThreadPoolExecutor(
                threads, thread_name_prefix="edgecache-auth", initializer=_lower_priority
            )
        return pool


class _Attempt(NamedTuple):
    """A well-formed guess waiting for its password check."""

    rule: AuthRule
    address: str
    user: str
    password: str
    stored: str | None  # None: no such user
    memo_key: bytes
    version: int  # of the user file the hash came from
    running_key: bytes


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
    """Decides, per request, whether a protected path may be passed on.

    Failures are counted per (address, user name), capped by ``auth_max_failures``,
    and per address, capped by ``auth_max_failures_per_address``: one guessed-at name
    does not lock out its owner elsewhere, nor the other users behind the same address,
    while an address trying many names is still stopped. Only a well-formed Basic
    credential is a guess: a missing or malformed header is refused without hashing
    and without counting. Password checks run on ``hash_pool`` threads, never on the
    caller's event loop.
    """

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
        self._pairs: TTLCache[tuple[str, str], Failures] = TTLCache(
            maxsize=100_000, ttl=window, timer=clock
        )
        self._addresses: TTLCache[str, Failures] = TTLCache(
            maxsize=100_000, ttl=window, timer=clock
        )
        # Checks submitted but not settled, so parallel guesses cannot overshoot a cap.
        self._pending_pairs: Counter[tuple[str, str]] = Counter()
        self._pending_addresses: Counter[str] = Counter()
        # One check per (header, address) at a time: a browser's parallel requests with
        # a new credential share it instead of each costing a hash and a count.
        self._running: dict[bytes, Future[GateDecision]] = {}
        self._pool = hash_pool(settings.auth_hash_threads)

    def rule_for(self, path: str) -> AuthRule | None:
        if not self.rules:
            return None
        return match_rule(normalise_path(path), self.rules)

    def check(self, rule: AuthRule, authorization: bytes | None, address: str) -> GateDecision:
        """The decision, this thread waiting for a password check if one is needed."""
        decision = self.start(rule, authorization, address)
        return decision.result() if isinstance(decision, Future) else decision

    async def check_async(
        self, rule: AuthRule, authorization: bytes | None, address: str
    ) -> GateDecision:
        """The decision, the event loop serving others while a pool thread hashes."""
        decision = self.start(rule, authorization, address)
        if not isinstance(decision, Future):
            return decision
        # Shielded: a client that leaves must not cancel a check that other requests
        # share, and a guess once sent is counted.
        return await asyncio.shield(asyncio.wrap_future(decision))

    def start(
        self, rule: AuthRule, authorization: bytes | None, address: str
    ) -> GateDecision | Future[GateDecision]:
        """A decision now, or the future of one when a password must be checked."""
        user_file = self._files[rule.user_file]
        users = user_file.current()
        now = self._clock()
        memo_key = b""
        if authorization is not None:
            memo_key = blake2b(
                authorization, key=self._key, person=self._persons[rule.user_file]
            ).digest()
            if self._memo is not None:
                # A lockout only stops guesses, and a remembered credential is no guess.
                remembered = self._memo.get(memo_key, user_file.version, now)
                if remembered is not None:
                    return Allowed(remembered)
        with self._lock:
            by_address = self._addresses.get(address)
        if (remaining := lock_remaining(by_address, now)) > 0:
            return Locked(math.ceil(remaining))
        # No header (a browser's first request) or a malformed one (another scheme, bad
        # base64, no colon): no password to check, so no hash and no count.
        credentials = parse_basic(authorization)
        if credentials is None:
            return Challenge(challenge(rule.realm), 0.0)
        attempt = _Attempt(
            rule,
            address,
            credentials.user,
            credentials.password,
            users.get(credentials.user),
            memo_key,
            user_file.version,
            memo_key + address.encode(),
        )
        return self._submit(attempt, now)

    def _submit(self, attempt: _Attempt, now: float) -> GateDecision | Future[GateDecision]:
        s = self.settings
        pair = (attempt.address, attempt.user)
        with self._lock:
            running = self._running.get(attempt.running_key)
            if running is not None:
                return running
            by_pair = self._pairs.get(pair)
            by_address = self._addresses.get(attempt.address)
            window = s.auth_failure_window
            if not (
                admits(by_pair, self._pending_pairs[pair], now, window, s.auth_max_failures)
                and admits(
                    by_address,
                    self._pending_addresses[attempt.address],
                    now,
                    window,
                    s.auth_max_failures_per_address,
                )
            ):
                remaining = max(lock_remaining(by_pair, now), lock_remaining(by_address, now))
                # Not locked yet but the cap is taken by checks still running: retry soon.
                return Locked(max(math.ceil(remaining), 1))
            self._pending_pairs[pair] += 1
            self._pending_addresses[attempt.address] += 1
            future = self._pool.submit(self._settle, attempt)
            self._running[attempt.running_key] = future
        return future

    def _settle(self, attempt: _Attempt) -> GateDecision:
        """On a pool thread: check the password, then count or reset, and decide."""
        try:
            if attempt.stored is None:
                bcrypt.checkpw(b"unknown user", _DUMMY_BCRYPT)  # as slow as a known user
                ok = False
            else:
                ok = verify_password(attempt.stored, attempt.password)
        except BaseException:
            with self._lock:
                self._release(attempt)
            raise
        now = self._clock()
        with self._lock:
            # Released in the same step as the count, so no guess slips in between.
            self._release(attempt)
            if ok:
                return self._succeeded(attempt, now)
            by_pair, by_address = self._count(attempt, now)
        AUTH_FAILURES.inc()
        # Never the user name or password: only where the attempt came from.
        log.warning(
            "basic auth failed for %s from %s (%d for this user name, %d from this address)",
            attempt.rule.prefix,
            attempt.address,
            by_pair.count,
            by_address.count,
        )
        s = self.settings
        if lock_remaining(by_pair, now) > 0 or lock_remaining(by_address, now) > 0:
            return Locked(math.ceil(s.auth_lockout))
        delay = min(s.auth_failure_delay * by_address.count, 2.0)
        return Challenge(challenge(attempt.rule.realm), delay)

    def _succeeded(self, attempt: _Attempt, now: float) -> Allowed:
        """Under the lock: reset the pair's count and remember the credential."""
        # Only the pair: resetting the address too would let one valid account wipe
        # the count of guesses at every other name from that address.
        self._pairs.pop((attempt.address, attempt.user), None)
        if self._memo is not None:
            self._memo.put(attempt.memo_key, attempt.user, attempt.version, now)
        return Allowed(attempt.user)

    def _count(self, attempt: _Attempt, now: float) -> tuple[Failures, Failures]:
        """Under the lock: one more failure for the pair and for the address."""
        s = self.settings
        window, lockout = s.auth_failure_window, s.auth_lockout
        pair = (attempt.address, attempt.user)
        by_pair = count_failure(self._pairs.get(pair), now, window, s.auth_max_failures, lockout)
        by_address = count_failure(
            self._addresses.get(attempt.address),
            now,
            window,
            s.auth_max_failures_per_address,
            lockout,
        )
        self._pairs[pair] = by_pair
        self._addresses[attempt.address] = by_address
        return by_pair, by_address

    def _release(self, attempt: _Attempt) -> None:
        """Under the lock: the attempt no longer holds a place under the caps."""
        _take_one(self._pending_pairs, (attempt.address, attempt.user))
        _take_one(self._pending_addresses, attempt.address)
        self._running.pop(attempt.running_key, None)


def _take_one(counter: Counter[_K], key: _K) -> None:
    """One less for ``key``, dropping it at zero so the counter does not grow."""
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]


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


def update_htpasswd(path: str, user: str, hashed: str) -> bool:
    """Replace or append ``user``'s line, keeping every other line; written atomically.
    True when the user was there already."""
    lines: list[str] = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    entry = f"{user}:{hashed}"
    existed = any(line.split(":", 1)[0] == user for line in lines)
    replaced = [entry if line.split(":", 1)[0] == user else line for line in lines]
    if not existed:
        replaced.append(entry)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(replaced) + "\n")
    if os.path.exists(path):
        os.chmod(tmp, os.stat(path).st_mode & 0o777)
    os.replace(tmp, path)
    return existed
