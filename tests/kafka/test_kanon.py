"""k-anonymity: a figure from 9 people is suppressed, one from 10 is shown."""

from __future__ import annotations

from pathlib import Path

from projections.dashboard_view import city_dashboard
from projections.log_source import catch_up_log
from projections.projector import Projector
from projections.store import Store
from services.city import CityApplication
from services.settings.cities import load_city, load_settings
from tests.kafka.activity import nine_and_ten


def test_nine_people_are_suppressed_and_ten_are_shown(tmp_path: Path) -> None:
    settings = load_settings({"CIVFED_DATA_DIR": str(tmp_path)})
    app = CityApplication(load_city("bologna"), settings.eventsourcing_env("bologna"))
    # Nine people earn under the civic-event rule (several times each), ten under eco-actions.
    nine_and_ten(app)
    store = Store(f"sqlite:///{tmp_path / 'rm.sqlite'}")
    catch_up_log(Projector(store), app, "bologna")
    with store.transaction() as tx:
        board = city_dashboard(tx, "bologna")
        raw = tx.one(
            "SELECT SUM(value) FROM rm_cells WHERE metric = 'issued_by_rule' AND key = 'civic-event'"
        )
    app.close()

    civic, eco = board["issued_by_rule"]["civic-event"], board["issued_by_rule"]["eco-actions"]
    assert raw is not None and raw[0] > 0  # the read model has the figure; publishing withholds it
    assert civic == {"suppressed": True, "reason": "fewer than 10 people"}
    assert eco["people"] == 10 and eco["value"] > 0
    # The day's total is built from all 19 people, so it is shown.
    assert board["daily"]["active"]  # at least one day
    assert all(c.get("people") == 19 for c in board["daily"]["active"].values())
