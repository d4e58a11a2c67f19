"""TLS termination settings: a hardened server context, and throwaway certificates.

Everything here takes or makes an ``ssl.SSLContext`` (or files for one), so every wire
layer that terminates TLS (uvicorn's today, our own HTTP server tomorrow) gets the same
policy by calling :func:`harden` on the context it built.
"""

from __future__ import annotations

import atexit
import ctypes
import datetime
import functools
import ipaddress
import os
import shutil
import signal
import ssl
import sys
import tempfile
import threading
from types import FrameType
from typing import Any

MODERN_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!MD5:!DSS"

KEY_EXCHANGE_GROUPS = ("X25519", "P-256", "P-384")
"""Mozilla's intermediate profile (``tls_curves``): OpenSSL 3's default list also
accepts X448, P-521 and the finite-field groups, which the profile rejects."""

SELF_SIGNED_LIFETIME = datetime.timedelta(days=90)
"""Like an ACME certificate: short enough that a forgotten throwaway one expires."""

CLOCK_SKEW = datetime.timedelta(hours=1)
"""not_before is set this far in the past so a client whose clock is a little behind
still accepts a certificate made a moment ago (the lifetime includes this hour)."""

_SSL_CTRL_SET_GROUPS_LIST = 92
"""``SSL_CTX_set1_groups_list(ctx, list)`` is a macro for
``SSL_CTX_ctrl(ctx, SSL_CTRL_SET_GROUPS_LIST, 0, list)``, 92 (openssl/ssl.h of OpenSSL 3.0)."""


def harden(context: ssl.SSLContext, alpn: tuple[str, ...] = ("http/1.1",)) -> ssl.SSLContext:
    """TLS 1.2 at least, forward-secret AEAD ciphers (TLS 1.3 suites are fixed and
    modern), key exchange only over X25519, P-256 or P-384, ALPN ``alpn`` (in order of
    preference; http/1.1 unless the server speaks more), no compression or
    renegotiation."""
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(MODERN_CIPHERS)
    set_key_exchange_groups(context, KEY_EXCHANGE_GROUPS)
    context.set_alpn_protocols(list(alpn))
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    return context


def set_key_exchange_groups(context: ssl.SSLContext, groups: tuple[str, ...]) -> None:
    """Limit the (EC)DHE groups of ``context`` to ``groups``, for TLS 1.2 and 1.3.

    Python 3.15 has ``SSLContext.set_groups``; before it there is no API for this.
    ``set_ecdh_curve`` does not help: on OpenSSL 3 it calls ``SSL_CTX_set1_groups``
    with exactly one group, which would lock out every client that does not offer that
    one. So we call OpenSSL's own ``SSL_CTX_set1_groups_list`` on the context's
    ``SSL_CTX`` through ctypes, in the very libssl that ``_ssl`` is linked against.
    This is per context: client contexts in the process (upstream TLS, Redis) keep
    OpenSSL's defaults, and each worker process applies it when it hardens its own
    context. Names OpenSSL does not know raise ``ssl.SSLError``. tests/proxy/test_tls.py
    checks the effect through a real proxy with ``openssl s_client -groups``: X448,
    secp521r1 and ffdhe2048 are refused, X25519, P-256 and P-384 accepted, in TLS 1.2
    and 1.3.
    """
    names = ":".join(groups)
    set_groups = getattr(context, "set_groups", None)
    if set_groups is not None:  # Python 3.15+
        set_groups(names)
        return
    lib, pointer = _libssl(), _ssl_ctx_pointer(context)
    if lib.SSL_CTX_ctrl(pointer, _SSL_CTRL_SET_GROUPS_LIST, 0, names.encode()) != 1:
        lib.ERR_clear_error()  # leave no stale error for the next ssl call to report
        raise ssl.SSLError(f"OpenSSL refused the key-exchange groups {names!r}")


