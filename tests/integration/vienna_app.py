"""A Vienna application on its own SQLite store, and a wallet with a history, for tests that
read aggregates back from snapshots or pages."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from services.city import CityApplication
from services.settings.cities import load_city, load_settings


def open_app(folder: Path, every: int) -> CityApplication:
    """Vienna on `folder`, snapshotting every `every` events (0: never)."""
    settings = load_settings({"CIVFED_DATA_DIR": str(folder), "CIVFED_SNAPSHOT_INTERVAL": str(every)})
    return CityApplication(load_city("vienna"), settings.eventsourcing_env("vienna"))


def long_lived(app: CityApplication, trips: int, distance_m: str = "30000") -> UUID:
    """A wallet with `trips` bike trips of `distance_m` today."""
    consent = app.city.config.consent_versions[-1]
    wallet = UUID(app.execute(app.open_wallet("w", "resident", consent))["wallet_id"])
    today = app.clock().date().isoformat()
    for i in range(trips):
        trip = {"mode": "bike", "distance_m": distance_m, "date": today}
        app.execute(app.record_activity(f"trip-{i}", wallet, "trip", trip))
    return wallet
