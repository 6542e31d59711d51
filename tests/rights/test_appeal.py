"""Appeal: any award or missing award can be appealed; another person decides, with a reason."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from aggregates.appeal import Appeal
from aggregates.errors import AppealAlreadyDecided, InvalidInput, SelfDecision
from aggregates.wallet import Wallet
from services.appeals import filer
from services.city import CityApplication
from services.identity.principals import Holder, Staff, Till
from tests.rights.apps import city_app, opened

TRIP = {"mode": "bike", "distance_m": 225_000, "date": "2026-05-03"}


def test_missing_award_upheld_credits_through_the_rule_path(vienna: CityApplication) -> None:
    wallet = opened(vienna)
    filed = vienna.execute(
        vienna.file_appeal(
            "f1", wallet, "missing_award", "trip on 3 May", "my bike trip was not counted", "holder"
        )
    )
    appeal_id = UUID(filed["appeal_id"])
    appeal = vienna.appeal(appeal_id)
    assert (appeal.status, appeal.reason, appeal.filed_by) == (
        "open",
        "my bike trip was not counted",
        "holder",
    )
    days = (appeal.deadline - appeal.created_on).days
    assert days in (29, 30)  # 30 days from filing, on the app's clock

    remedy = {"activity": "trip", "fields": TRIP}
    out = vienna.execute(
        vienna.decide_appeal("d1", appeal_id, True, "app logged the trip late", "officer-7", remedy)
    )
    assert out["status"] == "upheld"
    assert out["remedy"]["amount"] == 2
    assert out["remedy"]["rule_id"] == "mobility-co2"
    assert out["remedy"]["explanation"].startswith("225.0 km by bike on 3 May 2026 saved 45.0 kg CO2")

    assert vienna.wallet(wallet).balance == 2
    credited = [e for e in vienna.events.get(wallet) if type(e).__qualname__ == "Wallet.Credited"]
    assert len(credited) == 1
    assert credited[0].activity_id == f"appeal:{appeal_id}"
    assert (credited[0].rule_id, credited[0].rule_version) == ("mobility-co2", 1)
    decided = vienna.appeal(appeal_id)
    assert (decided.status, decided.decided_by, decided.decision_reason) == (
        "upheld",
        "officer-7",
        "app logged the trip late",
    )
    assert decided.decided_at is not None


def test_decision_and_remedy_are_one_atomic_save(vienna: CityApplication) -> None:
    wallet = opened(vienna)
    appeal_id = UUID(
        vienna.execute(vienna.file_appeal("f", wallet, "award", "a1", "too little", "holder"))["appeal_id"]
    )
    before = vienna.recorder.max_notification_id()
    vienna.execute(
        vienna.decide_appeal("d", appeal_id, True, "recount", "officer", {"activity": "trip", "fields": TRIP})
    )
    stored = vienna.notification_log.select(before + 1, 10)
    types = sorted(n.topic.split(":")[-1] for n in stored)
    # Appeal decided, wallet credited, the draw on the rule's fund and the receipt: four
    # events, one transaction.
    assert types == ["Appeal.Decided", "Fund.Drawn", "Receipt.Recorded", "Wallet.Credited"]


def test_same_person_cannot_file_and_decide(vienna: CityApplication) -> None:
    wallet = opened(vienna)
    appeal_id = UUID(
        vienna.execute(vienna.file_appeal("f", wallet, "award", "a1", "too little", "clerk-1"))["appeal_id"]
    )
    with pytest.raises(SelfDecision):
        vienna.execute(vienna.decide_appeal("d", appeal_id, False, "award was right", "clerk-1"))
    assert vienna.appeal(appeal_id).status == "open"


def test_the_filer_is_the_authenticated_holder_or_staff_member(vienna: CityApplication) -> None:
    wallet = opened(vienna)
    # A holder is recorded as the wallet's holder; a staff member by their token's subject.
    assert filer(Holder(wallet), wallet) == f"holder:{wallet}"
    clerk = Staff("clerk-1", frozenset({"recorder"}), name="Jan")
    assert filer(clerk, wallet) == "staff:clerk-1"
    with pytest.raises(ValueError):
        filer(Till(uuid4()), wallet)
    # The clerk who filed for the holder may not decide it, whatever name they go by; another may.
    appeal_id = UUID(
        vienna.execute(vienna.file_appeal("f", wallet, "award", "a1", "too little", filer(clerk, wallet)))[
            "appeal_id"
        ]
    )
    same_person = Staff("clerk-1", frozenset({"appeals_officer"}), name="jan")
    with pytest.raises(SelfDecision):
        vienna.execute(vienna.decide_appeal("d", appeal_id, False, "award was right", same_person.ref))
    other = Staff("clerk-2", frozenset({"appeals_officer"}), name="Jan")
    vienna.execute(vienna.decide_appeal("d2", appeal_id, False, "award was right", other.ref))
    assert vienna.appeal(appeal_id).status == "denied"


def test_reason_required_to_file_and_to_decide(vienna: CityApplication) -> None:
    wallet = opened(vienna)
    with pytest.raises(InvalidInput) as err:
        vienna.execute(vienna.file_appeal("f0", wallet, "award", "a1", "  ", "holder"))
    assert err.value.field == "reason"
    appeal_id = UUID(
        vienna.execute(vienna.file_appeal("f", wallet, "award", "a1", "wrong", "holder"))["appeal_id"]
    )
    with pytest.raises(InvalidInput) as err:
        vienna.execute(vienna.decide_appeal("d", appeal_id, False, "", "officer"))
    assert err.value.field == "reason"
    assert vienna.appeal(appeal_id).status == "open"


def test_unknown_subject_kind_is_refused_naming_the_field(vienna: CityApplication) -> None:
    wallet = opened(vienna)
    with pytest.raises(InvalidInput) as err:
        vienna.execute(vienna.file_appeal("f", wallet, "behaviour_score", "x", "why", "holder"))
    assert err.value.field == "subject_kind"


def test_denied_appeal_records_the_reason_and_changes_no_balance(vienna: CityApplication) -> None:
    wallet = opened(vienna)
    appeal_id = UUID(
        vienna.execute(vienna.file_appeal("f", wallet, "award", "a1", "wrong", "holder"))["appeal_id"]
    )
    out = vienna.execute(vienna.decide_appeal("d", appeal_id, False, "trip was by car", "officer"))
    assert out == {"appeal_id": str(appeal_id), "status": "denied"}
    assert vienna.wallet(wallet).balance == 0
    assert vienna.appeal(appeal_id).decision_reason == "trip was by car"
    with pytest.raises(AppealAlreadyDecided):
        vienna.execute(vienna.decide_appeal("d2", appeal_id, True, "second thoughts", "officer-2"))


def test_upheld_without_a_remedy_spec_changes_nothing(vienna: CityApplication) -> None:
    wallet = opened(vienna)
    appeal_id = UUID(
        vienna.execute(vienna.file_appeal("f", wallet, "award", "a1", "wrong", "holder"))["appeal_id"]
    )
    with pytest.raises(InvalidInput) as err:
        vienna.execute(vienna.decide_appeal("d", appeal_id, True, "agreed", "officer"))
    assert err.value.field == "remedy.activity"
    assert vienna.appeal(appeal_id).status == "open"
    assert vienna.wallet(wallet).balance == 0


def test_holder_sees_status_and_deadline_of_each_appeal(vienna: CityApplication) -> None:
    wallet = opened(vienna)
    first = vienna.execute(vienna.file_appeal("f1", wallet, "award", "a1", "wrong", "holder"))
    vienna.execute(vienna.file_appeal("f2", wallet, "missing_award", "a2", "missing", "holder"))
    vienna.execute(vienna.decide_appeal("d1", UUID(first["appeal_id"]), False, "correct award", "officer"))
    seen = [(a.subject_ref, a.status) for a in vienna.appeals_of(wallet)]
    assert seen == [("a1", "denied"), ("a2", "open")]
    assert all(isinstance(a.deadline, dt.datetime) for a in vienna.appeals_of(wallet))
    assert vienna.wallet(wallet).appeals == [a.id for a in vienna.appeals_of(wallet)]


def test_remedies_are_registered_per_subject_kind(vienna: CityApplication) -> None:
    wallet = opened(vienna)
    seen: list[tuple[str, dict[str, object]]] = []

    def work_log_remedy(uow: object, appeal: Appeal, spec: dict[str, object]) -> dict[str, object]:
        seen.append((appeal.subject_ref, spec))
        return {"approved": spec["log"]}

    vienna.appeal_remedies["work_log"] = work_log_remedy  # type: ignore[assignment]
    appeal_id = UUID(
        vienna.execute(vienna.file_appeal("f", wallet, "work_log", "log-9", "hours", "holder"))["appeal_id"]
    )
    out = vienna.execute(
        vienna.decide_appeal("d", appeal_id, True, "hours were right", "officer", {"log": "log-9"})
    )
    assert out["remedy"] == {"approved": "log-9"}
    assert seen == [("log-9", {"log": "log-9"})]


def test_appeal_on_a_closed_wallet_is_refused(vienna: CityApplication) -> None:
    wallet = opened(vienna)
    vienna.execute(vienna.close_wallet("c", wallet))
    with pytest.raises(Exception) as err:
        vienna.execute(vienna.file_appeal("f", wallet, "award", "a1", "wrong", "holder"))
    assert type(err.value).__name__ == "WalletClosed"
    assert vienna.wallet(wallet).appeals == []
    assert isinstance(vienna.wallet(wallet), Wallet)


def test_dashboard_shows_appeal_counts_and_mean_wait_for_closed_weeks_only(tmp_path: Path) -> None:
    from projections.dashboard_view import city_dashboard
    from projections.log_source import catch_up_log
    from projections.projector import Projector
    from projections.store import Store
    from services.demo.clock import scenario_time
    from services.settings.disclosure import disclosure_policies

    policy = disclosure_policies()["vienna"]
    app = city_app("vienna", tmp_path)
    start = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)  # a Friday: filed in the week of 27 April
    now = [start]
    wallets = [opened(app, f"w{i}") for i in range(12)]
    with scenario_time(lambda: now[0]):
        ids = [
            UUID(app.execute(app.file_appeal(f"f{i}", w, "award", "a", "wrong", "holder"))["appeal_id"])
            for i, w in enumerate(wallets)
        ]
        # Nine decisions in the week of 4 May, after 3 days and 1..9 hours: from only nine people.
        for n, appeal_id in enumerate(ids[:9]):
            now[0] = start + dt.timedelta(days=3, hours=n + 1)
            app.execute(app.decide_appeal(f"d{n}", appeal_id, False, "award was right", "officer"))
    store = Store(f"sqlite:///{tmp_path / 'rm.sqlite'}")
    projector = Projector(store)
    catch_up_log(projector, app, "vienna")
    closed = dt.datetime(2026, 5, 12, tzinfo=dt.UTC)  # both weeks over
    with store.transaction() as tx:
        board = city_dashboard(tx, "vienna", policy, dt.datetime(2026, 5, 6, tzinfo=dt.UTC))
    # On 6 May the week of 4 May is open: its decisions are not shown at all.
    assert "2026-05-04" not in board["cells"]["appeals_decided"]
    filed = board["cells"]["appeals"]["2026-04-27"][""]
    assert (
        filed["protection"]["method"] == "laplace"
        and filed["protection"]["period"] == "closed week 2026-04-27"
    )
    assert board["appeals"]["value"] == filed["value"]

    with scenario_time(lambda: start + dt.timedelta(days=4)):
        app.execute(app.decide_appeal("d9", ids[9], False, "award was right", "officer"))
    catch_up_log(projector, app, "vienna")
    with store.transaction() as tx:
        board = city_dashboard(tx, "vienna", policy, closed)
    # Ten decisions in the closed week of 4 May: counted and their waits summed, each noised.
    decided = board["cells"]["appeals_decided"]["2026-05-04"][""]
    hours = board["cells"]["appeal_wait_hours"]["2026-05-04"][""]
    assert decided["protection"]["sensitivity"] == policy.bounds["appeals_decided"]
    assert hours["protection"]["sensitivity"] == policy.bounds["appeal_wait_hours"]
    mean = board["mean_hours_to_decision"]
    if decided["value"] > 0:
        assert mean == {
            "value": hours["value"] // decided["value"],
            "protection": {"method": "ratio of published sums"},
        }
    else:  # the noise took the count to zero: no ratio is formed
        assert mean == {"suppressed": True, "reason": "no published decisions"}
    assert board["cells"]["appeals"]["2026-04-27"][""] == filed  # drawn once, read again unchanged
    app.close()
