"""Transparency: a holder reads every event about them, with rule, version and explanation;
rulebooks and their full history are public (API and `civfed rules show`)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import grpc
import pytest

from civfed.v1 import rulebook_pb2, wallet_pb2
from services.city import CityApplication, app_name
from services.cli import main
from services.demo.local_federation import CityStubs, LocalFederation
from services.event_log import event_type, read_events
from services.grpc.auth import bearer
from services.history import history
from services.rulebook_history import RulebookReader
from services.settings.cities import PACKAGED_CITIES, load_settings
from tests.e2e.flows import attest, open_wallet
from tests.rights.apps import city_app, opened

TRIP = {"mode": "bike", "distance_m": "225000", "date": "2026-05-03"}


def test_every_award_shows_rule_version_and_plain_explanation(vienna: CityApplication) -> None:
    wallet = opened(vienna)
    vienna.execute(vienna.record_activity("t1", wallet, "trip", {**TRIP, "distance_m": 225_000}))
    vienna.execute(
        vienna.record_activity(
            "t2", wallet, "trip", {"mode": "tram", "distance_m": 50_000, "date": "2026-05-04"}
        )
    )
    entries = history(vienna, wallet)
    assert [e.type for e in entries] == ["Wallet.Opened", "Wallet.Credited", "Wallet.Progressed"]
    credited, progressed = entries[1], entries[2]
    assert (credited.rule_id, credited.rule_version) == ("mobility-co2", 1)
    assert credited.explanation == (
        "225.0 km by bike on 3 May 2026 saved 45.0 kg CO2; 20.0 kg = 1 token; 5.0 kg carried"
    )
    # Even a trip that earned no whole token yet is shown, with what it carried.
    assert (progressed.rule_id, progressed.rule_version) == ("mobility-co2", 1)
    assert progressed.explanation.endswith("13.5 kg carried")


def holder_with_history(v: CityStubs, tag: str) -> tuple[str, Any]:
    opened_ = open_wallet(v, tag)
    attest(v, f"{tag}:t", opened_.wallet_id, "trip", TRIP)
    return opened_.wallet_id, bearer(opened_.holder_token)


def test_holder_lists_own_events_and_appeals_over_grpc(fed: LocalFederation) -> None:
    v = fed.stubs("vienna")
    wallet, holder = holder_with_history(v, "h1")
    filed = v.wallet.FileAppeal(
        wallet_pb2.FileAppealRequest(
            idempotency_key="a1",
            wallet_id=wallet,
            subject_kind="missing_award",
            subject_ref="tram 4 May",
            reason="my tram trip is missing",
        ),
        metadata=holder,
        timeout=5,
    )
    assert filed.status == "open" and filed.deadline > filed.filed_at
    decided = v.wallet.DecideAppeal(
        wallet_pb2.DecideAppealRequest(
            idempotency_key="d1",
            appeal_id=filed.appeal_id,
            upheld=True,
            reason="the trip is in the mobility app's log",
            remedy_activity="trip",
            remedy_fields={"mode": "tram", "distance_m": "50000", "date": "2026-05-04"},
        ),
        metadata=fed.staff("officer-2", "appeals_officer"),
        timeout=5,
    )
    assert (decided.status, decided.awarded.units) == ("upheld", 0)  # 8.5 kg: carried, not yet a token

    # In English on request; by default in Vienna's language (below).
    events = v.wallet.ListMyEvents(
        wallet_pb2.ListMyEventsRequest(wallet_id=wallet, language="en"), metadata=holder, timeout=5
    )
    by_type = {e.type: e for e in events.events}
    assert {"Wallet.Opened", "Wallet.Credited", "Wallet.Progressed", "Appeal.Filed", "Appeal.Decided"} <= set(
        by_type
    )
    credit = by_type["Wallet.Credited"]
    assert (credit.rule_id, credit.rule_version) == ("mobility-co2", 1)
    # The trip came as a source's claim, dated the day it was made.
    day = dt.datetime.now(dt.UTC).date()
    assert credit.explanation.startswith(f"225.0 km by bike on {day.day} {day:%B %Y} saved 45.0 kg CO2")
    credited = json.loads(credit.fields_json)
    assert credited["amount"] == 2
    assert (credited["source"], credited["claim_id"]) == ("source:test-attestor", "h1:t")
    assert by_type["Appeal.Filed"].explanation.endswith("my tram trip is missing")
    assert by_type["Appeal.Decided"].explanation == (
        "appeal upheld by staff:officer-2: the trip is in the mobility app's log"
    )
    assert by_type["Appeal.Filed"].aggregate_id == filed.appeal_id
    german = v.wallet.ListMyEvents(
        wallet_pb2.ListMyEventsRequest(wallet_id=wallet), metadata=holder, timeout=5
    )
    in_german = {e.type: e.explanation for e in german.events}
    assert in_german["Wallet.Credited"].startswith("225,0 km mit dem Fahrrad am ")
    assert in_german["Appeal.Filed"].startswith("Einspruch gegen die fehlende Gutschrift ")
    assert in_german["Appeal.Filed"].endswith(": my tram trip is missing")
    assert in_german["Appeal.Decided"] == (
        "Einspruch stattgegeben von staff:officer-2: the trip is in the mobility app's log"
    )

    appeals = v.wallet.ListMyAppeals(
        wallet_pb2.ListMyAppealsRequest(wallet_id=wallet), metadata=holder, timeout=5
    )
    assert [(a.appeal_id, a.status, a.deadline) for a in appeals.appeals] == [
        (filed.appeal_id, "upheld", filed.deadline)
    ]


def test_citizens_read_only_their_own_history(fed: LocalFederation) -> None:
    v = fed.stubs("vienna")
    mine, _ = holder_with_history(v, "own1")
    _, other = holder_with_history(v, "own2")
    for call, req in (
        (v.wallet.ListMyEvents, wallet_pb2.ListMyEventsRequest(wallet_id=mine)),
        (v.wallet.ListMyAppeals, wallet_pb2.ListMyAppealsRequest(wallet_id=mine)),
    ):
        with pytest.raises(grpc.RpcError) as err:
            call(req, metadata=other, timeout=5)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_rulebook_is_public_over_grpc_without_credentials(fed: LocalFederation) -> None:
    v = fed.stubs("vienna")
    book = v.rulebook.GetRulebook(rulebook_pb2.GetRulebookRequest(), timeout=5)  # no bearer token
    assert book.city == "vienna"
    assert [(r.rule_id, r.version, r.active) for r in book.rules] == [("mobility-co2", 1, True)]
    assert json.loads(book.rules[0].params_json)["unit_grams"] == 20000
    first = book.history[0]
    assert (first.rule_id, first.version, first.action, first.by) == (
        "mobility-co2",
        1,
        "published",
        "Vienna mobility office",
    )
    assert "20 kg of CO2" in first.why and first.at


def changed_cities(tmp_path: Path) -> Path:
    cities = tmp_path / "cities"
    shutil.copytree(PACKAGED_CITIES, cities)
    return cities


def test_rules_show_prints_the_full_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cities = changed_cities(tmp_path)
    monkeypatch.setenv("CIVFED_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CIVFED_CITIES_DIR", str(cities))
    city_app("vienna", tmp_path / "data", {"CIVFED_CITIES_DIR": str(cities)}).close()
    rulebook = cities / "vienna" / "rulebook.toml"
    text = rulebook.read_text().replace("unit_grams = 20000", "unit_grams = 15000")
    text = text.replace('published_by = "Vienna mobility office"', 'published_by = "Vienna city council"')
    text = text.replace("every 20 kg of CO2", "council vote 2026-14: every 15 kg of CO2")
    rulebook.write_text(text)

    def stored_events() -> list[tuple[str, int]]:
        reader = RulebookReader(app_name("vienna"), load_settings({}).eventsourcing_env("vienna"))
        try:
            return [(event_type(e), e.originator_version) for _, e in read_events(reader)]
        finally:
            reader.close()

    before = stored_events()
    # Showing the rules on an edited file reads only: nothing is proposed or published.
    assert main(["rules", "show", "vienna"]) == 0
    out = capsys.readouterr().out
    assert "mobility-co2 v1 published by Vienna mobility office (founding version)" in out
    assert "v2" not in out and '"unit_grams": 15000' not in out
    assert stored_events() == before

    # The node starting on the edited file proposes the change; a council approver
    # (another person) approves it; then the history shows both, with the decision.
    app = city_app("vienna", tmp_path / "data", {"CIVFED_CITIES_DIR": str(cities)})
    (proposal,) = app.rule_proposals("proposed")
    app.execute(app.approve_rule_change("ok", proposal["proposal_id"], "Gemeinderat 2026-14", "staff:gr-1"))
    app.close()
    assert main(["rules", "show", "vienna"]) == 0
    out = capsys.readouterr().out
    assert "mobility-co2 v1 published by Vienna mobility office (founding version)" in out
    assert "mobility-co2 v2 changed by operator:rulebook-file" in out
    assert "approved by staff:gr-1, decision Gemeinderat 2026-14" in out
    assert "why: Wienertoken pilot: council vote 2026-14: every 15 kg of CO2" in out
    assert '"unit_grams": 15000' in out and '"unit_grams": 20000' in out


def test_appeal_decisions_over_grpc_keep_four_eyes_by_authenticated_subject(fed: LocalFederation) -> None:
    v = fed.stubs("vienna")
    wallet, holder = holder_with_history(v, "fe1")
    # One person, Jan, holds both desk roles and appears under two display names.
    jan_at_desk = bearer(fed.idp.token("jan-7", ["recorder"], name="Jan"))
    jan_deciding = bearer(fed.idp.token("jan-7", ["appeals_officer"], name="J. de Vries"))
    filed = v.wallet.FileAppeal(
        wallet_pb2.FileAppealRequest(
            idempotency_key="fe:a",
            wallet_id=wallet,
            subject_kind="award",
            subject_ref="trip 3 May",
            reason="filed at the service desk on the holder's behalf",
        ),
        metadata=jan_at_desk,
        timeout=5,
    )
    decide = wallet_pb2.DecideAppealRequest(
        idempotency_key="fe:d", appeal_id=filed.appeal_id, upheld=False, reason="award was right"
    )
    with pytest.raises(grpc.RpcError) as err:
        v.wallet.DecideAppeal(decide, metadata=jan_deciding, timeout=5)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "another person" in err.value.details()
    # Neither the holder nor a recorder may decide at all.
    for who in (holder, jan_at_desk):
        with pytest.raises(grpc.RpcError) as err:
            v.wallet.DecideAppeal(decide, metadata=who, timeout=5)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    officer = bearer(fed.idp.token("piet-3", ["appeals_officer"], name="Jan"))
    no_reason = wallet_pb2.DecideAppealRequest(
        idempotency_key="fe:d2", appeal_id=filed.appeal_id, upheld=False, reason=""
    )
    with pytest.raises(grpc.RpcError) as err:
        v.wallet.DecideAppeal(no_reason, metadata=officer, timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and err.value.details().startswith("reason")
    my_appeals = wallet_pb2.ListMyAppealsRequest(wallet_id=wallet)
    assert [a.status for a in v.wallet.ListMyAppeals(my_appeals, metadata=holder, timeout=5).appeals] == [
        "open"
    ]
    # A second, authenticated person decides; the decision names their subject, not a typed name.
    decided = v.wallet.DecideAppeal(
        wallet_pb2.DecideAppealRequest(
            idempotency_key="fe:d3", appeal_id=filed.appeal_id, upheld=False, reason="award was right"
        ),
        metadata=officer,
        timeout=5,
    )
    assert decided.status == "denied"
    events = v.wallet.ListMyEvents(
        wallet_pb2.ListMyEventsRequest(wallet_id=wallet), metadata=holder, timeout=5
    )
    fields = {e.type: json.loads(e.fields_json) for e in events.events}
    assert fields["Appeal.Filed"]["filed_by"] == "staff:jan-7"
    assert fields["Appeal.Decided"]["decided_by"] == "staff:piet-3"
