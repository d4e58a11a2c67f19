"""The basic-auth gate's settings: rules, user files, the memo and the throttle."""

from __future__ import annotations

from dataclasses import dataclass

from edgecache.core.auth import AuthRule
from edgecache.errors import ConfigError
from edgecache.settings.fields import check_fields, named, setting
from edgecache.settings.values import parse_auth


def _auth_rule(rule: object) -> AuthRule:
    """An AuthRule from a keyword argument's rule: an AuthRule, a dict or a tuple."""
    if isinstance(rule, AuthRule):
        return rule
    if isinstance(rule, dict):
        try:
            return AuthRule(**rule)
        except TypeError as exc:
            raise ConfigError(f"setting auth: {rule!r}: {exc}") from None
    if isinstance(rule, tuple | list) and 2 <= len(rule) <= 3:
        return AuthRule(*rule)
    raise ConfigError(f"setting auth: {rule!r}: expected AuthRule, dict or (prefix, file[, realm])")


@dataclass(frozen=True)
class AuthSettings:
    """HTTP basic auth per path prefix, in front of everything else."""

    auth: tuple[AuthRule, ...] = setting(
        (),
        """Basic-auth rules PREFIX:FILE[:REALM], separated by ';': the users of the
        htpasswd FILE may open PREFIX and below.""",
        valid=lambda rule: rule.prefix.startswith("/"),
        accepted="path prefixes like /admin/",
        parse=parse_auth,
        metavar="PREFIX:FILE[:REALM];...",
    )
    auth_plaintext: bool = setting(
        False, "Accept plain-text passwords in user files (otherwise such lines are skipped)."
    )
    auth_forward_credentials: bool = setting(
        False, "Pass Authorization on to the app (the cache then applies RFC 9111 §3.5)."
    )
    auth_memo: bool = setting(
        True, "Remember verified credentials (by keyed hash) so bcrypt runs once, not per request."
    )
    auth_memo_ttl: float = setting(
        300.0, "How long a verified credential is remembered.", unit="seconds", at_least=0
    )
    auth_memo_size: int = setting(10_000, "Most verified credentials remembered.", at_least=1)
    auth_max_failures: int = setting(
        5,
        """Failures for one user name from one address within auth-failure-window before
        that pair gets 429 (other names and addresses still get in).""",
        at_least=1,
    )
    auth_max_failures_per_address: int = setting(
        20,
        """Failures from one address, whatever the user names, within
        auth-failure-window before every request from it gets 429; at least
        auth-max-failures.""",
        at_least=1,
    )
    auth_failure_window: float = setting(
        60.0, "The window in which failures are counted.", unit="seconds", at_least=0
    )
    auth_lockout: float = setting(
        60.0,
        "How long an address is answered 429 after too many failures.",
        unit="seconds",
        at_least=0,
    )
    auth_failure_delay: float = setting(
        0.25,
        "Each failure's 401 waits this long times the address's failures so far (max 2 s).",
        unit="seconds",
        at_least=0,
    )
    auth_hash_threads: int = setting(
        2,
        """Threads per process that check passwords, off the event loop and at a lower CPU
        priority; when all are busy, checks wait their turn.""",
        at_least=1,
    )

    def __post_init__(self) -> None:
        if not isinstance(self.auth, str):  # text is read by check_fields, as the variable
            object.__setattr__(self, "auth", tuple(_auth_rule(r) for r in self.auth))
        check_fields(self, AuthSettings)
        if self.auth_max_failures_per_address < self.auth_max_failures:
            raise named(AuthSettings, "auth_max_failures_per_address").fail(
                self.auth_max_failures_per_address,
                f"an integer >= auth_max_failures ({self.auth_max_failures})",
            )
