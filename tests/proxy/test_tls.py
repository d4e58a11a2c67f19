"""TLS through a real ``edgecache proxy`` process (issue 12): key exchange only over
X25519, P-256 and P-384 in TLS 1.2 and 1.3 (seen by an independent client, openssl
s_client), the ``--self-signed`` certificate's shape and cleanup, and sslyze's check
against Mozilla's intermediate profile."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edgecache.proxy.tls import (
    KEY_EXCHANGE_GROUPS,
    MODERN_CIPHERS,
    SELF_SIGNED_LIFETIME,
    set_key_exchange_groups,
)
from tests.proxy.conftest import Proxy, start_proxy
from tests.proxy.origin import Origin

HOSTS = ["localhost", "127.0.0.1"]


@dataclass
class Leaf:
    certfile: str
    keyfile: str


@dataclass
class IssuingCA:
    """A test CA and leaves it issued, made with cryptography. trustme is not used here:
    its leaves carry a critical SAN on a non-empty subject, which sslyze's path
    validation (cryptography's verifier) rejects, as RFC 5280 section 4.2.1.6 says."""

    ca_file: str
    ecdsa: Leaf
    rsa: Leaf


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edgecache tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def make_test_ca(folder: Path) -> IssuingCA:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("edgecache test CA"))
        .issuer_name(_name("edgecache test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = folder / "ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    def leaf(kind: str, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> Leaf:
        san = x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name("localhost"))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=90))
            .add_extension(san, critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        certfile, keyfile = folder / f"{kind}.cert.pem", folder / f"{kind}.key.pem"
        certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, keyfile)
        return Leaf(str(certfile), str(keyfile))

    return IssuingCA(
        str(ca_file),
        ecdsa=leaf("ecdsa", ec.generate_private_key(ec.SECP256R1())),
        rsa=leaf("rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
    )


@pytest.fixture(scope="module")
def issuing_ca(tmp_path_factory: pytest.TempPathFactory) -> IssuingCA:
    return make_test_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def rsa_proxy(
    issuing_ca: IssuingCA, origin: Origin, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxy]:
    """An RSA certificate, so that in TLS 1.2 the groups a client offers only decide
    the key exchange (with an ECDSA certificate they also name the curves the client
    can verify, RFC 8422 section 5.1). Two workers: every connection is served by a
    spawned worker process, which hardens its own context."""
    with start_proxy(
        tmp_path_factory.mktemp("rsa-proxy"),
        "--upstream",
        origin.url,
        "--certfile",
        issuing_ca.rsa.certfile,
        "--keyfile",
        issuing_ca.rsa.keyfile,
        "--workers",
        "2",
        scheme="https",
    ) as p:
        yield p


S_CLIENT = ("openssl", "s_client", "-connect")


def s_client(port: int, version: str, groups: str) -> tuple[str, str] | None:
    """(protocol, key-exchange group) that openssl s_client negotiated offering only
    ``groups``, or None when the handshake failed."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command-line tool is not installed")
    done = subprocess.run(
        [*S_CLIENT, f"127.0.0.1:{port}", "-servername", "localhost", version, "-groups", groups],
        input="",
        capture_output=True,
        text=True,
        timeout=20,
    )
    session = re.search(r"New, (TLSv1\.[23]), Cipher is (\S+)", done.stdout)
    if session is None:
        assert "Cipher is (NONE)" in done.stdout, done.stdout + done.stderr
        return None
    key = re.search(r"Server Temp Key: (?:ECDH, )?([\w-]+),", done.stdout)
    assert key is not None, done.stdout
    return session.group(1), key.group(1)


OPENSSL_NAMES = {"X25519": "X25519", "P-256": "prime256v1", "P-384": "secp384r1"}


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
@pytest.mark.parametrize("group", ["X25519", "P-256", "P-384"])
def test_allowed_groups_are_accepted(rsa_proxy: Proxy, version: str, group: str) -> None:
    negotiated = s_client(rsa_proxy.port, version, group)
    protocol = "TLSv1.2" if version == "-tls1_2" else "TLSv1.3"
    assert negotiated == (protocol, OPENSSL_NAMES[group])


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
@pytest.mark.parametrize("group", ["X448", "secp521r1", "ffdhe2048"])
def test_other_groups_are_refused(rsa_proxy: Proxy, version: str, group: str) -> None:
    # OpenSSL 3's defaults accept all three (X448 and P-521 were issue 12's findings;
    # the finite-field groups are outside Mozilla's list as well).
    assert s_client(rsa_proxy.port, version, group) is None


def test_a_client_offering_more_gets_an_allowed_group(rsa_proxy: Proxy) -> None:
    # A client preferring X448 but also offering P-256 is served, over P-256.
    for version in ("-tls1_2", "-tls1_3"):
        negotiated = s_client(rsa_proxy.port, version, "X448:secp521r1:P-256")
        assert negotiated is not None and negotiated[1] == "prime256v1"


def _peer_certificate(port: int) -> x509.Certificate:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_self_signed_certificate(origin: Origin, tmp_path: Path, workers: str) -> None:
    with start_proxy(
        tmp_path, "--upstream", origin.url, "--self-signed", "--workers", workers, scheme="https"
    ) as p:
        found = re.search(r"\((/\S+)/cert\.pem", p.wait_for_log("SELF-SIGNED"))
        assert found is not None
        folder = found.group(1)
        assert sorted(os.listdir(folder)) == ["cert.pem", "key.pem"]
        assert os.stat(os.path.join(folder, "key.pem")).st_mode & 0o077 == 0
        cert = _peer_certificate(p.port)

        now = datetime.datetime.now(datetime.UTC)
        lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
        assert lifetime <= SELF_SIGNED_LIFETIME <= datetime.timedelta(days=90)
        # Backdated for clock skew, but only a little.
        assert now - datetime.timedelta(days=1) < cert.not_valid_before_utc
        assert cert.not_valid_before_utc < now - datetime.timedelta(minutes=30)

        assert len(cert.subject) > 0
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert san.critical is False
        assert san.value.get_values_for_type(x509.DNSName) == ["localhost"]
        assert set(san.value.get_values_for_type(x509.IPAddress)) == {
            ipaddress.ip_address("127.0.0.1"),
            ipaddress.ip_address("::1"),
        }

        # Well-formed enough to be its own trust anchor, with hostname checks on.
        pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        strict = ssl.create_default_context(cadata=pem)
        with (
            socket.create_connection(("127.0.0.1", p.port), timeout=10) as raw,
            strict.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    # The proxy got SIGTERM and is gone: its throwaway key and certificate are too.
    assert not os.path.exists(folder)


def sslyze_intermediate(port: int, ca_file: str, tmp_path: Path) -> dict[str, object]:
    """sslyze's own CLI check against Mozilla's intermediate profile (what issue 12 ran);
    fails the test with sslyze's report unless the server is compliant."""
    json_out = tmp_path / "sslyze.json"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "sslyze", "--mozilla_config", "intermediate"),
            *("--certinfo_ca_file", ca_file, "--json_out", str(json_out)),
            f"localhost:{port}{{127.0.0.1}}",
        ],
        capture_output=True,
        text=True,
        timeout=50,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert f"localhost:{port}: OK - Compliant." in done.stdout, report
    result: dict[str, object] = json.loads(json_out.read_text())
    return result


