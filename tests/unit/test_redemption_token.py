"""Redemption voucher tokens: crafted payloads are refused as malformed, whatever key signed them."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any
from uuid import uuid4

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aggregates.errors import InvalidInput
from services.federation.vouchers import MAX_AMOUNT, MAX_EXP, RedemptionVoucher, peek_home, sign, verify

KEY = Ed25519PrivateKey.generate()
GOOD = {"v": 1, "home": "vienna", "ref": str(uuid4()), "amount": 3, "exp": 1_780_000_000}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(payload: bytes, key: Ed25519PrivateKey = KEY) -> str:
    """A token around any payload bytes, with a valid signature over them."""
    return f"{b64(payload)}.{b64(key.sign(payload))}"


def crafted(**changes: Any) -> str:
    fields = {k: v for k, v in {**GOOD, **changes}.items() if v is not ...}
    return signed(json.dumps(fields).encode())


# Each is well signed; only the payload is wrong. `...` drops the field.
CRAFTED = {
    "exp 2**62": crafted(exp=2**62),
    "exp -2**62": crafted(exp=-(2**62)),
    "exp 10**30": crafted(exp=10**30),
    "exp past year 9999": crafted(exp=MAX_EXP + 1),
    "exp negative": crafted(exp=-1),
    "exp a float": crafted(exp=1_780_000_000.5),
    "exp a whole float": crafted(exp=1.78e9),
    "exp a string": crafted(exp="1780000000"),
    "exp true": crafted(exp=True),
    "exp null": crafted(exp=None),
    "exp missing": crafted(exp=...),
    "amount negative": crafted(amount=-5),
    "amount zero": crafted(amount=0),
    "amount 2**70": crafted(amount=2**70),
    "amount above the most a request moves": crafted(amount=MAX_AMOUNT + 1),
    "amount a float": crafted(amount=1.5),
    "amount a string": crafted(amount="5"),
    "amount true": crafted(amount=True),
    "version 2": crafted(v=2),
    "version true": crafted(v=True),
    "version missing": crafted(v=...),
    "home a number": crafted(home=7),
    "home not a city key": crafted(home="Vienna; DROP"),
    "home too long": crafted(home="v" * 500),
    "ref not a uuid": crafted(ref="not-a-uuid"),
    "ref a number": crafted(ref=12345678901234567890123456789012),
    "a JSON list": signed(b"[1, 2]"),
    "a JSON number": signed(b"1e999999"),
    "NaN": crafted(exp=float("nan")),
    "deeply nested JSON": signed(b"[" * 1400),
    "not UTF-8": signed(b"\xff\xfe{}"),
    "a 5000-digit number": signed(b'{"v":1,"amount":' + b"9" * 5000 + b"}"),
}
NOT_TOKENS = ["", ".", "a.b.c", "no-dot", "é.é", "!!!.???", "eyJ2IjoxfQ"]


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_a_crafted_payload_is_malformed_even_when_well_signed(name: str) -> None:
    token = CRAFTED[name]
    with pytest.raises(InvalidInput, match="redemption_token: not a well-formed redemption voucher"):
        peek_home(token)
    with pytest.raises(InvalidInput, match="redemption_token: not a well-formed redemption voucher"):
        verify(token, KEY.public_key())


@pytest.mark.parametrize("token", NOT_TOKENS)
def test_text_that_is_no_token_is_malformed(token: str) -> None:
    with pytest.raises(InvalidInput, match="redemption_token: not a well-formed"):
        verify(token, KEY.public_key())


def test_bounds_are_inclusive_and_round_trip() -> None:
    last = dt.datetime.fromtimestamp(MAX_EXP, dt.UTC)
    for amount, expires in ((1, dt.datetime(1970, 1, 1, tzinfo=dt.UTC)), (MAX_AMOUNT, last)):
        voucher = RedemptionVoucher("vienna", uuid4(), amount, expires)
        assert verify(sign(voucher, KEY), KEY.public_key()) == voucher


def test_a_well_formed_token_under_another_key_does_not_verify() -> None:
    token = crafted()
    assert peek_home(token) == "vienna"
    with pytest.raises(InvalidInput, match="redemption_token: signature does not verify"):
        verify(token, Ed25519PrivateKey.generate().public_key())
    body, _ = token.split(".")
    for signature in ("", "AAAA", b64(b"\x00" * 64), b64(b"\x00" * 200)):
        with pytest.raises(InvalidInput, match="redemption_token: signature does not verify"):
            verify(f"{body}.{signature}", KEY.public_key())
