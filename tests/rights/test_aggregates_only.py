"""Aggregates only: published dashboards show no figure drawn from fewer than 10 people and
no pseudonym at all; appeals are counted the same way."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from projections.kanon import K_ANONYMITY
from projections.log_source import catch_up_log
from projections.projector import Projector
from projections.store import Store
from tests.dashboard.conftest import serving
from tests.kafka.activity import nine_and_ten
from tests.rights.apps import city_app


def cells(value: Any) -> list[dict[str, Any]]:
    """Every published cell in a dashboard document."""
    if isinstance(value, dict):
        if "suppressed" in value or "people" in value:
            return [value]
        return [c for v in value.values() for c in cells(v)]
    if isinstance(value, list):
        return [c for v in value for c in cells(v)]
    return []


def test_dashboards_publish_only_figures_from_ten_or_more_people(tmp_path: Path) -> None:
    app = city_app("bologna", tmp_path)
    # Nine people under one rule (several times each), ten under the other; nine appeal.
    wallets = nine_and_ten(app)
    for i, w in enumerate(wallets[:9]):
        app.execute(app.file_appeal(f"a{i}", w, "award", "x", "wrong", "holder"))
    store = Store(f"sqlite:///{tmp_path / 'rm.sqlite'}")
    catch_up_log(Projector(store), app, "bologna")
    store.close()
    app.close()

    store = Store(f"sqlite:///{tmp_path / 'rm.sqlite'}")  # connects in the server's thread
    with serving(store) as url:
        with urllib.request.urlopen(f"{url}/api/city/bologna", timeout=10) as r:
            body = r.read().decode()
        with urllib.request.urlopen(f"{url}/api/federation", timeout=10) as r:
            federation = r.read().decode()

    board = json.loads(body)
    assert board["issued_by_rule"]["civic-event"] == {"suppressed": True, "reason": "fewer than 10 people"}
    assert board["issued_by_rule"]["eco-actions"]["people"] == 10
    assert board["appeals"] == {"suppressed": True, "reason": "fewer than 10 people"}
    published = cells(board) + cells(json.loads(federation))
    assert len(published) > 5
    assert all(c.get("suppressed") or c["people"] >= K_ANONYMITY for c in published)
    # Suppressed cells carry neither the figure nor the head count.
    assert all(set(c) == {"suppressed", "reason"} for c in published if c.get("suppressed"))
    # No pseudonym leaves the read models through the dashboards.
    assert [str(w) for w in wallets if str(w) in body + federation] == []
