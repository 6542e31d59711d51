"""The one error that stops start-up: a setting or a city file, named in its message."""

from __future__ import annotations

from pydantic import ValidationError


class ConfigError(Exception):
    """A setting or city file that stops start-up; the message names it."""


def describe(exc: ValidationError, where: str) -> str:
    """A pydantic error as one line naming each field and what is wrong with it."""
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()]
    return f"invalid {where}: " + "; ".join(parts)
