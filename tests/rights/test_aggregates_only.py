"""Aggregates only: published dashboards show no figure drawn from fewer than 10 people, no head
count and no pseudonym at all, and say of every figure how it was protected; appeals are
counted the same way. (The differencing attacks are in test_differencing_attacks.py.)"""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from pathlib import Path
from typing import Any

from projections.disclosure import K_MIN
from projections.log_source import catch_up_log
from projections.projector import Projector
from projections.store import Store
from services.demo.clock import scenario_time
from tests.dashboard.conftest import serving
from tests.kafka.activity import nine_and_ten
from tests.rights.apps import city_app

MAY_4 = dt.datetime(2026, 5, 4, 9, 0, tzinfo=dt.UTC)


def cells(value: Any) -> list[dict[str, Any]]:
    """Every published figure in a dashboard document."""
    if isinstance(value, dict):
        if "suppressed" in value or "value" in value:
            return [value]
        return [c for v in value.values() for c in cells(v)]
    if isinstance(value, list):
        return [c for v in value for c in cells(v)]
    return []


def test_dashboards_publish_only_figures_from_ten_or_more_people(tmp_path: Path) -> None:
    app = city_app("bologna", tmp_path)
    # Nine people under one rule (several times each), ten under the other; nine appeal.
    with scenario_time(lambda: MAY_4):
        wallets = nine_and_ten(app)
        for i, w in enumerate(wallets[:9]):
            app.execute(app.file_appeal(f"a{i}", w, "award", "x", "wrong", "holder"))
    store = Store(f"sqlite:///{tmp_path / 'rm.sqlite'}")
    catch_up_log(Projector(store), app, "bologna")
    store.close()
    app.close()

    store = Store(f"sqlite:///{tmp_path / 'rm.sqlite'}")  # connects in the server's thread
    with serving(store, clock=lambda: MAY_4 + dt.timedelta(days=8)) as url:  # its week closed
        with urllib.request.urlopen(f"{url}/api/city/bologna", timeout=10) as r:
            body = r.read().decode()
        with urllib.request.urlopen(f"{url}/api/federation", timeout=10) as r:
            federation = r.read().decode()
        with urllib.request.urlopen(f"{url}/city/bologna?lang=en", timeout=10) as r:
            page = r.read().decode()

    board = json.loads(body)
    day = board["cells"]["issued_by_rule"]["2026-05-04"]
    assert day["civic-event"] == {"suppressed": True, "reason": f"fewer than {K_MIN} people"}
    assert day["eco-actions"]["protection"]["method"] == "laplace"
    assert board["cells"]["appeals"]["2026-05-04"][""] == {
        "suppressed": True,
        "reason": "fewer than 10 people",
    }
    assert board["appeals"] == {"suppressed": True, "reason": "no published cell"}
    published = cells(board) + cells(json.loads(federation))
    assert len(published) > 5
    # Every figure shown says how it was protected; none carries a head count.
    methods = {"laplace", "sum of published cells", "ratio of published sums", "derived from published cells"}
    for c in published:
        assert "people" not in c
        if not c.get("suppressed"):
            assert c["protection"]["method"] in methods, c
            if c["protection"]["method"] == "laplace":
                assert c["protection"]["k"] >= K_MIN and c["protection"]["epsilon"] > 0
    # Suppressed cells carry neither the figure nor the head count.
    assert all(set(c) == {"suppressed", "reason"} for c in published if c.get("suppressed"))
    assert "ε = 2.0 per day" in page
    # No pseudonym leaves the read models through the dashboards.
    assert [str(w) for w in wallets if str(w) in body + federation] == []
