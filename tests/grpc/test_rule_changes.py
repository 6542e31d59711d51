"""Caps, campaign dates and two-person rule changes, over real gRPC against a Bologna node
started in this process (mutual TLS on loopback; staff tokens from the test identity
provider). The node runs on a scenario clock, so the dates here are the activity's and the
events' own, never the wall clock's."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from civfed.v1 import rulebook_pb2, wallet_pb2
from services.demo.local_federation import CityStubs, LocalFederation
from services.grpc.auth import bearer
from services.settings.cities import load_city
from tests.e2e.cluster import conservation
from tests.rights.apps import edited_cities

CONSENT = load_city("bologna").config.consent_versions[-1]
START = dt.datetime(2026, 5, 4, 9, 0, tzinfo=dt.UTC)
CAPS = "recycling_drop_off = 8\n\n[rules.conditions]\nper_wallet_per_day = 10\nper_wallet_per_month = 30\n"
DATES = 'subject_label = "event"\n'
CAMPAIGN = DATES + "\n[rules.conditions]\nvalid_from = 2026-05-01\nvalid_until = 2026-05-31\n"


class ScenarioClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalFederation, ScenarioClock]]:
    path = Path(tmp_path_factory.mktemp("rules"))
    edited_cities(path, "bologna", "recycling_drop_off = 8\n", CAPS)
    cities = edited_cities(path, "bologna", DATES, CAMPAIGN)
    fed = LocalFederation(path, ["bologna"], extra_env={"CIVFED_CITIES_DIR": str(cities)})
    clock = ScenarioClock()
    running = fed.start_in_process("bologna", clock)
    yield fed, clock
    conservation(running.node.app, "bologna")
    fed.stop_all()


def stubs(node: tuple[LocalFederation, ScenarioClock]) -> CityStubs:
    return node[0].stubs("bologna")


def opened(b: CityStubs, key: str) -> Any:
    return b.wallet.OpenWallet(
        wallet_pb2.OpenWalletRequest(
            idempotency_key=key, participant_kind="resident", consent_version=CONSENT
        ),
        metadata=b.staff,
        timeout=5,
    )


def record(b: CityStubs, key: str, wallet_id: str, activity: str, **fields: str) -> Any:
    req = wallet_pb2.RecordActivityRequest(
        idempotency_key=key, wallet_id=wallet_id, activity=activity, fields=fields, activity_id=key
    )
    return b.wallet.RecordActivity(req, metadata=b.staff, timeout=5)


def balance(b: CityStubs, w: Any) -> int:
    """As the holder sees it."""
    req = wallet_pb2.GetBalanceRequest(wallet_id=w.wallet_id)
    return int(b.wallet.GetBalance(req, metadata=bearer(w.holder_token)).balance.units)


def refused(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value


# -- caps -------------------------------------------------------------------------------------


def test_a_cap_reached_on_one_day_refuses_further_awards_that_day_and_allows_them_the_next(
    node: tuple[LocalFederation, ScenarioClock],
) -> None:
    fed, _ = node
    b = stubs(node)
    w = opened(b, "cap:w")
    assert record(
        b, "cap:1", w.wallet_id, "eco_action", action="recycling_drop_off", date="2026-05-04"
    ).awarded
    # 8 of the 10 a day are earned: another 8 on that day would pass the cap, and is refused.
    err = refused(
        lambda: record(b, "cap:2", w.wallet_id, "eco_action", action="recycling_drop_off", date="2026-05-04")
    )
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "per wallet per day" in (err.details() or "") and "eco-actions" in (err.details() or "")
    # The same request again gets the same refusal, and records nothing more.
    again = refused(
        lambda: record(b, "cap:2", w.wallet_id, "eco_action", action="recycling_drop_off", date="2026-05-04")
    )
    assert again.details() == err.details()
    # A smaller award passes the cap too (8 + 3 > 10): refused whole, never cut down.
    err3 = refused(
        lambda: record(b, "cap:3", w.wallet_id, "eco_action", action="bus_ride", date="2026-05-04")
    )
    assert "this award of 3 would exceed it" in (err3.details() or "")
    # The next day, the same activity earns again.
    nxt = record(b, "cap:4", w.wallet_id, "eco_action", action="recycling_drop_off", date="2026-05-05")
    assert nxt.awarded.units == 8
    assert balance(b, w) == 16

    # The refusals are recorded on the wallet, naming the cap, and the holder sees them.
    holder = bearer(w.holder_token)
    events = b.wallet.ListMyEvents(
        wallet_pb2.ListMyEventsRequest(wallet_id=w.wallet_id), metadata=holder
    ).events
    refusals = [json.loads(e.fields_json) for e in events if e.type == "Wallet.AwardRefused"]
    assert [(r["rule_id"], r["limit"], r["activity_id"], r["on"]) for r in refusals] == [
        ("eco-actions", "per_wallet_per_day", "cap:2", "2026-05-04"),
        ("eco-actions", "per_wallet_per_day", "cap:3", "2026-05-04"),
    ]
    # In Bologna's language, as every explanation the holder reads.
    assert [e.explanation for e in events if e.type == "Wallet.AwardRefused"] == [
        "accredito rifiutato: la regola eco-actions limita gli accrediti a 10 per portafoglio al giorno; "
        f"8 già ottenuti il 4 maggio 2026, questo accredito di {amount} supererebbe il limite"
        for amount in (8, 3)
    ]

    # A refusal is appealed like any other, through FileAppeal, by the holder.
    filed = b.wallet.FileAppeal(
        wallet_pb2.FileAppealRequest(
            idempotency_key="cap:appeal",
            wallet_id=w.wallet_id,
            subject_kind="refused_award",
            subject_ref="cap:2",
            reason="I brought two loads that day, the second for my neighbour",
        ),
        metadata=holder,
    )
    officer = fed.staff("officer-9", "appeals_officer")
    decided = b.wallet.DecideAppeal(
        wallet_pb2.DecideAppealRequest(
            idempotency_key="cap:decide",
            appeal_id=filed.appeal_id,
            upheld=True,
            reason="both loads were weighed at the depot",
            remedy_activity="eco_action",
            remedy_fields={"action": "recycling_drop_off", "date": "2026-05-04"},
        ),
        metadata=officer,
    )
    assert decided.status == "upheld"
    assert balance(b, w) == 24

    # Only a refusal the wallet actually has can be appealed as one.
    ghost = refused(
        lambda: b.wallet.FileAppeal(
            wallet_pb2.FileAppealRequest(
                idempotency_key="cap:ghost",
                wallet_id=w.wallet_id,
                subject_kind="refused_award",
                subject_ref="cap:1",
                reason="not refused at all",
            ),
            metadata=holder,
        )
    )
    assert ghost.code() == grpc.StatusCode.NOT_FOUND


def test_a_monthly_cap_counts_the_activity_month(node: tuple[LocalFederation, ScenarioClock]) -> None:
    b = stubs(node)
    w = opened(b, "month:w")
    for day in (4, 5, 6):
        assert record(
            b, f"m:{day}", w.wallet_id, "eco_action", action="recycling_drop_off", date=f"2026-05-0{day}"
        )
    # 24 earned in May; 8 more would pass 30.
    err = refused(
        lambda: record(b, "m:7", w.wallet_id, "eco_action", action="recycling_drop_off", date="2026-05-07")
    )
    assert "per wallet per month" in (err.details() or "")
    # April is another month (the activity's date decides, not the day it is recorded).
    assert (
        record(
            b, "m:apr", w.wallet_id, "eco_action", action="recycling_drop_off", date="2026-04-30"
        ).awarded.units
        == 8
    )


# -- campaign dates ----------------------------------------------------------------------------


def test_a_rule_outside_its_dates_awards_nothing(node: tuple[LocalFederation, ScenarioClock]) -> None:
    b = stubs(node)
    w = opened(b, "dates:w")
    for key, date, named in (
        ("d:late", "2026-06-01", "valid until 2026-05-31"),
        ("d:early", "2026-04-30", "valid from 2026-05-01"),
    ):
        err = refused(
            lambda key=key, date=date: record(
                b, key, w.wallet_id, "civic_event", subject="pulizia-9", date=date
            )
        )
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert named in (err.details() or "")
    assert balance(b, w) == 0
    # Inside the dates the same event earns.
    assert (
        record(b, "d:in", w.wallet_id, "civic_event", subject="pulizia-9", date="2026-05-31").awarded.units
        == 25
    )


# -- two people for a rule change ----------------------------------------------------------------


def propose(b: CityStubs, metadata: Any, key: str, points: dict[str, int], effective_from: str = "") -> Any:
    return b.rulebook.ProposeRuleChange(
        rulebook_pb2.ProposeRuleChangeRequest(
            idempotency_key=key,
            rule_id="eco-actions",
            action="change",
            params_json=json.dumps({"points": points}),
            conditions_json=json.dumps({"per_wallet_per_day": 10, "per_wallet_per_month": 30}),
            reason="more points for the bus while the tram line is closed",
            effective_from=effective_from,
        ),
        metadata=metadata,
    )


POINTS = {"bike_to_work": 6, "bus_ride": 5, "recycling_drop_off": 8}


def test_a_rule_change_approved_by_its_proposer_is_refused(
    node: tuple[LocalFederation, ScenarioClock],
) -> None:
    fed, _ = node
    b = stubs(node)
    # One person holding both roles, under two display names: still one person.
    as_publisher = bearer(fed.idp.token("giulia-3", ["rule_publisher", "council_approver"], name="Giulia"))
    as_council = bearer(fed.idp.token("giulia-3", ["council_approver"], name="G. Rossi"))
    p = propose(b, as_publisher, "self:p", POINTS)
    assert (p.status, p.proposed_by) == ("proposed", "staff:giulia-3")
    for i, who in enumerate((as_publisher, as_council)):
        err = refused(
            lambda i=i, who=who: b.rulebook.ApproveRuleChange(
                rulebook_pb2.ApproveRuleChangeRequest(
                    idempotency_key=f"self:a{i}", proposal_id=p.proposal_id, decision_ref="Delibera 1"
                ),
                metadata=who,
            )
        )
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "four eyes" in (err.details() or "")
    # A rule publisher without the council role may not approve at all.
    err = refused(
        lambda: b.rulebook.ApproveRuleChange(
            rulebook_pb2.ApproveRuleChangeRequest(
                idempotency_key="self:x", proposal_id=p.proposal_id, decision_ref="D"
            ),
            metadata=fed.staff("marco-1", "rule_publisher"),
        )
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    # The proposal is still open, and nothing changed.
    rule = next(
        r
        for r in b.rulebook.GetRulebook(rulebook_pb2.GetRulebookRequest()).rules
        if r.rule_id == "eco-actions"
    )
    assert rule.version == 1
    b.rulebook.RejectRuleChange(
        rulebook_pb2.RejectRuleChangeRequest(
            idempotency_key="self:r", proposal_id=p.proposal_id, reason="proposed by the approver"
        ),
        metadata=fed.staff("council-2", "council_approver"),
    )


def test_a_rule_change_approved_by_a_second_person_takes_effect_on_its_date(
    node: tuple[LocalFederation, ScenarioClock],
) -> None:
    fed, clock = node
    b = stubs(node)
    publisher = fed.staff("marco-1", "rule_publisher")
    council = fed.staff("council-7", "council_approver")
    effective = (clock.now + dt.timedelta(days=3)).date().isoformat()
    p = propose(b, publisher, "two:p", POINTS, effective)
    listed = b.rulebook.ListRuleProposals(rulebook_pb2.ListRuleProposalsRequest(status="proposed")).proposals
    assert p.proposal_id in [x.proposal_id for x in listed]  # public from the moment it is proposed
    clock.now = START + dt.timedelta(hours=2)
    ok = b.rulebook.ApproveRuleChange(
        rulebook_pb2.ApproveRuleChangeRequest(
            idempotency_key="two:a", proposal_id=p.proposal_id, decision_ref="Delibera di Giunta 2026/88"
        ),
        metadata=council,
    )
    assert (ok.status, ok.decided_by, ok.effective_from) == ("approved", "staff:council-7", effective)
    # Approving again changes nothing (a decision is made once).
    again = refused(
        lambda: b.rulebook.ApproveRuleChange(
            rulebook_pb2.ApproveRuleChangeRequest(
                idempotency_key="two:b", proposal_id=p.proposal_id, decision_ref="x"
            ),
            metadata=fed.staff("council-8", "council_approver"),
        )
    )
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION

    w = opened(b, "two:w")
    before = record(b, "two:1", w.wallet_id, "eco_action", action="bus_ride", date="2026-05-06")
    on = record(b, "two:2", w.wallet_id, "eco_action", action="bus_ride", date=effective)
    assert (before.awarded.units, before.rule_version) == (3, 1)
    assert (on.awarded.units, on.rule_version) == (5, 2)

    history = b.rulebook.GetRulebook(rulebook_pb2.GetRulebookRequest()).history
    founding = next(h for h in history if h.rule_id == "eco-actions" and h.version == 1)
    change = next(h for h in history if h.rule_id == "eco-actions" and h.version == 2)
    assert founding.founding and founding.by == "Comune di Bologna"
    assert (change.by, change.approved_by, change.decision_ref, change.effective_from) == (
        "staff:marco-1",
        "staff:council-7",
        "Delibera di Giunta 2026/88",
        effective,
    )
    # The times are the node's own (the scenario's), not the wall clock's.
    assert change.proposed_at == START.isoformat()
    assert change.at == (START + dt.timedelta(hours=2)).isoformat()
    assert founding.at.startswith("2026-05-04")


def test_a_proposal_naming_a_proxy_or_an_undeclared_kind_is_refused(
    node: tuple[LocalFederation, ScenarioClock],
) -> None:
    fed, _ = node
    b = stubs(node)
    publisher = fed.staff("marco-1", "rule_publisher")
    err = refused(lambda: propose(b, publisher, "px:1", {**POINTS, "recycling_postcode_40121": 20}))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "eco-actions" in (err.details() or "") and "recycling_postcode_40121" in (err.details() or "")
    err = refused(lambda: propose(b, publisher, "px:2", {**POINTS, "litter_picking": 4}))
    assert "litter_picking" in (err.details() or "") and "vocabulary" in (err.details() or "")
    bad = refused(
        lambda: b.rulebook.ProposeRuleChange(
            rulebook_pb2.ProposeRuleChangeRequest(
                idempotency_key="px:3",
                rule_id="eco-actions",
                action="change",
                params_json="{not json",
                reason="r",
            ),
            metadata=publisher,
        )
    )
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT and "params_json" in (bad.details() or "")
