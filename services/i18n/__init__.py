"""A city's language: gettext catalogues read with Babel, and numbers in the city's locale.

Catalogues are plain `.po` files under `services/i18n/locales/<language>/LC_MESSAGES/`,
one per domain: `messages` (explanations a holder reads), `cli` (the command line) and `dashboard`
(the published pages). They are compiled in memory at first use, so a corrected
translation takes effect on the next start and nothing is generated at build time.
English is the source language: a message id is its English text, so an id with no
translation, or a locale with no catalogue, reads in English.
"""

from __future__ import annotations

import gettext
import io
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

LOCALES = Path(__file__).resolve().parent / "locales"
DOMAINS = ("messages", "dashboard", "cli")
ENGLISH = "en"


def parse_locale(tag: str) -> Locale:
    """A BCP 47 tag (`de-AT`) or a POSIX one (`de_AT`) as a Babel locale; unknown: a ValueError
    naming the tag."""
    try:
        return Locale.parse(tag.replace("-", "_"))
    except (UnknownLocaleError, ValueError) as e:
        raise ValueError(f"unknown locale {tag!r}; use a tag such as de-AT, it-IT, nl-BE or en") from e


def language_of(tag: str) -> str:
    return parse_locale(tag).language


@lru_cache(maxsize=64)
def translations(tag: str, domain: str = "messages") -> gettext.NullTranslations:
    """The catalogue of `domain` in the language of `tag`; English (the ids) when there is none."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown message domain {domain!r}; known: {', '.join(DOMAINS)}")
    language = language_of(tag)
    path = LOCALES / language / "LC_MESSAGES" / f"{domain}.po"
    if language == ENGLISH or not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as f:
        catalog = read_po(f, locale=language, domain=domain)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def gettext_for(tag: str, domain: str = "messages") -> gettext.NullTranslations:
    """Shorthand used by callers that translate several strings in one language."""
    return translations(tag, domain)


def format_amount(smallest_units: int, decimals: int, tag: str) -> str:
    """An amount held in a currency's smallest unit, written in currency units with the
    currency's decimals and the locale's separators (1807276, 2, de-AT -> 18.072,76)."""
    value = Decimal(smallest_units).scaleb(-decimals)
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return format_decimal(value, format=pattern, locale=parse_locale(tag))


def format_number(value: int | float | Decimal, tag: str, decimals: int = 0) -> str:
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return format_decimal(value, format=pattern, locale=parse_locale(tag))
