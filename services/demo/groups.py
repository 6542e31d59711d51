"""The demo's commands run in groups: one atomic save per group, progress reported per group."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from aggregates.errors import DomainError
from services.city import CityApplication
from services.unit_of_work import Job

GROUP = 500
Step = Callable[[int], None]


def run_group(app: CityApplication, cmds: list[Job], step: Step) -> list[dict[str, Any] | DomainError]:
    results: list[dict[str, Any] | DomainError] = []
    for i in range(0, len(cmds), GROUP):
        chunk = cmds[i : i + GROUP]
        results += app.execute_group(chunk)
        step(len(chunk))
    return results


def ids(results: list[dict[str, Any] | DomainError], field: str) -> list[UUID]:
    return [UUID(r[field]) for r in results if isinstance(r, dict)]


def open_residents(app: CityApplication, people: int, step: Step) -> list[UUID]:
    """`people` resident wallets under the city's current consent text; returns their ids."""
    consent = app.city.config.consent_versions[-1]
    opened = run_group(app, [app.open_wallet(f"demo:w{i}", "resident", consent) for i in range(people)], step)
    return ids(opened, "wallet_id")
