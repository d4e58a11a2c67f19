"""TLS termination settings: a modern server context, and throwaway certificates."""

from __future__ import annotations

import os
import ssl
import sys
import tempfile

MODERN_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!MD5:!DSS"


def harden(context: ssl.SSLContext) -> ssl.SSLContext:
    """TLS 1.2 at least, forward-secret AEAD ciphers (TLS 1.3 suites are fixed and
    modern), ALPN http/1.1, no compression or renegotiation."""
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(MODERN_CIPHERS)
    context.set_alpn_protocols(["http/1.1"])
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    return context


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
