"""TLS termination settings: a hardened server context, and throwaway certificates.

Everything here takes or makes an ``ssl.SSLContext`` (or files for one), so every wire
layer that terminates TLS (uvicorn's today, our own HTTP server tomorrow) gets the same
policy by calling :func:`harden` on the context it built.
"""

from __future__ import annotations

import ctypes
import functools
import os
import ssl
import sys
import tempfile
from typing import Any

MODERN_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!MD5:!DSS"

KEY_EXCHANGE_GROUPS = ("X25519", "P-256", "P-384")
"""Mozilla's intermediate profile (``tls_curves``): OpenSSL 3's default list also
accepts X448, P-521 and the finite-field groups, which the profile rejects."""

_SSL_CTRL_SET_GROUPS_LIST = 92
"""``SSL_CTX_set1_groups_list(ctx, list)`` is a macro for
``SSL_CTX_ctrl(ctx, SSL_CTRL_SET_GROUPS_LIST, 0, list)``, 92 (openssl/ssl.h of OpenSSL 3.0)."""


def harden(context: ssl.SSLContext) -> ssl.SSLContext:
    """TLS 1.2 at least, forward-secret AEAD ciphers (TLS 1.3 suites are fixed and
    modern), key exchange only over X25519, P-256 or P-384, ALPN http/1.1, no
    compression or renegotiation."""
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(MODERN_CIPHERS)
    set_key_exchange_groups(context, KEY_EXCHANGE_GROUPS)
    context.set_alpn_protocols(["http/1.1"])
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
    """A throwaway certificate for ``hosts`` (made with trustme), as cert and key files."""
    import trustme

    ca = trustme.CA(organization_name="edgecache throwaway CA")
    cert = ca.issue_cert(*hosts)
    folder = tempfile.mkdtemp(prefix="edgecache-tls-")
    certfile, keyfile = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    cert.cert_chain_pems[0].write_to_path(certfile)
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(certfile, append=True)
    cert.private_key_pem.write_to_path(keyfile)
    os.chmod(keyfile, 0o600)
    print(
        "edgecache: WARNING: serving TLS with a SELF-SIGNED throwaway certificate for "
        f"{', '.join(hosts)} ({certfile}). Browsers will not trust it. For local use only; "
        "give --certfile/--keyfile in production.",
        file=sys.stderr,
    )
    return certfile, keyfile
