"""The access log and erasure requests as pure domain objects: no servers, no store."""

from __future__ import annotations

import datetime as dt
from uuid import uuid4

import pytest

from aggregates.access import AccessLog
from aggregates.erasure import LEGAL_BASES, ErasureRequest
from aggregates.errors import ErasureNotPending, InvalidInput, SelfErasureApproval

T0 = dt.datetime(2026, 5, 4, 8, 0, tzinfo=dt.UTC)


def test_one_access_log_per_wallet_and_reads_need_a_purpose() -> None:
    wallet = uuid4()
    assert AccessLog.create_id("vienna", wallet) == AccessLog.create_id("vienna", wallet)
    assert AccessLog.create_id("vienna", wallet) != AccessLog.create_id("vienna", uuid4())
    assert AccessLog.create_id("vienna", wallet) != AccessLog.create_id("rome", wallet)
    log = AccessLog("vienna", wallet)
    for purpose in ("", "   ", "x" * 501):
        with pytest.raises(InvalidInput) as err:
            log.record("staff:s1", ["recorder"], "read balance", purpose, T0, read=True)
        assert err.value.field == "purpose"
    # Only staff, by authenticated subject, are logged; an action needs no purpose.
    with pytest.raises(InvalidInput):
        log.record("Jan", ["recorder"], "read balance", "desk", T0, read=True)
    log.record("staff:s1", ["recorder"], "recorded activity trip", "", T0, read=False)
    log.record("staff:s2", ["appeals_officer"], "read history", "appeal A-1", T0, read=True)
    assert log.entries == 2
    recorded = [e for e in log.collect_events() if type(e).__qualname__ == "AccessLog.Recorded"]
    assert [(e.subject, e.roles, e.action, e.purpose) for e in recorded] == [  # type: ignore[attr-defined]
        ("staff:s1", ["recorder"], "recorded activity trip", ""),
        ("staff:s2", ["appeals_officer"], "read history", "appeal A-1"),
    ]


def test_an_officers_request_needs_a_published_basis_and_a_plain_reference() -> None:
    wallet = uuid4()
    with pytest.raises(InvalidInput) as err:
        ErasureRequest.by_officer("vienna", wallet, "because I said so", "DSR-1", "staff:a")
    assert err.value.field == "legal_basis"
    for reference in ("", "Anna Muster, Hauptstr. 5\n", "x" * 101):
        with pytest.raises(InvalidInput) as err:
            ErasureRequest.by_officer("vienna", wallet, LEGAL_BASES[0], reference, "staff:a")
        assert err.value.field == "reference"
    with pytest.raises(InvalidInput):
        ErasureRequest.by_officer("vienna", wallet, LEGAL_BASES[0], "DSR-1", "holder:someone")


def test_four_eyes_by_subject_and_withdrawal_by_the_requester_only() -> None:
    request = ErasureRequest.by_officer("vienna", uuid4(), LEGAL_BASES[1], "DSR-2", "staff:a")
    with pytest.raises(SelfErasureApproval):
        request.approve("staff:a", T0)
    with pytest.raises(InvalidInput):
        request.approve("holder:x", T0)
    with pytest.raises(ErasureNotPending):
        request.withdraw("staff:b", "not mine to withdraw")
    assert request.status == "requested"
    request.approve("staff:b", T0)
    assert (request.status, request.approved_by) == ("erased", "staff:b")
    for act in (lambda: request.approve("staff:c", T0), lambda: request.withdraw("staff:a", "late")):
        with pytest.raises(ErasureNotPending):
            act()

    withdrawn = ErasureRequest.by_officer("vienna", uuid4(), LEGAL_BASES[0], "DSR-3", "staff:a")
    withdrawn.withdraw("staff:a", "filed for the wrong person")
    assert (withdrawn.status, withdrawn.withdrawn_by) == ("withdrawn", "staff:a")
    with pytest.raises(ErasureNotPending):
        withdrawn.approve("staff:b", T0)


def test_a_holders_own_request_is_granted_at_once() -> None:
    wallet = uuid4()
    request = ErasureRequest.by_holder("vienna", wallet, T0)
    assert (request.status, request.requested_by, request.approved_by) == (
        "erased",
        f"holder:{wallet}",
        f"holder:{wallet}",
    )