def _supported_curves(result: dict[str, object]) -> set[str]:
    (server,) = result["server_scan_results"]  # type: ignore[misc]
    curves = server["scan_result"]["elliptic_curves"]["result"]["supported_curves"]
    return {curve["name"] for curve in curves}


@pytest.mark.tls_scan
def test_mozilla_intermediate_with_a_ca_issued_certificate(
    issuing_ca: IssuingCA, origin: Origin, tmp_path: Path
) -> None:
    with start_proxy(
        tmp_path,
        "--upstream",
        origin.url,
        "--certfile",
        issuing_ca.ecdsa.certfile,
        "--keyfile",
        issuing_ca.ecdsa.keyfile,
        scheme="https",
    ) as p:
        result = sslyze_intermediate(p.port, issuing_ca.ca_file, tmp_path)
    assert _supported_curves(result) == {"X25519", "secp256r1", "secp384r1"}


@pytest.mark.tls_scan
def test_mozilla_intermediate_with_the_self_signed_certificate(
    origin: Origin, tmp_path: Path
) -> None:
    with start_proxy(tmp_path, "--upstream", origin.url, "--self-signed", scheme="https") as p:
        found = re.search(r"\((/\S+/cert\.pem)", p.wait_for_log("SELF-SIGNED"))
        assert found is not None
        # The certificate is its own trust anchor.
        sslyze_intermediate(p.port, found.group(1), tmp_path)


def test_a_group_openssl_does_not_know_is_an_error() -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with pytest.raises(ssl.SSLError, match="no-such-group"):
        set_key_exchange_groups(context, ("X25519", "no-such-group"))
    # The refusal left no stale OpenSSL error behind for the next call to report.
    set_key_exchange_groups(context, KEY_EXCHANGE_GROUPS)
    context.set_ciphers(MODERN_CIPHERS)
