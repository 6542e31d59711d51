"""The language a response is written in: the one a request asks for, else the city's own."""

from __future__ import annotations

from typing import Any

from aggregates.errors import InvalidInput
from services.i18n import parse_locale
from services.i18n.explanations import explain

# Longer than any BCP 47 tag a catalogue could answer (de-AT, nl-BE, sr-Latn-RS).
MAX_TAG = 35


def reading_language(default: str, requested: str, field: str = "language") -> str:
    """`requested` (a BCP 47 tag, `en` for English) if given, else `default` (the city's
    locale); a tag that is not a known locale is refused, naming the field."""
    if not requested:
        return default
    if len(requested) > MAX_TAG:
        raise InvalidInput(field, f"at most {MAX_TAG} characters; a BCP 47 tag such as de-AT or en")
    try:
        parse_locale(requested)
    except ValueError:
        known = "use a BCP 47 tag such as de-AT, it-IT, nl-BE or en"
        raise InvalidInput(field, f"{requested!r} is not a known language; {known}") from None
    return requested


def award_explanation(out: dict[str, Any], language: str) -> str:
    """An award's explanation in `language`; a result stored before explanations had ids
    (a replayed receipt) reads as its English text."""
    return explain(out.get("explanation_id"), out.get("explanation_args"), out.get("explanation"), language)
