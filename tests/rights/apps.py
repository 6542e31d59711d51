"""City applications on real SQLite files, or on PostgreSQL with a test's schema."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from services.city import CityApplication
from services.settings.cities import load_city, load_settings


def city_app(key: str, data_dir: Path, env: dict[str, str] | None = None) -> CityApplication:
    settings = load_settings({"CIVFED_DATA_DIR": str(data_dir), **(env or {})})
    return CityApplication(load_city(key, settings.CIVFED_CITIES_DIR), settings.eventsourcing_env(key))


def opened(app: CityApplication, tag: str = "w") -> UUID:
    out = app.execute(app.open_wallet(f"open:{tag}", "resident", app.city.config.consent_versions[-1]))
    return UUID(out["wallet_id"])


# Personal data a person's life in the city leaves behind; none may be readable after erasure.
def personal_life(app: CityApplication, tag: str) -> tuple[UUID, list[str]]:
    """One wallet's trips, a purchase, an upheld appeal and leaving; returns its personal strings."""
    wallet = opened(app, tag)
    bike, tram = 212_345 + 100 * sum(map(ord, tag)), 345_678 + 100 * sum(map(ord, tag))
    trip_id = f"trip-{tag}-7741"
    order = f"order-{tag}-zq99"
    reason = f"my commute {tag} on 3 May was never counted"
    app.execute(
        app.record_activity(
            f"{tag}:t1",
            wallet,
            "trip",
            {"mode": "bike", "distance_m": bike, "date": "2026-05-03"},
            trip_id,
        )
    )
    shop = UUID(app.execute(app.register_merchant(f"{tag}:shop", "Bakery", "food", True))["merchant_id"])
    app.execute(app.spend(f"{tag}:s1", wallet, shop, 1, order))
    filed = app.execute(app.file_appeal(f"{tag}:f1", wallet, "missing_award", trip_id, reason, "holder"))
    fields = {"mode": "tram", "distance_m": tram, "date": "2026-05-04"}
    app.execute(
        app.decide_appeal(
            f"{tag}:d1",
            UUID(filed["appeal_id"]),
            True,
            f"confirmed for {tag}",
            "officer-3",
            {"activity": "trip", "fields": fields},
        )
    )
    # Explanations name the trips: distance and day are personal to this holder.
    return wallet, [
        trip_id,
        order,
        reason,
        f"confirmed for {tag}",
        f"{bike / 1000:.1f} km by bike",
        f"{tram / 1000:.1f} km by tram",
    ]


def edited_cities(folder: Path, key: str, old: str, new: str, file: str = "rulebook.toml") -> Path:
    """A copy of the packaged cities with one text replaced in one city's file."""
    import shutil

    from services.settings.cities import PACKAGED_CITIES

    cities = folder / "cities"
    if not cities.exists():
        shutil.copytree(PACKAGED_CITIES, cities)
    path = cities / key / file
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new, 1))
    return cities


# Bologna's eco-actions rule with a cap of 10 points per wallet per day.
CAPPED_ECO_ACTIONS = (
    "recycling_drop_off = 8\n",
    "recycling_drop_off = 8\n\n[rules.conditions]\nper_wallet_per_day = 10\n",
)
