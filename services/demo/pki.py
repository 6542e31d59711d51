"""A throwaway federation CA, node certificates and voucher signing keys.

For tests and the demo only: production cities use certificates from their own
PKI. Each node certificate names its city as CN and SAN, plus localhost.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from services.federation.vouchers import load_private_key

PEM = serialization.Encoding.PEM


@dataclass(frozen=True)
class NodeFiles:
    cert: Path
    key: Path
    signing_key: Path
    public_key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key_pem(key: ec.EllipticCurvePrivateKey | Ed25519PrivateKey) -> bytes:
    return key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


class ThrowawayCA:
    def __init__(self, folder: Path, name: str = "civfed test federation CA") -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.ca_file = folder / "ca.pem"
        self.ca_file.write_bytes(self.cert.public_bytes(PEM))

    def issue(self, cn: str) -> tuple[Path, Path]:
        """A certificate for `cn` (a city key, or a client name) signed by this CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        san = x509.SubjectAlternativeName(
            [x509.DNSName(cn), x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(san, critical=False)
            .sign(self.key, hashes.SHA256())
        )
        cert_file, key_file = self.folder / f"{cn}.crt", self.folder / f"{cn}.key"
        cert_file.write_bytes(cert.public_bytes(PEM))
        key_file.write_bytes(_key_pem(key))
        return cert_file, key_file

    def node(self, city: str, signing_folder: Path | None = None) -> NodeFiles:
        """TLS certificate plus the Ed25519 key the city signs its vouchers with.

        With `signing_folder` the signing key is kept there and reused when found:
        vouchers a node issued earlier (and replays of them) still verify after a
        restart, as with a city's long-lived key. TLS certificates stay throwaway.
        """
        cert, key = self.issue(city)
        folder = signing_folder or self.folder
        folder.mkdir(parents=True, exist_ok=True)
        signing_file, public_file = folder / f"{city}.sign.key", folder / f"{city}.sign.pub"
        if signing_folder is not None and signing_file.exists():
            signing = load_private_key(signing_file)
        else:
            signing = Ed25519PrivateKey.generate()
            signing_file.touch(mode=0o600)
            signing_file.write_bytes(_key_pem(signing))
        public_file.write_bytes(
            signing.public_key().public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        return NodeFiles(cert, key, signing_file, public_file)
