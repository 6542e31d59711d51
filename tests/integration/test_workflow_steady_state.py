"""Three seven-year periods of constant issuance through the city application.

Ten residents each work ten approved hours on the first working day of every
month, 252 months in all. The report's projected steady state (issuance per
year × period / 2) is checked against the supply the same run reaches.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from aggregates.depreciation import total_at
from projections.store import Store
from services.settings.cities import load_settings
from services.workflow_report import equilibrium_report
from tests.integration.test_workflow_report import POLICY, exact
from tests.integration.zwolle_season import START, Clock, open_wallets, work_day, zwolle

MONTHS = 3 * 7 * 12
PEOPLE = 10
PER_MONTH = PEOPLE * 1000  # ten hours each: 10.00 tokens, in hundredths
AFTER = dt.datetime(2050, 1, 1, tzinfo=dt.UTC)  # every month of the run closed


def test_supply_converges_to_the_projected_steady_state(tmp_path: Path) -> None:
    # As nodes run it: SQLite with the aggregate cache (see Settings.eventsourcing_env).
    env = load_settings({"CIVFED_DATA_DIR": str(tmp_path)}).eventsourcing_env("zwolle")
    clock = Clock()
    with zwolle(env, clock) as (app, wf):
        wallets = open_wallets(app, "p", PEOPLE)
        for i in range(MONTHS):
            year, month = divmod(START.month - 1 + i, 12)
            first = dt.datetime(START.year + year, month + 1, 1, 9, tzinfo=dt.UTC)
            work_day(app, wf, clock, f"m{i}", first, dict.fromkeys(wallets, 600))
        # Without noise: this checks the report's arithmetic against the ledger over 21 years.
        published = Store(f"sqlite:///{tmp_path / 'published.sqlite'}")
        report = equilibrium_report(app, "zwolle", published, POLICY, AFTER, exact)
        published.close()
        assert report is not None
        months = report["months"]
        assert len(months) == MONTHS

    per_year = PER_MONTH * 12
    assert report["issuance_per_year"]["value"] == per_year
    projected = report["steady_state_supply"]["value"]
    assert projected == per_year * 2555 // (2 * 365) == 420_000

    # Tolerance, stated: tokens are minted once a month, so the supply at a month's
    # end sits up to one month's issuance from the continuous formula; and each of
    # the at most 84 live lots per wallet loses under one unit to rounding down.
    tolerance = PER_MONTH + PEOPLE * 84
    for m in months[7 * 12 :]:  # once the first lots have run out, every month
        assert abs(m["supply"]["value"] - projected) <= tolerance, (m["month"], m["supply"], projected)
        assert abs(m["depreciated"]["value"] - PER_MONTH) <= tolerance  # issuance and depreciation balance
    # Growing in the first period, flat (within rounding) in the two that follow.
    assert months[12]["supply"]["value"] < months[6 * 12]["supply"]["value"]
    tail = [m["supply"]["value"] for m in months[2 * 7 * 12 :]]
    assert max(tail) - min(tail) <= tolerance
    # And the report's closing supply is what the wallets are worth.
    with zwolle(env, clock) as (app, _):
        end = dt.date.fromisoformat(months[-1]["month"] + "-01") + dt.timedelta(days=31)
        end = end.replace(day=1)
        assert months[-1]["supply"]["value"] == sum(total_at(app.wallet(w).lots, end) for w in wallets)
