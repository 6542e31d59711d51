"""A rejected work log is appealed like an award; upheld, it mints the logged minutes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from uuid import UUID

import pytest

from aggregates.errors import InvalidInput, PreconditionFailed
from aggregates.workflow import WorkLog
from services.city import CityApplication
from services.history import history
from services.workflow import Workflow
from tests.integration.zwolle_season import START, Clock, ok, open_wallets, store_env, zwolle

STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=STORES)
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    return store_env(request, tmp_path)


def rejected_logs(
    app: CityApplication, wf: Workflow, clock: Clock, minutes: list[int]
) -> list[tuple[UUID, UUID]]:
    """(wallet, log) pairs, each log rejected by a coordinator."""
    wallets = open_wallets(app, "a", len(minutes))
    start = START.replace(hour=9)
    task = UUID(
        ok(
            app.execute(
                wf.post_task(
                    "task",
                    "neighbour-care",
                    "Holtenbroek",
                    start,
                    start + dt.timedelta(hours=4),
                    10,
                    "coord:anna",
                )
            )
        )["task_id"]
    )
    for i, w in enumerate(wallets):
        app.execute(wf.claim_task(f"c{i}", task, w))
    clock.set(start + dt.timedelta(hours=4))
    out = []
    for i, (w, m) in enumerate(zip(wallets, minutes, strict=True)):
        log = UUID(app.execute(wf.log_minutes(f"l{i}", task, w, m))["log_id"])
        app.execute(wf.reject_log(f"r{i}", log, "coord:anna", "no sign-in sheet for this visit"))
        out.append((w, log))
    return out


def test_an_upheld_appeal_mints_the_logged_minutes_through_the_rule(env: dict[str, str]) -> None:
    clock = Clock()
    with zwolle(env, clock) as (app, wf):
        ((wallet, log),) = rejected_logs(app, wf, clock, [135])
        assert app.wallet(wallet).balance == 0  # rejected: nothing minted
        clock.set(clock() + dt.timedelta(days=3))
        filed = app.execute(
            app.file_appeal(
                "f", wallet, "work_log", str(log), "the sheet was signed; here is a photo", str(wallet)
            )
        )
        appeal_id = UUID(filed["appeal_id"])
        before = app.recorder.max_notification_id()
        decided = app.execute(
            app.decide_appeal("d", appeal_id, True, "the photo shows the signed sheet", "ombudsman:carla")
        )

        assert decided["status"] == "upheld"
        assert decided["remedy"]["amount"] == 225  # 135 minutes at 1.00 per hour = 2.25, in hundredths
        assert decided["remedy"]["explanation"].startswith(
            "appeal upheld against the rejection of these minutes: 2 h 15 min"
        )
        # The holder reads it in Zwolle's language, the award inside it too.
        (minted,) = [e for e in history(app, wallet, "nl-NL") if e.type == "Wallet.Credited"]
        assert minted.explanation.startswith(
            "bezwaar gegrond tegen de afwijzing van deze minuten: 2 u 15 min goedgekeurd werk ("
        )
        assert (
            " levert 225 op (100 per uur, naar rato per minuut, naar beneden afgerond)" in minted.explanation
        )
        assert app.wallet(wallet).balance == 225
        assert len(app.wallet(wallet).lots) == 1  # a lot like any other, from the decision day
        assert app.wallet(wallet).lots[0].base_on == clock().date()
        stored = app.notification_log.select(before + 1, 10)
        # Decision, work log, the person's day, credit with its lot, the draw on the rule's
        # fund and the receipt: one save.
        assert sorted(n.topic.split(":")[-1] for n in stored) == [
            "Appeal.Decided",
            "Fund.Drawn",
            "Receipt.Recorded",
            "Wallet.Credited",
            "Wallet.LotOpened",
            "WorkDay.MinutesApproved",
            "WorkDay.Opened",
            "WorkLog.Reinstated",
        ]
        credited = [e for e in app.events.get(wallet) if type(e).__qualname__ == "Wallet.Credited"]
        assert [e.activity_id for e in credited] == [f"appeal:{appeal_id}"]
        assert credited[0].rule_id == "approved-hours"
        entry = app.repository.get(log)
        assert isinstance(entry, WorkLog) and entry.status == "approved"
        # A retried decision returns the stored result; nothing is minted twice.
        assert (
            app.execute(
                app.decide_appeal("d", appeal_id, True, "the photo shows the signed sheet", "ombudsman:carla")
            )
            == decided
        )
        assert app.wallet(wallet).balance == 225


def test_a_denied_appeal_mints_nothing_and_an_appeal_never_mints_twice(env: dict[str, str]) -> None:
    clock = Clock()
    with zwolle(env, clock) as (app, wf):
        (first, log1), (second, log2) = rejected_logs(app, wf, clock, [60, 90])
        denied = UUID(
            app.execute(app.file_appeal("f1", first, "work_log", str(log1), "I was there", str(first)))[
                "appeal_id"
            ]
        )
        assert (
            app.execute(
                app.decide_appeal("d1", denied, False, "nobody saw the work done", "ombudsman:carla")
            )["status"]
            == "denied"
        )
        assert app.wallet(first).balance == 0

        # Someone else's log cannot be reinstated through one's own appeal; the appeal stays open.
        wrong = UUID(
            app.execute(app.file_appeal("f2", first, "work_log", str(log2), "mine too", str(first)))[
                "appeal_id"
            ]
        )
        with pytest.raises(InvalidInput, match="another wallet"):
            app.execute(app.decide_appeal("d2", wrong, True, "ok", "ombudsman:carla"))
        assert app.appeal(wrong).status == "open"

        right = UUID(
            app.execute(app.file_appeal("f3", second, "work_log", str(log2), "signed", str(second)))[
                "appeal_id"
            ]
        )
        app.execute(app.decide_appeal("d3", right, True, "signed after all", "ombudsman:carla"))
        again = UUID(
            app.execute(app.file_appeal("f4", second, "work_log", str(log2), "again", str(second)))[
                "appeal_id"
            ]
        )
        with pytest.raises(PreconditionFailed, match="not rejected"):
            app.execute(app.decide_appeal("d4", again, True, "again", "ombudsman:dirk"))
        assert app.wallet(second).balance == 150
