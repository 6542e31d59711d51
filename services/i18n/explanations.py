"""Explanations a holder reads, rendered at read time in the reader's language.

An award's explanation is stored as a message id (its English text, with `{name}`
placeholders) and its parameters as plain values: distances in metres, CO2 in grams,
amounts in the currency's smallest unit, dates as ISO strings, mode, action and label
codes. Reading it looks the id up in the `messages` catalogue of the reader's language
and formats each parameter with Babel in that locale, so the same event reads in any
language, and a corrected translation changes how every older event reads.

How a parameter is written follows from its name, so events describe themselves:

- `distance_m`: metres, as kilometres with one decimal;
- a name ending in `_g`: grams, as kilograms with one decimal (truncated, never rounded up);
- `date`, or a name ending in `_date`: an ISO date, as the locale's long date;
- `month`: an ISO year and month (2026-05), as the locale's month and year;
- `amount_cents`: hundredths of a euro, as euros with two decimals;
- `bps`: basis points, as a percentage with two decimals;
- `minutes`: two digits (the minutes after the whole hours);
- `mode`, `action`, `label`, `subject_kind`: codes, translated in their context (a code with no
  translation reads as itself);
- `explanation`: a nested explanation (`{"id": ..., "args": {...}}`), rendered the same way;
- any other int: a whole number with the locale's separators; anything else as it is.
"""

from __future__ import annotations

import datetime as dt
import gettext
from decimal import Decimal
from functools import lru_cache
from typing import Any

from babel import Locale
from babel.dates import format_date, format_skeleton
from babel.numbers import NumberPattern, format_decimal, parse_pattern

from services.i18n import ENGLISH, parse_locale, translations
from services.privacy.sealing import REDACTED

# English: the source language, with day-month-year dates as the explanations were always written.
ENGLISH_DATES = Locale.parse("en_GB")
# Contexts of the codes a parameter may name; the English text of a mode reads "by <mode>".
CODE_CONTEXTS = {"mode": "mode", "action": "action", "label": "subject", "subject_kind": "appeal"}


@lru_cache(maxsize=64)
def _locale(tag: str) -> Locale:
    locale = parse_locale(tag)
    return ENGLISH_DATES if locale.language == ENGLISH and not locale.territory else locale


@lru_cache(maxsize=8)
def _pattern(decimals: int) -> NumberPattern:
    """Parsed once: Babel would parse the pattern again for every number."""
    return parse_pattern("#,##0" + ("." + "0" * decimals if decimals else ""))


@lru_cache(maxsize=64)
def _separators(locale: Locale) -> dict[int, str]:
    """Python's grouping comma and decimal point, as the locale writes them."""
    symbols = locale.number_symbols["latn"]
    return str.maketrans({",": symbols["group"], ".": symbols["decimal"]})


def _number(value: Decimal | int, locale: Locale, decimals: int = 0) -> str:
    if value >= 0:
        # What Babel writes for "#,##0.0…" in Latin digits (grouped by three, rounded half to
        # even), without its pattern machinery: a distance, a weight or an amount per award.
        return f"{value:,.{decimals}f}".translate(_separators(locale))
    return format_decimal(value, format=_pattern(decimals), locale=locale)


def _code(context: str, code: str, tr: gettext.NullTranslations) -> str:
    source = f"by {code}" if context == "mode" else code
    return tr.pgettext(context, source)


def format_arg(name: str, value: Any, tag: str) -> str:
    """One parameter, written in the locale of `tag` (see the module's description)."""
    if isinstance(value, dict) and "id" in value:
        return render(str(value["id"]), value.get("args") or {}, tag)
    tr = translations(tag, "messages")
    if isinstance(value, int | str):
        # Dates, modes and the usual distances repeat from one award to the next. Keyed by
        # the catalogue too, so a catalogue read again (a corrected translation) is used.
        return _scalar(name, value, tag, tr)
    return _format(name, value, tag, tr)


def _format(name: str, value: Any, tag: str, tr: gettext.NullTranslations) -> str:
    locale = _locale(tag)
    if name in CODE_CONTEXTS:
        return _code(CODE_CONTEXTS[name], str(value), tr)
    if isinstance(value, bool) or not isinstance(value, int | str):
        return str(value)
    if name == "date" or name.endswith("_date"):
        try:
            return format_date(dt.date.fromisoformat(str(value)), format="long", locale=locale)
        except ValueError:
            return str(value)
    if name == "month":
        try:
            first = dt.date.fromisoformat(f"{value}-01")
        except ValueError:
            return str(value)
        return format_skeleton("yMMMM", first, locale=locale)
    if not isinstance(value, int):
        return value
    if name == "distance_m":
        return f"{_number(Decimal(value).scaleb(-3), locale, 1)} km"
    if name.endswith("_g"):
        # Truncated to the tenth of a kilogram: nothing is shown as saved that was not.
        return f"{_number(Decimal(value // 100).scaleb(-1), locale, 1)} kg"
    if name == "amount_cents":
        return _number(Decimal(value).scaleb(-2), locale, 2)
    if name == "bps":
        return _number(Decimal(value).scaleb(-2), locale, 2) + "%"
    if name == "minutes":
        return format_decimal(value, format="00", locale=locale)
    return _number(value, locale)


# Keyed by the value's type as well: True is written as itself, 1 as a number.
_scalar = lru_cache(maxsize=4096, typed=True)(_format)


def render(message_id: str, args: dict[str, Any], tag: str) -> str:
    """The explanation `message_id` with `args`, in the language of `tag`.

    Erased parameters (crypto-shredded) read as the erasure marker, as the English text does."""
    if message_id == REDACTED or not isinstance(args, dict) or "redacted" in args:
        return REDACTED
    template = translations(tag, "messages").gettext(message_id)
    values = {name: format_arg(name, value, tag) for name, value in args.items()}
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        # A translation that names a parameter the message does not have: the English text.
        english = _Unfilled({name: format_arg(name, value, ENGLISH) for name, value in args.items()})
        try:
            return message_id.format_map(english)
        except (IndexError, ValueError):
            return message_id


class _Unfilled(dict[str, str]):
    """Parameters by name; one an event does not have reads as its placeholder."""

    def __missing__(self, name: str) -> str:
        return "{" + name + "}"


def explain(message_id: str | None, args: Any, english: str | None, tag: str | None) -> str:
    """What a reader sees for a stored explanation: with no language asked (`tag` None), or for
    an event written before explanations had ids, the English text as it was stored; otherwise
    the id rendered in that language."""
    if tag is None or not message_id:
        return english if english is not None else ""
    return render(message_id, args if isinstance(args, dict) else {}, tag)
