"""City applications on real SQLite files, or on PostgreSQL with a test's schema."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from services.city import CityApplication
from services.config import load_city, load_settings


def city_app(key: str, data_dir: Path, env: dict[str, str] | None = None) -> CityApplication:
    settings = load_settings({"CIVFED_DATA_DIR": str(data_dir), **(env or {})})
    return CityApplication(load_city(key), settings.eventsourcing_env(key))


def opened(app: CityApplication, tag: str = "w") -> UUID:
    out = app.execute(app.open_wallet(f"open:{tag}", "resident", app.city.config.consent_versions[-1]))
    return UUID(out["wallet_id"])
