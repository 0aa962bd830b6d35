"""Self-signed TLS material for the sandbox, for a simulator that must serve https like its real service."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_FILE_NAME = "sandbox-cert.pem"
KEY_FILE_NAME = "sandbox-key.pem"


@dataclass(frozen=True)
class TlsMaterial:
    """Paths of a PEM certificate (also its own CA) and its private key."""

    cert_path: Path
    key_path: Path

    def server_context(self) -> ssl.SSLContext:
        """Return a server-side SSL context presenting this certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(certfile=str(self.cert_path), keyfile=str(self.key_path))
        return context

    def client_context(self) -> ssl.SSLContext:
        """Return a client-side SSL context that trusts only this certificate (for aiohttp clients)."""
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.cert_path))


def make_self_signed(workdir: Path, *, valid_days: int = 30) -> TlsMaterial:
    """Create a self-signed certificate for 127.0.0.1 and localhost and write it with its key to workdir."""
    workdir.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "syncd sandbox"),
        ]
    )
    # Backdate a little so a client whose clock is slightly behind still accepts the certificate.
    now = datetime.datetime.now(datetime.UTC)
    not_before = now - datetime.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        # The certificate is its own trust anchor (clients pass it as the CA bundle), so it must be a CA;
        # OpenSSL 3 also insists on key usage/SKI/AKI being coherent for a self-signed leaf used as a root.
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = workdir / CERT_FILE_NAME
    key_path = workdir / KEY_FILE_NAME
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PrivateFormat.PKCS8,
            encryption_algorithm=serialization.NoEncryption(),
        )
    )
    # The key grants nothing outside the sandbox, but keep it owner-only as a matter of hygiene.
    key_path.chmod(0o600)
    return TlsMaterial(cert_path=cert_path, key_path=key_path)
