"""Signed redemption vouchers: a pseudonymous reference and an amount, nothing else.

A token is base64url(JSON payload) "." base64url(Ed25519 signature), signed with
the home city's key. The reference is a random voucher id that only the home
city can link to a wallet.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from aggregates.errors import InvalidInput, VoucherExpired
from services.settings import pem_files

# Bounds on a voucher's numbers, so a crafted one is refused before it reaches
# datetime (which overflows past year 9999) or an int64 field on the wire.
MAX_EXP = 253_402_300_799  # 9999-12-31T23:59:59Z
MAX_AMOUNT = 10**12  # the most any request may move (services/grpc/requests.py: Units)
HOME = re.compile(r"[a-z][a-z0-9_]{1,30}")  # a city key, as in city.toml


@dataclass(frozen=True)
class RedemptionVoucher:
    home: str
    voucher_id: UUID
    amount: int
    expires_at: dt.datetime

    def check_unexpired(self, now: dt.datetime) -> None:
        if now >= self.expires_at:
            raise VoucherExpired(f"voucher expired at {self.expires_at.isoformat()}")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(voucher: RedemptionVoucher, key: Ed25519PrivateKey) -> str:
    payload = json.dumps(
        {
            "v": 1,
            "home": voucher.home,
            "ref": str(voucher.voucher_id),
            "amount": voucher.amount,
            "exp": int(voucher.expires_at.timestamp()),
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    return f"{_b64(payload)}.{_b64(key.sign(payload))}"


def peek_home(token: str) -> str:
    """The claimed home city, read before the signature can be checked."""
    return _parse(token)[0].home


def peek(token: str) -> RedemptionVoucher:
    """The voucher a token claims to be, unchecked: only to know what to read ahead."""
    return _parse(token)[0]


def verify(token: str, public_key: Ed25519PublicKey) -> RedemptionVoucher:
    voucher, payload, signature = _parse(token)
    try:
        public_key.verify(signature, payload)
    except InvalidSignature:
        raise InvalidInput("redemption_token", "signature does not verify") from None
    return voucher


def _parse(token: str) -> tuple[RedemptionVoucher, bytes, bytes]:
    try:
        body, sig = token.split(".")
        payload, signature = _unb64(body), _unb64(sig)
        voucher = _voucher(json.loads(payload))
    # OSError and OverflowError come from datetime on some platforms, RecursionError
    # from deeply nested JSON: a crafted payload is a refusal, never an internal error.
    except (ValueError, KeyError, TypeError, AttributeError, OSError, OverflowError, RecursionError):
        raise InvalidInput("redemption_token", "not a well-formed redemption voucher") from None
    return voucher, payload, signature


def _voucher(data: object) -> RedemptionVoucher:
    """The payload's fields, each of the type and within the range `sign` writes."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    _whole(data, "v", 1, 1)  # the only version there is
    home, ref = data["home"], data["ref"]
    if not isinstance(home, str) or not HOME.fullmatch(home) or not isinstance(ref, str):
        raise ValueError("bad home or ref")
    return RedemptionVoucher(
        home=home,
        voucher_id=UUID(ref),
        amount=_whole(data, "amount", 1, MAX_AMOUNT),
        expires_at=dt.datetime.fromtimestamp(_whole(data, "exp", 0, MAX_EXP), dt.UTC),
    )


def _whole(data: dict[str, object], name: str, low: int, high: int) -> int:
    """A JSON integer (not a float, string or boolean) between `low` and `high`."""
    value = data[name]
    if type(value) is not int or not low <= value <= high:
        raise ValueError(f"bad {name}")
    return value


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 key a city signs its vouchers with; ValueError names the file otherwise."""
    wanted = "an Ed25519 private key"
    key = pem_files.private_key(path, wanted)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not {wanted}{pem_files.algorithm(key)}")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A partner's voucher key; ValueError names the file otherwise."""
    wanted = "an Ed25519 public key"
    key = pem_files.public_key(path, wanted)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not {wanted}{pem_files.algorithm(key)}")
    return key