@functools.cache
def _libssl() -> Any:
    """The libssl functions we need, looked up through the ``_ssl`` extension itself:
    dlsym on its handle searches its dependencies, so these are the same library (and
    the same SSL_CTX structures) that the ``ssl`` module uses, never another copy."""
    import _ssl

    if sys.implementation.name != "cpython":
        raise RuntimeError("limiting TLS key-exchange groups needs CPython's ssl module")
    lib = ctypes.CDLL(_ssl.__file__)
    lib.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_char_p]
    lib.SSL_CTX_ctrl.restype = ctypes.c_long
    lib.SSL_CTX_get_options.argtypes = [ctypes.c_void_p]
    lib.SSL_CTX_get_options.restype = ctypes.c_uint64
    lib.ERR_clear_error.argtypes = []
    lib.ERR_clear_error.restype = None
    return lib


def _ssl_ctx_pointer(context: ssl.SSLContext) -> int:
    """The ``SSL_CTX *`` of ``context``: CPython's ``PySSLContext`` (Modules/_ssl.c) is
    ``PyObject_HEAD`` followed by ``SSL_CTX *ctx``. Private layout, so it is checked
    before any write: OpenSSL must report the very options the context reports, else we
    stop rather than poke at the wrong memory."""
    pointer = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
    if not pointer or _libssl().SSL_CTX_get_options(pointer) != context.options:
        raise RuntimeError("cannot find the OpenSSL context behind this ssl.SSLContext")
    return pointer


def self_signed_files(hosts: list[str]) -> tuple[str, str]:
    """A throwaway self-signed certificate for ``hosts``, as cert and key files that are
    removed when this process exits.

    Made with ``cryptography`` rather than trustme: trustme makes a CA valid from 2000
    to 3000 and marks the SAN critical on a leaf whose subject is not empty. Here: one
    ECDSA P-256 certificate (SHA-256), valid for 90 days from an hour ago, with a
    non-critical SAN (RFC 5280 section 4.2.1.6) naming every host.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edgecache"),
            x509.NameAttribute(NameOID.COMMON_NAME, "edgecache self-signed certificate"),
        ]
    )
    not_before = datetime.datetime.now(datetime.UTC) - CLOCK_SKEW
    not_before = not_before.replace(microsecond=0)  # certificates keep whole seconds
    key_id = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + SELF_SIGNED_LIFETIME)
        .add_extension(x509.SubjectAlternativeName(_general_names(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(key_id, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(key_id),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    folder = tempfile.mkdtemp(prefix="edgecache-tls-")  # mode 0700
    remove_at_exit(folder)
    certfile, keyfile = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    with open(certfile, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    # Created 0600, never readable by others even for an instant.
    with os.fdopen(os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    print(
        "edgecache: WARNING: serving TLS with a SELF-SIGNED throwaway certificate for "
        f"{', '.join(hosts)} ({certfile}, valid until "
        f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC). Browsers will not trust it. "
        "For local use only; give --certfile/--keyfile in production.",
        file=sys.stderr,
    )
    return certfile, keyfile


def _general_names(hosts: list[str]) -> list[Any]:
    from cryptography import x509

    names: list[Any] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def remove_at_exit(folder: str) -> None:
    """Remove ``folder`` when this process exits, normally or on SIGTERM.

    atexit alone is not enough: after a graceful shutdown on SIGTERM, uvicorn restores
    the handler it found and raises SIGTERM again, and with the default handler the
    process dies without running atexit. So when we are on the main thread we chain a
    SIGTERM handler that removes the folder and then does what the previous handler
    would have done. Only the process that made the folder removes it (a forked child
    inherits atexit hooks; spawned workers never see them).
    """
    owner = os.getpid()

    def remove() -> None:
        if os.getpid() == owner:
            shutil.rmtree(folder, ignore_errors=True)

    atexit.register(remove)
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        remove()
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    signal.signal(signal.SIGTERM, on_sigterm)
