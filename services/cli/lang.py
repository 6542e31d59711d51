"""The language of the command line's own messages (the `cli` gettext domain).

`--lang TAG` or CIVFED_LANG choose it; otherwise a command about one city speaks that city's
language (its `locale` in city.toml), and anything else speaks English."""

from __future__ import annotations

import os

from services.i18n import ENGLISH, parse_locale, translations

_current = ENGLISH


def set_language(tag: str) -> None:
    global _current
    parse_locale(tag)  # an unknown tag is refused here, with a ValueError naming it
    _current = tag


def language() -> str:
    return _current


def explicit_language(chosen: str | None) -> str | None:
    """The language asked for on the command line or in CIVFED_LANG, if any."""
    return chosen or os.environ.get("CIVFED_LANG") or None


def tr(message: str) -> str:
    """`message` (its English text is its id) in the current language."""
    return translations(_current, "cli").gettext(message)
