"""PEM key and certificate files, read with errors that say what a file holds instead.

cryptography's own errors ("Could not deserialize key data", "no BEGIN PUBLIC KEY
delimiters") name neither the file nor what went wrong in terms an operator acts on.
Every loader here raises ValueError naming the file (OSError when it cannot be read).
"""

from __future__ import annotations

import re
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

LABELS = {
    "CERTIFICATE": "a certificate",
    "PUBLIC KEY": "a public key",
    "PRIVATE KEY": "a private key",
    "ENCRYPTED PRIVATE KEY": "an encrypted private key",
    "EC PRIVATE KEY": "an EC private key",
    "RSA PRIVATE KEY": "an RSA private key",
}
PRIVATE = ("PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY")


def algorithm(key: object) -> str:
    """A loaded key's algorithm, in brackets, for a key of the wrong kind."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return " (it holds an EC key)"
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return " (it holds an RSA key)"
    return " (it holds a key of another algorithm)"


def what_it_holds(data: bytes, expected: tuple[str, ...] = ()) -> str:
    """What a file that did not load holds, in brackets, from its PEM label. `expected`: the
    labels of the kind wanted, so that a block that is there but unreadable is said so."""
    label = re.search(rb"-----BEGIN ([A-Z0-9 ]{1,40})-----", data)
    if label is None:
        return " (it is not PEM)"
    name = label[1].decode()
    if name in expected:
        return f" (its {name} block cannot be read)"
    return f" (it looks like {LABELS.get(name, f'a PEM {name!r} block')})"


def private_key(path: Path, wanted: str = "an unencrypted PEM private key") -> PrivateKeyTypes:
    data = path.read_bytes()
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # TypeError: an encrypted key, which a node cannot unlock unattended.
        raise ValueError(f"{path} is not {wanted}{what_it_holds(data, PRIVATE)}") from None


def public_key(path: Path, wanted: str = "a PEM public key") -> PublicKeyTypes:
    data = path.read_bytes()
    try:
        return serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise ValueError(f"{path} is not {wanted}{what_it_holds(data, ('PUBLIC KEY',))}") from None


def certificates(path: Path) -> list[x509.Certificate]:
    """Every certificate in a PEM file (a chain or a CA bundle); at least one."""
    data = path.read_bytes()
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        hint = what_it_holds(data, ("CERTIFICATE",))
        raise ValueError(f"{path} holds no PEM certificate{hint}") from None


def same_key(cert: x509.Certificate, key: PrivateKeyTypes) -> bool:
    """Whether `key` is the private half of the certificate's public key."""
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(cert.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki))
