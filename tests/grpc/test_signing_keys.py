"""A kept voucher signing key survives a new throwaway CA; without a folder each CA makes its own."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path
from uuid import uuid4

import pytest

from aggregates.errors import InvalidInput
from services.demo.pki import ThrowawayCA
from services.federation.vouchers import RedemptionVoucher, load_private_key, load_public_key, sign, verify


def voucher_from(key_file: Path) -> str:
    expires = dt.datetime(2026, 5, 31, 12, tzinfo=dt.UTC)
    return sign(RedemptionVoucher("vienna", uuid4(), 3, expires), load_private_key(key_file))


def test_kept_signing_key_still_verifies_vouchers_after_a_new_ca(tmp_path: Path) -> None:
    kept = tmp_path / "keys"
    first = ThrowawayCA(tmp_path / "pki1").node("vienna", kept)
    token = voucher_from(first.signing_key)
    second = ThrowawayCA(tmp_path / "pki2").node("vienna", kept)
    assert second.cert != first.cert and second.cert.read_bytes() != first.cert.read_bytes()
    assert verify(token, load_public_key(second.public_key)).amount == 3
    assert stat.S_IMODE(second.signing_key.stat().st_mode) == 0o600


def test_throwaway_signing_key_is_new_for_each_ca(tmp_path: Path) -> None:
    first = ThrowawayCA(tmp_path / "pki1").node("vienna")
    token = voucher_from(first.signing_key)
    second = ThrowawayCA(tmp_path / "pki2").node("vienna")
    with pytest.raises(InvalidInput):
        verify(token, load_public_key(second.public_key))
