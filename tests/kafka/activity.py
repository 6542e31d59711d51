"""Commands that give a city's log a little of everything the read models count."""

from __future__ import annotations

from uuid import UUID

from projections.store import Tx
from services.city import CityApplication


def season(app: CityApplication, tag: str, people: int = 12, days: int = 3) -> list[UUID]:
    """Open wallets, award eco actions, spend some at a shop; returns the wallet ids."""
    consent = app.city.config.consent_versions[-1]
    opened = app.execute_group([app.open_wallet(f"{tag}:w{i}", "resident", consent) for i in range(people)])
    wallets = [UUID(r["wallet_id"]) for r in opened if isinstance(r, dict)]
    shop = UUID(app.execute(app.register_merchant(f"{tag}:shop", "Coop", "food", True))["merchant_id"])
    for day in range(days):
        app.execute_group(
            [
                app.record_activity(
                    f"{tag}:a{day}:{i}",
                    w,
                    "eco_action",
                    {"action": "bus_ride", "date": f"2026-05-0{day + 1}"},
                )
                for i, w in enumerate(wallets)
            ]
        )
    app.execute_group([app.spend(f"{tag}:s{i}", w, shop, 1, f"r{i}") for i, w in enumerate(wallets[::2])])
    return wallets


def balances_from_app(app: CityApplication, wallets: list[UUID]) -> dict[str, tuple[int, int]]:
    """pseudonym -> (balance, held), as the balances read model names wallets."""
    return {app.pseudonym(w): (app.wallet(w).balance, app.wallet(w).held) for w in wallets}


def nine_and_ten(app: CityApplication) -> list[UUID]:
    """Nineteen wallets: the first nine earn under civic-event (three times each), the other
    ten under eco-actions, all on 4 May 2026; returns the wallet ids."""
    consent = app.city.config.consent_versions[-1]
    opened = app.execute_group([app.open_wallet(f"w{i}", "resident", consent) for i in range(19)])
    wallets = [UUID(r["wallet_id"]) for r in opened if isinstance(r, dict)]
    date = {"date": "2026-05-04"}
    app.execute_group(
        [
            app.record_activity(f"c{i}:{n}", w, "civic_event", {"subject": f"clean-{n}", **date})
            for i, w in enumerate(wallets[:9])
            for n in range(3)
        ]
        + [
            app.record_activity(f"e{i}", w, "eco_action", {"action": "bus_ride", **date})
            for i, w in enumerate(wallets[9:])
        ]
    )
    return wallets


def exact_by_key(tx: Tx, city: str, metric: str) -> dict[str, tuple[int, int]]:
    """The read model's exact figures of `metric` over every day, per key: (value, distinct
    people). What the projection holds, before any disclosure control; never published."""
    values = tx.all(
        "SELECT key, SUM(value) FROM rm_cells WHERE city = ? AND metric = ? GROUP BY key", (city, metric)
    )
    people = dict(
        tx.all(
            "SELECT key, COUNT(DISTINCT wallet_id) FROM rm_cell_people WHERE city = ? AND metric = ? "
            "GROUP BY key",
            (city, metric),
        )
    )
    return {str(k): (int(v), int(people.get(k, 0))) for k, v in values}
