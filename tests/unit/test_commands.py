"""Commands are data: the fingerprint is every field, under the names stored receipts use.

Receipts stored before commands became dataclasses hold the hash of a parameter dict
written out by hand in each builder. Those dicts are copied below as they were: a
command with the same fields fingerprints to the same hash, so a key retried across
the upgrade replays its stored result instead of meeting a conflict.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
from typing import Any, get_type_hints
from uuid import uuid4

import pytest

from aggregates.receipt import params_hash
from services import commands as c
from services.unit_of_work import Job, UnitOfWork

W, SHOP, PRIZE, VOUCHER, APPEAL, TASK, LOG, CRED, ERASURE = (uuid4() for _ in range(9))
W, SHOP, PRIZE, VOUCHER, APPEAL, TASK, LOG, CRED, REDEMPTION = (uuid4() for _ in range(9))
T0 = dt.datetime(2026, 5, 4, 8, 0, tzinfo=dt.UTC)
FIELDS = {"mode": "bike", "distance_m": 1000, "date": "2026-05-04"}
REMEDY = {"activity": "trip", "fields": FIELDS}

# (command, the params dict its builder wrote out before this change)
BEFORE: list[tuple[c.Command, dict[str, Any]]] = [
    (c.OpenWallet("k", "tourist", "v1", T0), {"kind": "tourist", "consent": "v1", "until": T0}),
    (
        c.RecordActivity("k", W, "trip", FIELDS, "a1"),
        {"wallet": W, "activity": "trip", "fields": FIELDS, "id": "a1"},
    ),
    (
        c.RegisterMerchant("k", "Bar", "cafe", True, False),
        {"name": "Bar", "category": "cafe", "local": True, "basic": False},
    ),
    (c.Spend("k", W, SHOP, 3, "r1"), {"wallet": W, "merchant": SHOP, "amount": 3, "ref": "r1"}),
    (c.OfferPrize("k", SHOP, "Bread", 2, 5), {"merchant": SHOP, "name": "Bread", "cost": 2, "stock": 5}),
    (c.ClaimPrize("k", W, PRIZE), {"wallet": W, "prize": PRIZE}),
    (c.IssueVoucher("k", W, 2), {"wallet": W, "amount": 2}),
    (c.RedeemVoucher("k", VOUCHER, SHOP), {"voucher": VOUCHER, "merchant": SHOP}),
    (c.CloseWallet("k", W), {"wallet": W, "reason": "opted out"}),
    (c.FinishClosing("k", W), {"wallet": W}),
    (c.EraseWallet("k", W, "asked"), {"wallet": W, "reason": "asked"}),
    (
        c.FileAppeal("k", W, "award", "t1", "why", "holder"),
        {"wallet": W, "kind": "award", "ref": "t1", "reason": "why", "by": "holder"},
    ),
    (
        c.DecideAppeal("k", APPEAL, True, "ok", "officer", REMEDY),
        {"appeal": APPEAL, "upheld": True, "reason": "ok", "by": "officer", "remedy": REMEDY},
    ),
    (
        c.PublishCategory("k", "food-bank", "Food bank", "food", "d1"),
        {"code": "food-bank", "title": "Food bank", "sector": "food", "decision": "d1"},
    ),
    (c.RetireCategory("k", "food-bank", "d2"), {"code": "food-bank", "decision": "d2"}),
    (
        c.PostTask("k", "food-bank", "Hall", T0, T0 + dt.timedelta(hours=2), 3, "coord"),
        {
            "category": "food-bank",
            "place": "Hall",
            "from": T0,
            "to": T0 + dt.timedelta(hours=2),
            "slots": 3,
            "by": "coord",
        },
    ),
    (
        c.CloseTask("k", TASK, "enough hands", "staff:anna"),
        {"task": TASK, "reason": "enough hands", "by": "staff:anna"},
    ),
    (c.ClaimTask("k", TASK, W), {"task": TASK, "wallet": W}),
    (c.LogMinutes("k", TASK, W, 90), {"task": TASK, "wallet": W, "minutes": 90, "by": None}),
    (c.ApproveLog("k", LOG, "coord"), {"log": LOG, "approver": "coord"}),
    (c.RejectLog("k", LOG, "coord", "closed"), {"log": LOG, "approver": "coord", "reason": "closed"}),
    (c.PayTax("k", W, 100, "OZB-1"), {"wallet": W, "amount": 100, "assessment": "OZB-1"}),
    # Cross-city redemption, whose builders wrote their dicts out by hand until later;
    # "at" only when a voucher names the partner it is meant for.
    (c.IssueRedemptionVoucher("k", W, 2, "rome"), {"wallet": W, "amount": 2, "at": "rome"}),
    (c.IssueRedemptionVoucher("k", W, 2), {"wallet": W, "amount": 2}),
    (c.ReserveRedemption("k", "rome", VOUCHER), {"acceptor": "rome", "voucher": VOUCHER}),
    (c.CommitRedemption("k", "rome", REDEMPTION), {"acceptor": "rome", "redemption": REDEMPTION}),
    (c.ExpireRedemption("k", REDEMPTION), {"redemption": REDEMPTION}),
    (c.AcceptForeignVoucher("k", SHOP, "tok.sig"), {"merchant": SHOP, "token": "tok.sig"}),
    # Commands new since then: their fields under their own names. A cancel's reason
    # was not bound to its key before; it is now, like every field.
    (
        c.CancelRedemption("k", "rome", REDEMPTION, "shop closed"),
        {"acceptor": "rome", "redemption": REDEMPTION, "reason": "shop closed"},
    ),
    (
        c.IssueCredential("k", "holder", W, CRED, "ab12", "phone", 365, "staff:s1"),
        {
            "owner_kind": "holder",
            "owner_id": W,
            "credential_id": CRED,
            "secret_hash": "ab12",
            "label": "phone",
            "valid_days": 365,
            "issued_by": "staff:s1",
            "first_only": False,
        },
    ),
    (
        c.RevokeCredential("k", "holder", W, CRED, "holder:w", "lost"),
        {
            "owner_kind": "holder",
            "owner_id": W,
            "credential_id": CRED,
            "revoked_by": "holder:w",
            "reason": "lost",
        },
    ),
    (
        c.RecordDeskActivity("k", W, "bike_engraving", {"frame": "F1"}, None, "staff:s1"),
        {
            "wallet": W,
            "activity": "bike_engraving",
            "fields": {"frame": "F1"},
            "activity_id": None,
            "recorded_by": "staff:s1",
        },
    ),
    (
        c.RegisterSource("k", "wien-mobility", "Mobility", "k1", "PEM", ["trip"], [], "staff:s1", "why"),
        {
            "source_id": "wien-mobility",
            "source_name": "Mobility",
            "key_id": "k1",
            "public_key": "PEM",
            "kinds": ["trip"],
            "bounds": [],
            "registered_by": "staff:s1",
            "reason": "why",
        },
    ),
    (
        c.RotateSourceKey("k", "wien-mobility", "k2", "PEM", "staff:s1", "yearly"),
        {
            "source_id": "wien-mobility",
            "key_id": "k2",
            "public_key": "PEM",
            "rotated_by": "staff:s1",
            "reason": "yearly",
        },
    ),
    (
        c.RetireSource("k", "wien-mobility", "staff:s1", "contract ended"),
        {"source_id": "wien-mobility", "retired_by": "staff:s1", "reason": "contract ended"},
    ),
    (
        c.SubmitClaim("k", "wien-mobility", "c1", W, "trip", {"mode": "bike"}, "2026-05-04"),
        {
            "source_id": "wien-mobility",
            "claim_id": "c1",
            "wallet": W,
            "activity": "trip",
            "fields": {"mode": "bike"},
            "date": "2026-05-04",
        },
    ),
    (
        c.ProposeRuleChange(
            "k", "eco", "change", "", "", {"points": {"a": 1}}, {}, "why", dt.date(2026, 5, 9), "staff:s1"
        ),
        {
            "rule_id": "eco",
            "action": "change",
            "kind": "",
            "activity": "",
            "params": {"points": {"a": 1}},
            "conditions": {},
            "reason": "why",
            "effective_from": dt.date(2026, 5, 9),
            "proposed_by": "staff:s1",
        },
    ),
    (
        c.ApproveRuleChange("k", "p1", "Delibera 1", "staff:s2"),
        {"proposal_id": "p1", "decision_ref": "Delibera 1", "approved_by": "staff:s2"},
    ),
    (
        c.RejectRuleChange("k", "p1", "no", "staff:s2"),
        {"proposal_id": "p1", "reason": "no", "rejected_by": "staff:s2"},
    ),
    (
        c.RecordAccess("k", W, "staff:s1", ("recorder",), "read balance", "desk enquiry", True),
        {
            "wallet": W,
            "subject": "staff:s1",
            "roles": ("recorder",),
            "action": "read balance",
            "purpose": "desk enquiry",
            "read": True,
        },
    ),
    (c.EraseOwnWallet("k", W), {"wallet": W}),
    (
        c.RequestErasure("k", W, "art17_1a_no_longer_necessary", "DSR-1", "staff:s1", ("erasure_officer",)),
        {
            "wallet": W,
            "legal_basis": "art17_1a_no_longer_necessary",
            "reference": "DSR-1",
            "requested_by": "staff:s1",
            "roles": ("erasure_officer",),
        },
    ),
    (
        c.ApproveErasure("k", ERASURE, "staff:s2", ("erasure_officer",)),
        {"request_id": ERASURE, "approved_by": "staff:s2", "roles": ("erasure_officer",)},
    ),
    (
        c.WithdrawErasure("k", ERASURE, "staff:s1", ("erasure_officer",), "duplicate"),
        {
            "request_id": ERASURE,
            "withdrawn_by": "staff:s1",
            "roles": ("erasure_officer",),
            "reason": "duplicate",
        },
    ),
    # Partner prizes on a node, and a tourist wallet's expiry.
    (
        c.UpdatePrize("k", SHOP, PRIZE, "Bread", 2, 5),
        {"merchant_id": SHOP, "prize_id": PRIZE, "prize_name": "Bread", "cost": 2, "stock": 5},
    ),
    (c.WithdrawPrize("k", SHOP, PRIZE), {"merchant_id": SHOP, "prize_id": PRIZE}),
    (c.PlacePrizeClaim("k", W, PRIZE), {"wallet": W, "prize_id": PRIZE}),
    (c.ConfirmPrizeHandover("k", SHOP, VOUCHER), {"merchant_id": SHOP, "claim_id": VOUCHER}),
    (
        c.CancelPrizeClaim("k", SHOP, VOUCHER, "closed"),
        {"merchant_id": SHOP, "claim_id": VOUCHER, "reason": "closed"},
    ),
    (c.ExpirePrizeClaim("k", VOUCHER), {"claim_id": VOUCHER}),
    (c.ExpireWallet("k", W), {"wallet": W}),
    # Fields made per attempt (a new credential's id and hash, the credential presented) are
    # not fingerprinted: a retry replays the first attempt.
    (
        c.RotateCredential("k", W, "phone", 30, False, CRED, "secret", uuid4(), "h"),
        {"wallet": W, "label": "phone", "valid_days": 30, "keep_current": False},
    ),
    (
        c.RequestRecovery("k", W, "lost phone", "staff:eva", uuid4()),
        {"wallet": W, "reason": "lost phone", "requested_by": "staff:eva"},
    ),
    (
        c.ApproveRecovery("k", W, APPEAL, "staff:jan", 30, uuid4(), "h"),
        {"wallet": W, "recovery_id": APPEAL, "approved_by": "staff:jan", "valid_days": 30},
    ),
    (
        c.IssueTillCredential("k", SHOP, "till 2", 30, "staff:mia", uuid4(), "h"),
        {"merchant_id": SHOP, "label": "till 2", "valid_days": 30, "issued_by": "staff:mia"},
    ),
    (
        c.ReportPurchase("k", SHOP, "R-0001", W, 5_000, "2026-05-04"),
        {
            "merchant_id": SHOP,
            "receipt_id": "R-0001",
            "wallet": W,
            "amount_cents": 5_000,
            "date": "2026-05-04",
        },
    ),
    (
        c.SetBankAccount("k", SHOP, "BE71096123456769", "", "Bakkerij Jan", True, "staff:mia"),
        {
            "merchant_id": SHOP,
            "iban": "BE71096123456769",
            "bic": "",
            "account_holder": "Bakkerij Jan",
            "sole_trader": True,
            "changed_by": "staff:mia",
        },
    ),
    (
        c.ProposePayoutRun("k", "2026-W22", "staff:ann"),
        {"period": "2026-W22", "proposed_by": "staff:ann"},
    ),
    (c.RunPayouts("k", "2026-W22", "staff:fin"), {"period": "2026-W22", "run_by": "staff:fin"}),
    # Funds and budgets: a top-up is proposed by one person and approved by another.
    (
        c.ProposeFundTopUp("k", "eu_grant", 50_000, "second tranche", "staff:s1"),
        {"fund_id": "eu_grant", "amount": 50_000, "reason": "second tranche", "proposed_by": "staff:s1"},
    ),
    (
        c.ApproveFundTopUp("k", "eu_grant", "p1", "Delibera 7", "staff:s2"),
        {"fund_id": "eu_grant", "proposal_id": "p1", "decision_ref": "Delibera 7", "approved_by": "staff:s2"},
    ),
]


def command_classes() -> set[type[c.Command]]:
    return {
        cls
        for _, cls in inspect.getmembers(c, inspect.isclass)
        if issubclass(cls, c.Command) and cls is not c.Command
    }


def test_every_command_is_here() -> None:
    assert {type(cmd) for cmd, _ in BEFORE} == command_classes()


@pytest.mark.parametrize(("cmd", "before"), BEFORE, ids=lambda v: getattr(v, "name", ""))
def test_receipts_stored_before_commands_were_data_still_match(
    cmd: c.Command, before: dict[str, Any]
) -> None:
    assert cmd.parameters() == before
    assert cmd.fingerprint() == params_hash(cmd.name, before)
    # The executor takes its fingerprint from the command, not from a dict beside it.
    job = Job.of(cmd, lambda command, uow: {})
    assert (job.name, job.key, job.fingerprint) == (cmd.name, "k", cmd.fingerprint())
    assert job.owner == (W if "wallet" in before else None)


@pytest.mark.parametrize("cls", sorted(command_classes(), key=lambda cls: cls.name), ids=lambda c: c.name)
def test_every_field_but_the_key_is_fingerprinted_under_a_name_of_its_own(cls: type[c.Command]) -> None:
    cmd = next(cmd for cmd, _ in BEFORE if type(cmd) is cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    assert fields[0] == "idempotency_key"
    hints = get_type_hints(cls, include_extras=True)
    per_attempt = [
        f for f in fields if any(isinstance(m, c.Attempt) for m in getattr(hints[f], "__metadata__", ()))
    ]
    # No field left out but those made per attempt, and no two under one name.
    assert len(cmd.parameters()) == len(fields) - 1 - len(per_attempt)
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_the_key_is_not_part_of_the_fingerprint_and_a_handler_sees_only_its_command() -> None:
    a, b = c.Spend("k1", W, SHOP, 3, "r1"), c.Spend("k2", W, SHOP, 3, "r1")
    assert a.fingerprint() == b.fingerprint()
    seen: list[c.Spend] = []

    def handle(cmd: c.Spend, uow: UnitOfWork) -> dict[str, Any]:
        seen.append(cmd)
        return {}

    Job.of(a, handle).handler(UnitOfWork(object()))  # type: ignore[arg-type]
    assert seen == [a]
