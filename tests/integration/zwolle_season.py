"""A controllable clock and a few helpers to run Zwolle's workflow in tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from services.city import CityApplication
from services.settings.cities import load_city, load_settings
from services.workflow import Workflow

START = dt.datetime(2026, 9, 1, 9, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self, now: dt.datetime = START) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def set(self, when: dt.datetime) -> None:
        self.now = when


def store_env(request: pytest.FixtureRequest, tmp_path: Path, name: str = "zwolle") -> dict[str, str]:
    if request.param == "postgres":
        return load_settings(request.getfixturevalue("pg_env")).eventsourcing_env(name)
    return load_settings({"CIVFED_DATA_DIR": str(tmp_path)}).eventsourcing_env(name)


@contextmanager
def zwolle(env: dict[str, str], clock: Clock) -> Iterator[tuple[CityApplication, Workflow]]:
    app = CityApplication(load_city("zwolle"), env, clock=clock)
    assert app.workflow is not None
    try:
        yield app, app.workflow
    finally:
        app.close()


def ok(result: Any) -> dict[str, Any]:
    assert isinstance(result, dict), result
    return result


def open_wallets(app: CityApplication, tag: str, n: int) -> list[UUID]:
    consent = app.city.config.consent_versions[-1]
    results = app.execute_group([app.open_wallet(f"{tag}:w{i}", "resident", consent) for i in range(n)])
    return [UUID(ok(r)["wallet_id"]) for r in results]


def work_day(
    app: CityApplication,
    wf: Workflow,
    clock: Clock,
    tag: str,
    day: dt.datetime,
    minutes: dict[UUID, int],
    approver: str = "coord:anna",
) -> dict[UUID, UUID]:
    """A task on `day` (09:00-19:00), claimed, logged and approved; returns log id per wallet."""
    clock.set(day.replace(hour=8))
    window = (day.replace(hour=9), day.replace(hour=19))
    task = UUID(
        ok(app.execute(wf.post_task(f"{tag}:task", "litter-picking", "Park", *window, 50, approver)))[
            "task_id"
        ]
    )
    clock.set(day.replace(hour=18))
    cmds = []
    for i, (wallet, mins) in enumerate(minutes.items()):
        cmds += [
            wf.claim_task(f"{tag}:claim{i}", task, wallet),
            wf.log_minutes(f"{tag}:log{i}", task, wallet, mins),
        ]
    logs = {
        wallet: UUID(ok(r)["log_id"])
        for wallet, r in zip(minutes, app.execute_group(cmds)[1::2], strict=True)
    }
    results = app.execute_group(
        [wf.approve_log(f"{tag}:ok{i}", log, approver) for i, log in enumerate(logs.values())]
    )
    for r in results:
        ok(r)
    return logs
