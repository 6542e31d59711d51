"""A city as people name it on the command line: its key (`sint_niklaas`), its folder-style
form (`sint-niklaas`), its English name (`Vienna`) or its local name (`Wien`), in any case."""

from __future__ import annotations

import tomllib
from pathlib import Path

from services.cli.lang import tr as _
from services.settings.cities import city_keys


class UnknownCity(Exception):
    """A `--city` that names no city in the cities folder; the message lists the known ones."""


def _fold(name: str) -> str:
    return "".join(ch for ch in name.casefold() if ch.isalnum())


def city_names(cities_dir: Path) -> dict[str, tuple[str, str]]:
    """key -> (English name, local name) of every city in `cities_dir`."""
    names: dict[str, tuple[str, str]] = {}
    for key in city_keys(cities_dir):
        try:
            config = tomllib.loads((cities_dir / key / "city.toml").read_text())
        except (OSError, tomllib.TOMLDecodeError):
            config = {}  # a broken file is reported by the command that loads it
        name = str(config.get("name", key))
        names[key] = (name, str(config.get("local_name") or name))
    return names


def resolve_city(given: str, cities_dir: Path) -> str:
    """The key of the city `given` names; UnknownCity lists the known ones."""
    names = city_names(cities_dir)
    wanted = _fold(given)
    for key, (name, local) in names.items():
        if wanted in {_fold(key), _fold(name), _fold(local)}:
            return key
    known = ", ".join(f"{key} ({name})" for key, (name, _local) in names.items())
    raise UnknownCity(
        _("unknown city {given!r}; known cities: {known}").format(given=given, known=known or "-")
    )


def city_locale(key: str, cities_dir: Path) -> str:
    try:
        config = tomllib.loads((cities_dir / key / "city.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return "en"
    return str(config.get("locale", "en"))
