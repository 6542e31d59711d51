"""Explanations rendered from a message id and parameters, in each city's language.

Parameters are plain values (metres, grams, ISO dates, codes) written at read time with
Babel in the reader's locale; English reads as the text the events have always stored.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import string
import uuid
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po

from aggregates import limits, rules
from aggregates.errors import InvalidInput
from services import history, workflow
from services.grpc.language import award_explanation, reading_language
from services.i18n import LOCALES, translations
from services.i18n.explanations import REDACTED, explain, format_arg, render
from services.settings.cities import load_city

DAY = dt.date(2026, 5, 3)
MESSAGE_IDS = (*rules.MESSAGE_IDS, *workflow.MESSAGE_IDS, *history.MESSAGE_IDS, *limits.MESSAGE_IDS)
LANGUAGES = ("de", "it", "nl")
CITIES = ("vienna", "rome", "sint_niklaas", "zwolle", "bologna")


def trip(distance_m: int, mode: str = "bike", carried: int = 0) -> rules.Award:
    params = {
        "factors_g_per_km": {"car": 200, "bike": 0, "tram": 30},
        "baseline_mode": "car",
        "unit_grams": 20000,
    }
    return rules.measured_quantity(
        params, rules.TripInput(date=DAY, mode=mode, distance_m=distance_m), carried
    )


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def catalogue(language: str) -> Any:
    with (LOCALES / language / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=language)


# -- English reads as the stored text ---------------------------------------------------


@pytest.mark.parametrize(
    "award",
    [
        trip(225_000, carried=3_500),
        trip(12_345, "tram"),
        trip(0),
        rules.fixed_per_action(
            {"points": {"water_refill": 2}}, rules.ActionInput(date=DAY, action="water_refill")
        ),
        rules.once_per_subject(
            {"award": 500, "subject_label": "bike frame"},
            rules.SubjectInput(date=DAY, subject="F1"),
            uuid.uuid4(),
        ),
        rules.once_per_subject(
            {"award": 200, "scope": "person", "subject_label": "event"},
            rules.SubjectInput(date=DAY, subject="fair"),
            uuid.uuid4(),
        ),
        rules.percentage_of_amount(
            {"basis_points": 500}, rules.PurchaseInput(date=DAY, amount_cents=5_000, merchant_id=uuid.uuid4())
        ),
        rules.per_approved_time(
            {"units_per_hour": 100}, rules.ApprovedTimeInput(date=DAY, minutes=95, category="food-bank")
        ),
    ],
)
def test_every_award_in_english_reads_as_the_text_it_stores(award: rules.Award) -> None:
    assert award.message in rules.MESSAGE_IDS
    assert placeholders(award.message) == set(award.args)
    assert render(award.message, award.args, "en") == award.explanation
    # British or American English: the same words, and only the date's order may differ.
    assert render(award.message, award.args, "en-GB") == award.explanation


def test_parameters_are_plain_values_not_text() -> None:
    award = trip(225_000, carried=3_500)
    assert award.args == {
        "distance_m": 225_000,
        "mode": "bike",
        "date": "2026-05-03",
        "saved_g": 45_000,
        "unit_g": 20_000,
        "carried_g": 8_500,
    }


# -- each city's language ------------------------------------------------------------------


def test_a_trip_in_german_italian_and_dutch() -> None:
    award = trip(225_000, carried=3_500)
    assert render(award.message, award.args, "de-AT") == (
        "225,0 km mit dem Fahrrad am 3. Mai 2026 sparten 45,0 kg CO2; 20,0 kg = 1 Token; "
        "8,5 kg als Rest übertragen"
    )
    assert render(award.message, award.args, "it-IT") == (
        "225,0 km in bicicletta il 3 maggio 2026 hanno risparmiato 45,0 kg di CO2; 20,0 kg = 1 token; "
        "8,5 kg riportati"
    )
    assert render(award.message, award.args, "nl-BE") == (
        "225,0 km met de fiets op 3 mei 2026 bespaarde 45,0 kg CO2; 20,0 kg = 1 token; 8,5 kg overgedragen"
    )


def test_numbers_take_the_locales_separators() -> None:
    assert format_arg("distance_m", 1_000_000, "de-AT") == "1.000,0 km"
    assert format_arg("distance_m", 1_000_000, "en") == "1,000.0 km"
    assert format_arg("distance_m", 1_000_000, "it-IT") == "1.000,0 km"
    assert format_arg("amount_cents", 123_456, "nl-NL") == "1.234,56"
    assert format_arg("amount_cents", 123_456, "en") == "1,234.56"
    assert format_arg("amount", 1_807_276, "de-AT") == "1.807.276"
    assert format_arg("bps", 550, "nl-BE") == "5,50%"
    assert format_arg("minutes", 5, "de-AT") == "05"


def test_grams_read_as_kilograms_truncated_never_rounded_up() -> None:
    assert format_arg("saved_g", 45_999, "en") == "45.9 kg"
    assert format_arg("saved_g", 45_999, "de-AT") == "45,9 kg"
    assert format_arg("carried_g", 99, "it-IT") == "0,0 kg"
    assert format_arg("saved_g", 1_234_567, "nl-NL") == "1.234,5 kg"


def test_dates_are_the_locales_long_dates() -> None:
    assert format_arg("date", "2026-05-03", "de-AT") == "3. Mai 2026"
    assert format_arg("date", "2026-05-03", "it-IT") == "3 maggio 2026"
    assert format_arg("date", "2026-05-03", "nl-BE") == "3 mei 2026"
    assert format_arg("date", "2026-05-03", "en") == "3 May 2026"
    assert format_arg("date", "2026-05-03", "en-US") == "May 3, 2026"
    assert format_arg("date", "not a date", "de-AT") == "not a date"


def test_codes_are_translated_in_their_context_and_unknown_ones_read_as_themselves() -> None:
    assert format_arg("mode", "tram", "de-AT") == "mit der Straßenbahn"
    assert format_arg("mode", "walk", "it-IT") == "a piedi"
    assert format_arg("mode", "bike", "en") == "by bike"
    assert format_arg("mode", "hovercraft", "nl-BE") == "by hovercraft"
    assert format_arg("action", "recycling_drop_off", "it-IT") == "conferimento in isola ecologica"
    assert format_arg("label", "bike frame", "nl-BE") == "fietskader"
    assert format_arg("label", "tree", "nl-BE") == "tree"
    # Free text (a subject, a reason) is never translated.
    assert format_arg("subject", "event", "de-AT") == "event"


def test_a_nested_explanation_renders_in_the_same_language() -> None:
    work = rules.per_approved_time(
        {"units_per_hour": 100}, rules.ApprovedTimeInput(date=DAY, minutes=90, category="food-bank")
    )
    args = {"explanation": {"id": work.message, "args": work.args}}
    assert render(workflow.UPHELD_WORK, args, "nl-NL") == (
        "bezwaar gegrond tegen de afwijzing van deze minuten: 1 u 30 min goedgekeurd werk (food-bank) "
        "op 3 mei 2026 levert 150 op (100 per uur, naar rato per minuut, naar beneden afgerond)"
    )
    assert render(workflow.UPHELD_WORK, args, "en") == (
        f"appeal upheld against the rejection of these minutes: {work.explanation}"
    )


def test_history_lines_without_an_award_read_in_the_language_asked() -> None:
    decided = {"upheld": True, "decided_by": "staff:eva", "reason": "the log shows it"}
    assert history.describe("Appeal.Decided", decided) == "appeal upheld by staff:eva: the log shows it"
    assert history.describe("Appeal.Decided", decided, "en") == "appeal upheld by staff:eva: the log shows it"
    assert (
        history.describe("Appeal.Decided", decided, "it-IT")
        == "ricorso accolto da staff:eva: the log shows it"
    )
    filed = {"subject_kind": "award", "subject_ref": "trip-1", "reason": "wrong distance"}
    assert history.describe("Appeal.Filed", filed, "de-AT") == (
        "Einspruch gegen die Gutschrift trip-1 eingelegt: wrong distance"
    )
    assert history.describe("Keyring.CredentialRotated", {}, "nl-BE") == (
        "toegangsbewijs vervangen door een nieuw (het oude werkt niet meer)"
    )
    assert history.describe("Keyring.RecoveryApproved", {"approved_by": "staff:jan"}, "de-AT").startswith(
        "Wiederherstellung genehmigt von staff:jan: "
    )
    assert history.describe("Wallet.Spent", {"amount": 1500}, "de-AT") == "ausgegeben: 1.500"
    assert history.describe("Wallet.Spent", {"amount": 1500}) == "spent: 1500"
    assert history.describe("Wallet.Opened", {}, "it-IT") == "aperto"
    prize = {"amount": 40, "spent_for": "prize"}
    assert history.describe("Wallet.Spent", prize, "nl-BE") == "prijs afgehaald: 40"
    assert history.describe("Wallet.Spent", prize, "en") == "prize claimed: 40"


# -- events written before message ids, and erased ones ------------------------------------


def test_an_explanation_stored_as_english_text_only_reads_in_every_language() -> None:
    old = "225.0 km by bike on 3 May 2026 saved 45.0 kg CO2; 20.0 kg = 1 token; 8.5 kg carried"
    fields = {"explanation": old, "amount": 11}
    for tag in (None, "en", "de-AT", "it-IT", "nl-BE"):
        assert history.describe("Wallet.Credited", fields, tag) == old
    assert explain("", None, old, "de-AT") == old
    # A receipt's result stored before explanations had ids answers in English.
    assert award_explanation({"explanation": old, "amount": 11}, "nl-BE") == old


def test_erased_parameters_read_as_erased() -> None:
    fields = {"explanation": REDACTED, "explanation_id": REDACTED, "explanation_args": {"redacted": REDACTED}}
    for tag in (None, "en", "de-AT"):
        assert history.describe("Wallet.Credited", fields, tag) == REDACTED
    assert render(rules.TRIP_SAVED, {"redacted": REDACTED}, "it-IT") == REDACTED


def test_a_corrected_translation_is_read_at_the_next_lookup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import services.i18n

    award = rules.fixed_per_action(
        {"points": {"bus_ride": 3}}, rules.ActionInput(date=DAY, action="bus_ride")
    )
    assert render(award.message, award.args, "it-IT") == "corsa in autobus il 3 maggio 2026 vale 3 punti"
    po = tmp_path / "it" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    text = (LOCALES / "it" / "LC_MESSAGES" / "messages.po").read_text(encoding="utf-8")
    po.write_text(
        text.replace('"{action} il {date} vale {amount} punti"', '"{action} del {date}: {amount} punti"')
    )
    monkeypatch.setattr(services.i18n, "LOCALES", tmp_path)
    translations.cache_clear()
    try:
        assert render(award.message, award.args, "it-IT") == "corsa in autobus del 3 maggio 2026: 3 punti"
    finally:
        monkeypatch.undo()
        translations.cache_clear()
    assert render(award.message, award.args, "it-IT") == "corsa in autobus il 3 maggio 2026 vale 3 punti"


def test_a_translation_naming_a_parameter_the_message_lacks_falls_back_to_english(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import services.i18n

    po = tmp_path / "de" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    text = (LOCALES / "de" / "LC_MESSAGES" / "messages.po").read_text(encoding="utf-8")
    po.write_text(
        text.replace('"{action} am {date} bringt {amount} Punkte"', '"{aktion} bringt {amount} Punkte"')
    )
    monkeypatch.setattr(services.i18n, "LOCALES", tmp_path)
    translations.cache_clear()
    award = rules.fixed_per_action(
        {"points": {"bus_ride": 3}}, rules.ActionInput(date=DAY, action="bus_ride")
    )
    try:
        # Wholly in English, as the event's own text reads.
        assert render(award.message, award.args, "de-AT") == award.explanation
    finally:
        monkeypatch.undo()
        translations.cache_clear()


# -- the catalogues ------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_id_has_a_translation_with_the_same_parameters(language: str) -> None:
    cat = catalogue(language)
    for message_id in MESSAGE_IDS:
        message = cat.get(message_id)
        assert message is not None and message.string, f"{language}: no translation of {message_id!r}"
        assert not message.fuzzy
        assert placeholders(str(message.string)) == placeholders(message_id), (language, message_id)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_mode_action_and_label_the_cities_publish_is_translated(language: str) -> None:
    cat = catalogue(language)
    for city in CITIES:
        for rule in load_city(city).rules:
            params = rule.params
            codes: list[tuple[str, str]] = [("mode", f"by {m}") for m in params.get("factors_g_per_km", {})]
            codes += [("action", a) for a in params.get("points", {})]
            if "subject_label" in params:
                codes.append(("subject", params["subject_label"]))
            for context, code in codes:
                message = cat.get(code, context=context)
                assert message is not None and message.string, f"{language}: {city} {context} {code!r}"


def test_every_city_locale_has_a_catalogue() -> None:
    for city in CITIES:
        language = re.split("[-_]", load_city(city).config.locale)[0]
        assert (LOCALES / language / "LC_MESSAGES" / "messages.po").exists(), city


# -- the requested language ----------------------------------------------------------------


def test_the_language_asked_for_or_the_citys() -> None:
    assert reading_language("de-AT", "") == "de-AT"
    assert reading_language("de-AT", "en") == "en"
    assert reading_language("de-AT", "it_IT") == "it_IT"
    for bad in ("xx-not-a-tag", "!!", "q" * 36):
        with pytest.raises(InvalidInput) as err:
            reading_language("de-AT", bad)
        assert err.value.field == "language"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_wallet_event_without_an_explanation_has_a_translated_line(language: str) -> None:
    from eventsourcing.domain import DomainEvent

    from aggregates.wallet import Wallet

    named = {
        name
        for name, value in vars(Wallet).items()
        if isinstance(value, type) and issubclass(value, DomainEvent)
    } - {"Event", "Created", "Credited", "Progressed"}
    tr = translations(language, "messages")
    for name in named:
        assert tr.pgettext("event", name.lower()) != name.lower(), f"{language}: Wallet.{name}"


def test_an_explanation_missing_a_parameter_still_reads() -> None:
    args = {"action": "bus_ride", "amount": 3}
    assert render(rules.ACTION_EARNS, args, "it-IT") == "bus_ride on {date} earns 3 points"


def test_a_refused_award_reads_its_reason_in_the_language_asked() -> None:
    caps = {"per_wallet_per_day": 10, "per_wallet_per_month": 30}
    on = dt.date(2026, 5, 4)
    day = limits.cap_refusal("eco", caps, on, 3, day=8, month=8)
    assert day is not None
    message, args = limits.refusal_message(day[0], "eco", caps, on, 3, 8, 8)
    fields = {"limit": day[0], "reason": day[1], "reason_id": message, "reason_args": args}
    assert history.describe("Wallet.AwardRefused", fields, "de-AT") == (
        "Gutschrift verweigert: Regel eco begrenzt Gutschriften auf 10 pro Wallet und Tag; am 4. Mai 2026 "
        "bereits 8 erhalten, diese Gutschrift von 3 würde die Grenze überschreiten"
    )
    assert history.describe("Wallet.AwardRefused", fields, "en") == (
        "award refused: rule eco caps awards at 10 per wallet per day; 8 already earned on 4 May 2026, "
        "this award of 3 would exceed it"
    )
    month = limits.cap_refusal("eco", caps, on, 3, day=0, month=28)
    assert month is not None
    message, args = limits.refusal_message(month[0], "eco", caps, on, 3, 0, 28)
    assert render(message, args, "it-IT") == (
        "la regola eco limita gli accrediti a 30 per portafoglio al mese; 28 già ottenuti a maggio 2026, "
        "questo accredito di 3 supererebbe il limite"
    )
    dates = {"valid_from": "2026-05-01", "valid_until": "2026-05-31"}
    early = limits.dates_refusal("eco", dates, dt.date(2026, 4, 30))
    assert early is not None
    message, args = limits.refusal_message(early[0], "eco", dates, dt.date(2026, 4, 30), 3, 0, 0)
    assert (
        render(message, args, "nl-BE")
        == "regel eco geldt vanaf 1 mei 2026; de activiteit was op 30 april 2026"
    )
    late = limits.dates_refusal("eco", dates, dt.date(2026, 6, 1))
    assert late is not None
    message, args = limits.refusal_message(late[0], "eco", dates, dt.date(2026, 6, 1), 3, 0, 0)
    assert (
        render(message, args, "de-AT") == "Regel eco galt bis 31. Mai 2026; die Aktivität war am 1. Juni 2026"
    )
    # A refusal recorded before reasons had ids reads as its English reason.
    old = {"limit": day[0], "reason": day[1]}
    assert history.describe("Wallet.AwardRefused", old, "it-IT") == f"accredito rifiutato: {day[1]}"
    assert history.describe("Wallet.AwardRefused", old) == "AwardRefused"


@pytest.mark.parametrize("tag", ["de-AT", "it-IT", "nl-BE", "nl-NL", "fr-BE", "en-GB", "en"])
def test_numbers_read_as_babel_writes_them(tag: str) -> None:
    from decimal import Decimal

    from babel.numbers import format_decimal

    from services.i18n.explanations import _locale, _number

    locale = _locale(tag)
    rnd = random.Random(tag)
    values = [0, 1, 5, 999, 1000, 1005, 999_999, 12_345_678, 10**15]
    values += [rnd.randrange(10 ** rnd.randrange(1, 12)) for _ in range(300)]
    for value in values:
        for decimals in (0, 1, 2):
            for number in (value, Decimal(value).scaleb(-decimals - 1), Decimal(value).scaleb(-decimals)):
                pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
                assert _number(number, locale, decimals) == format_decimal(
                    number, format=pattern, locale=locale
                )
