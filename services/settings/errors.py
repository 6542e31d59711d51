"""The one error that stops start-up: a setting or a city file, named in its message."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


class ConfigError(Exception):
    """A setting or city file that stops start-up; the message names it."""


def _plain(error: Any) -> str:
    """One pydantic error in plain words, without the library's own phrasing."""
    kind, msg, ctx = error["type"], str(error["msg"]), error.get("ctx") or {}
    value = error.get("input")
    shown = f" (it is {value!r})" if isinstance(value, str | int | float) and kind != "missing" else ""
    if kind == "missing":
        return "must be set"
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"must be a whole number{shown}"
    if kind in ("float_parsing", "float_type"):
        return f"must be a number{shown}"
    if kind in ("bool_parsing", "bool_type"):
        return f"must be true or false{shown}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}{shown}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        words = {
            "greater_than": "more than",
            "greater_than_equal": "at least",
            "less_than": "less than",
            "less_than_equal": "at most",
        }[kind]
        limit = next(iter(ctx.values()), "")
        return f"must be {words} {limit}{shown}"
    if kind == "extra_forbidden":
        return "is not a known setting (a typing mistake?)"
    if kind == "string_pattern_mismatch":
        return f"has the wrong form{shown}; it must match {ctx.get('pattern', '')}"
    return msg[:1].lower() + msg[1:] + shown


def describe(exc: ValidationError, where: str) -> str:
    """A pydantic error as one line naming each setting (or field) and what is wrong with it,
    in plain words: `POSTGRES_PORT must be a whole number (it is 'x')`."""
    parts = []
    for e in exc.errors():
        name = ".".join(str(p) for p in e["loc"])
        text = _plain(e)
        if not name:
            parts.append(text)
        else:
            parts.append(f"{name} {text}" if text.startswith("must") else f"{name}: {text}")
    return f"invalid {where}: " + "; ".join(parts)
