"""A rule keeps exactly the "once" it promises: once per subject city-wide (one reward per
bike frame, whoever brings it) or once per wallet. No rule promises "once per person": the
node holds no identity that could tell two wallets are one person, so a rule saying so is
refused at publication, and one stored before the rename is kept, and explained, as once per
wallet (docs/RIGHTS.md, "Once per what")."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from aggregates.errors import AlreadyAwarded, RuleRejected
from aggregates.rulebook import check_rule
from aggregates.rules import ONCE_PER_SUBJECT, SUBJECT_SCOPES, SubjectInput, once_per_subject
from services.settings.cities import load_city
from tests.rights.apps import city_app, opened

CITIES = sorted(p.parent.name for p in (Path(__file__).parents[2] / "cities").glob("*/rulebook.toml"))
PER_PERSON = re.compile(r"per\s+person|per\s+persoon|per\s+persona|pro\s+person", re.IGNORECASE)


@pytest.mark.parametrize("city", CITIES)
def test_no_rule_promises_once_per_person(city: str) -> None:
    for spec in load_city(city).rules:
        if spec.kind != ONCE_PER_SUBJECT:
            continue
        assert spec.params.get("scope", "city") in SUBJECT_SCOPES, spec.id
        assert not PER_PERSON.search(spec.reason), (spec.id, spec.reason)


def test_a_rule_promising_once_per_person_is_refused_at_publication() -> None:
    with pytest.raises(RuleRejected) as err:
        check_rule("event", ONCE_PER_SUBJECT, {"award": 200, "scope": "person"}, {}, "event_attendance")
    assert '"wallet"' in str(err.value) and '"city"' in str(err.value)
    with pytest.raises(RuleRejected):
        check_rule("event", ONCE_PER_SUBJECT, {"award": 200, "scope": "household"}, {}, "event_attendance")
    for scope in SUBJECT_SCOPES:
        check_rule("event", ONCE_PER_SUBJECT, {"award": 200, "scope": scope}, {}, "event_attendance")


def test_a_rule_stored_as_once_per_person_is_kept_and_explained_as_once_per_wallet() -> None:
    """Rulebooks published before the rename keep their scope "person" in the store: it claims
    the same key as "wallet" (nothing already awarded is awarded again) and says what it is."""
    wallet, subject = uuid4(), SubjectInput(subject="fair-2026", date=dt.date(2026, 6, 1))
    params = {"award": 200, "subject_label": "event"}
    old = once_per_subject({**params, "scope": "person"}, subject, wallet)
    new = once_per_subject({**params, "scope": "wallet"}, subject, wallet)
    assert old == new
    assert "once per wallet per event" in old.explanation and "person" not in old.explanation


def test_one_bike_earns_once_across_wallets_and_one_event_once_per_wallet(tmp_path: Path) -> None:
    """What the Sint-Niklaas rules hold against one person with two wallets: the engraving is
    keyed by the bike frame, so the second wallet earns nothing for the same bike; the event
    is keyed by the wallet, so each wallet earns it once, as the rule says."""
    app = city_app("sint_niklaas", tmp_path)
    try:
        first, second = opened(app, "first"), opened(app, "second")

        def record(key: str, wallet: UUID, activity: str, subject: str) -> int:
            fields = {"subject": subject, "date": "2026-06-06"}
            return int(app.execute(app.record_activity(key, wallet, activity, fields))["amount"])

        assert record("b1", first, "bike_engraving", "SN-42") == 500
        with pytest.raises(AlreadyAwarded):
            record("b2", second, "bike_engraving", "SN-42")
        assert record("e1", first, "event_attendance", "fair-2026") == 200
        assert record("e2", second, "event_attendance", "fair-2026") == 200
        with pytest.raises(AlreadyAwarded):
            record("e3", first, "event_attendance", "fair-2026")
    finally:
        app.close()
