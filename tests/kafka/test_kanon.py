"""k people per cell: a cell from 9 people is suppressed, one from 10 is published with noise."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from projections.dashboard_view import city_dashboard
from projections.log_source import catch_up_log
from projections.projector import Projector
from projections.store import Store
from services.city import CityApplication
from services.demo.clock import scenario_time
from services.settings.cities import load_city, load_settings
from services.settings.disclosure import disclosure_policies
from tests.kafka.activity import nine_and_ten

MAY_4 = dt.datetime(2026, 5, 4, 9, 0, tzinfo=dt.UTC)
MAY_6 = dt.datetime(2026, 5, 6, 9, 0, tzinfo=dt.UTC)  # 4 May closed


def test_nine_people_are_suppressed_and_ten_are_shown(tmp_path: Path) -> None:
    settings = load_settings({"CIVFED_DATA_DIR": str(tmp_path)})
    app = CityApplication(load_city("bologna"), settings.eventsourcing_env("bologna"))
    # Nine people earn under the civic-event rule (several times each), ten under eco-actions.
    with scenario_time(lambda: MAY_4):
        nine_and_ten(app)
    store = Store(f"sqlite:///{tmp_path / 'rm.sqlite'}")
    catch_up_log(Projector(store), app, "bologna")
    policy = disclosure_policies()["bologna"]
    with store.transaction() as tx:
        board = city_dashboard(tx, "bologna", policy, MAY_6)
        raw = tx.one(
            "SELECT SUM(value) FROM rm_cells WHERE metric = 'issued_by_rule' AND key = 'civic-event'"
        )
    app.close()

    cells = board["cells"]["issued_by_rule"]["2026-05-04"]
    assert raw is not None and raw[0] > 0  # the read model has the figure; publishing withholds it
    assert cells["civic-event"] == {"suppressed": True, "reason": "fewer than 10 people"}
    assert board["issued_by_rule"]["civic-event"] == {"suppressed": True, "reason": "no published cell"}
    assert cells["eco-actions"]["protection"]["method"] == "laplace"
    assert cells["eco-actions"]["protection"]["sensitivity"] == policy.bounds["issued_by_rule"]
    assert board["issued_by_rule"]["eco-actions"]["value"] == cells["eco-actions"]["value"]
    # The day's head count is one cell of all 19 people, so it is shown, noised with sensitivity 1.
    active = board["daily"]["active"]["2026-05-04"]
    assert active["protection"]["sensitivity"] == 1 and active["protection"]["k"] == 10
