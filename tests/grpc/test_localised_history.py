"""A holder's history and awards over gRPC, in the city's language or the one asked for.

Explanations are stored as a message id and its parameters and rendered when read, so the
same events read in German in Vienna, Italian in Rome and Dutch in Sint-Niklaas, in
English on request; an event recorded with English text only still reads, and a corrected
translation changes how the events already recorded read.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import grpc
import pytest
from babel.dates import format_date

import services.i18n
from aggregates import rules
from aggregates.wallet import Wallet
from civfed.v1 import wallet_pb2
from services.demo.local_federation import LocalFederation
from services.grpc.auth import bearer
from tests.e2e.flows import CONSENT, attest, open_wallet, record_activity
from tests.grpc.conftest import in_process_federation

OLD_TEXT = "12.0 km by bike on 1 March 2026 saved 2.4 kg CO2; 20.0 kg = 1 token; 2.4 kg carried"


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    cities = ["vienna", "rome", "sint_niklaas"]
    with in_process_federation(Path(tmp_path_factory.mktemp("i18n")), cities) as f:
        yield f


@pytest.fixture(autouse=True)
def fresh_catalogues() -> Iterator[None]:
    services.i18n.translations.cache_clear()
    yield
    services.i18n.translations.cache_clear()


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def long_date(tag: str) -> str:
    return format_date(today(), format="long", locale=tag.replace("-", "_"))


def events(fed: LocalFederation, city: str, opened: Any, language: str = "") -> list[Any]:
    req = wallet_pb2.ListMyEventsRequest(wallet_id=opened.wallet_id, language=language)
    holder = bearer(opened.holder_token)
    return list(fed.stubs(city).wallet.ListMyEvents(req, metadata=holder, timeout=5).events)


def awards(fed: LocalFederation, city: str, opened: Any, language: str = "") -> list[str]:
    return [
        e.explanation
        for e in events(fed, city, opened, language)
        if e.type in ("Wallet.Credited", "Wallet.Progressed")
    ]


def vienna_holder(fed: LocalFederation, name: str, metres: int) -> Any:
    v = fed.stubs("vienna")
    opened = open_wallet(v, f"open:{name}")
    attest(v, f"trip:{name}", opened.wallet_id, "trip", {"mode": "bike", "distance_m": str(metres)})
    return opened


def test_a_vienna_holders_history_reads_in_german_and_in_english_on_request(fed: LocalFederation) -> None:
    anna = vienna_holder(fed, "anna", 225_000)
    german = awards(fed, "vienna", anna)
    assert german == [
        f"225,0 km mit dem Fahrrad am {long_date('de-AT')} sparten 45,0 kg CO2; 20,0 kg = 1 Token; "
        "5,0 kg als Rest übertragen"
    ]
    # The same event, asked for in English: as the English text was always written.
    day = today()
    english = (
        f"225.0 km by bike on {day.day} {day:%B %Y} saved 45.0 kg CO2; 20.0 kg = 1 token; 5.0 kg carried"
    )
    assert awards(fed, "vienna", anna, "en") == [english]
    assert awards(fed, "vienna", anna, "de-AT") == german
    # Italian too, though Vienna does not speak it: any language with a catalogue.
    assert awards(fed, "vienna", anna, "it")[0].startswith("225,0 km in bicicletta il ")
    # The events without an explanation of their own read in German as well.
    opened = next(e for e in events(fed, "vienna", anna) if e.type == "Wallet.Opened")
    assert opened.explanation == "eröffnet"


def test_a_rome_holders_history_reads_in_italian_and_in_english_on_request(fed: LocalFederation) -> None:
    r = fed.stubs("rome")
    marco = open_wallet(r, "open:marco", CONSENT["rome"])
    fields = {"action": "recycling_drop_off", "date": today().isoformat()}
    award = record_activity(r, "rome:marco:1", marco.wallet_id, "eco_action", fields)
    italian = f"conferimento in isola ecologica il {long_date('it-IT')} vale 10 punti"
    # The award's own response is in Rome's language too.
    assert award.awarded.units == 10 and award.explanation == italian
    assert awards(fed, "rome", marco) == [italian]
    day = today()
    in_english = f"recycling_drop_off on {day.day} {day:%B %Y} earns 10 points"
    assert awards(fed, "rome", marco, "en") == [in_english]


def test_a_sint_niklaas_holders_history_reads_in_dutch_and_in_english_on_request(
    fed: LocalFederation,
) -> None:
    sn = fed.stubs("sint_niklaas")
    lotte = open_wallet(sn, "open:lotte", CONSENT["sint_niklaas"])
    fields = {"subject": "FR-20931", "date": today().isoformat()}
    first = record_activity(sn, "sn:lotte:1", lotte.wallet_id, "bike_engraving", fields)
    day = today()
    in_english = f"bike frame FR-20931 on {day.day} {day:%B %Y} earns 500 (once per bike frame)"
    # The award answers in the city's language; the same request again, asked in English, in English.
    dutch = f"fietskader FR-20931 op {long_date('nl-BE')} levert 500 op (eenmaal per fietskader)"
    assert first.explanation == dutch
    req = wallet_pb2.RecordActivityRequest(
        idempotency_key="sn:lotte:1",
        wallet_id=lotte.wallet_id,
        activity="bike_engraving",
        fields=fields,
        language="en",
    )
    assert sn.wallet.RecordActivity(req, metadata=sn.staff, timeout=5).explanation == in_english
    assert awards(fed, "sint_niklaas", lotte) == [dutch]
    assert awards(fed, "sint_niklaas", lotte, "en") == [in_english]
    assert awards(fed, "sint_niklaas", lotte, "nl-NL") == [dutch]


def test_an_event_recorded_with_english_text_only_still_reads(fed: LocalFederation) -> None:
    opened = vienna_holder(fed, "otto", 100_000)
    app = fed.running["vienna"].node.app
    wallet = app.repository.get(UUID(opened.wallet_id))
    assert isinstance(wallet, Wallet)
    # As awards were recorded before explanations had message ids: the English text alone,
    # the event without the fields it has gained since.
    wallet.credit(0, "mobility-co2", 1, "legacy-trip-1", OLD_TEXT, "mobility-co2", 2400, 2400)
    (event,) = wallet.collect_events()
    for name in ("explanation_id", "explanation_args"):
        del vars(event)[name]
    app.save(event)
    old = [e for e in events(fed, "vienna", opened) if e.type == "Wallet.Progressed"]
    assert [e.explanation for e in old] == [OLD_TEXT]
    assert "explanation_id" not in old[0].fields_json
    assert [e.explanation for e in events(fed, "vienna", opened, "en") if e.type == "Wallet.Progressed"] == [
        OLD_TEXT
    ]
    # The award recorded the new way beside it still reads in German.
    assert awards(fed, "vienna", opened)[0].startswith("100,0 km mit dem Fahrrad am ")


def test_a_corrected_translation_changes_how_recorded_events_read(
    fed: LocalFederation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = vienna_holder(fed, "clara", 300_000)
    before = awards(fed, "vienna", opened)
    assert before[0].startswith("300,0 km mit dem Fahrrad am ") and "sparten 60,0 kg CO2" in before[0]
    # A translator corrects the German catalogue; the node reads it at its next start
    # (here: its catalogue cache emptied), and nothing about the events changes.
    corrected = tmp_path / "locales"
    shutil.copytree(services.i18n.LOCALES, corrected)
    po = corrected / "de" / "LC_MESSAGES" / "messages.po"
    text = po.read_text(encoding="utf-8")
    wrong = 'msgstr "{distance_m} {mode} am {date} sparten {saved_g} CO2;'
    assert wrong in text
    po.write_text(
        text.replace(wrong, 'msgstr "{distance_m} {mode} am {date}: {saved_g} CO2 eingespart;'),
        encoding="utf-8",
    )
    monkeypatch.setattr(services.i18n, "LOCALES", corrected)
    services.i18n.translations.cache_clear()
    after = awards(fed, "vienna", opened)
    assert after == [before[0].replace(" sparten 60,0 kg CO2;", ": 60,0 kg CO2 eingespart;")]
    assert after != before
    # English and the other languages are untouched.
    assert awards(fed, "vienna", opened, "en")[0].startswith("300.0 km by bike on ")


def test_a_sources_claim_is_answered_in_the_citys_language_or_the_one_asked(fed: LocalFederation) -> None:
    v = fed.stubs("vienna")
    opened = open_wallet(v, "open:claims")
    trip = {"mode": "tram", "distance_m": "50000"}
    german = attest(v, "claim:tram:1", opened.wallet_id, "trip", trip)
    assert german.accepted and german.explanation.startswith("50,0 km mit der Straßenbahn am ")
    # The same claim again (the stored result), asked in English; and in Dutch.
    english = attest(v, "claim:tram:1", opened.wallet_id, "trip", trip, language="en")
    assert english.explanation.startswith("50.0 km by tram on ") and english.awarded == german.awarded
    dutch = attest(v, "claim:tram:1", opened.wallet_id, "trip", trip, language="nl")
    assert dutch.explanation.startswith("50,0 km met de tram op ")
    with pytest.raises(grpc.RpcError) as err:
        attest(v, "claim:tram:2", opened.wallet_id, "trip", trip, language="nope-nope-nope")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("language: ")


def test_a_language_that_is_not_one_is_refused_naming_the_field(fed: LocalFederation) -> None:
    opened = vienna_holder(fed, "bad-tag", 50_000)
    for tag in ("xx-not-a-tag", "de_AT_@@", "z" * 40):
        with pytest.raises(grpc.RpcError) as err:
            events(fed, "vienna", opened, tag)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details().startswith("language: ")
    # An award request with a bad tag is refused before anything is credited.
    r = fed.stubs("rome")
    marco = open_wallet(r, "open:marco-bad", CONSENT["rome"])
    req = wallet_pb2.RecordActivityRequest(
        idempotency_key="rome:bad-tag",
        wallet_id=marco.wallet_id,
        activity="eco_action",
        fields={"action": "water_refill", "date": today().isoformat()},
        language="not a language",
    )
    with pytest.raises(grpc.RpcError) as err:
        r.wallet.RecordActivity(req, metadata=r.staff, timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("language: ")
    assert awards(fed, "rome", marco) == []


def test_every_message_id_the_rules_write_is_what_the_node_renders(fed: LocalFederation) -> None:
    opened = vienna_holder(fed, "ids", 100_000)
    credited = [e for e in events(fed, "vienna", opened) if e.type == "Wallet.Credited"]
    assert f'"explanation_id": "{rules.TRIP_SAVED}"' in credited[0].fields_json
