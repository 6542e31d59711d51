"""Helpers for city applications on real stores: clock, opener, event counts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from uuid import UUID

from aggregates.wallet import Wallet
from services.city import CityApplication
from services.event_log import event_type, read_events
from services.settings.cities import PACKAGED_CITIES, load_city, load_settings

T0 = dt.datetime(2026, 5, 4, 8, 0, tzinfo=dt.UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


class Cities:
    """Opens city applications on one store; each open is a fresh process's view."""

    def __init__(self, env: dict[str, str], cities_dir: Path = PACKAGED_CITIES) -> None:
        self.env = env
        self.cities_dir = cities_dir
        self.clock = Clock()
        self.apps: list[CityApplication] = []

    def open(self, key: str, cities_dir: Path | None = None) -> CityApplication:
        env = {**self.env, "CIVFED_CITIES_DIR": str(cities_dir or self.cities_dir)}
        settings = load_settings(env)
        city = load_city(key, settings.CIVFED_CITIES_DIR)
        app = CityApplication(city, settings.eventsourcing_env(key), clock=self.clock)
        self.apps.append(app)
        return app

    def close_all(self) -> None:
        for app in self.apps:
            app.close()
        self.apps.clear()


def log_count(app: CityApplication) -> int:
    """How many events the city's notification log holds."""
    return sum(1 for _ in read_events(app))


def event_names(app: CityApplication, aggregate_id: UUID) -> list[str]:
    return [type(e).__name__ for e in app.events.get(aggregate_id)]


def log_types(app: CityApplication) -> list[str]:
    return [event_type(e) for _, e in read_events(app)]


def wallet_state(app: CityApplication, wallet_id: UUID) -> dict[str, Any]:
    w: Wallet = app.wallet(wallet_id)
    return {
        "balance": w.balance,
        "available": w.available,
        "carried": dict(w.carried),
        "holds": dict(w.holds),
        "closed": w.closed,
        "version": w.version,
    }


def open_wallet(app: CityApplication, key: str, kind: str = "resident", **kw: Any) -> UUID:
    consent = app.city.config.consent_versions[-1]
    return UUID(app.execute(app.open_wallet(key, kind, consent, **kw))["wallet_id"])


def merchant(app: CityApplication, key: str, local: bool = True, name: str = "Shop") -> UUID:
    return UUID(app.execute(app.register_merchant(key, name, "food", local))["merchant_id"])
