"""A workflow city's node: the balance over gRPC is today's value and its published schedule."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from uuid import UUID

from civfed.v1 import wallet_pb2
from services.demo.local_federation import LocalFederation
from services.grpc.auth import bearer
from tests.e2e.flows import open_wallet
from tests.integration.zwolle_season import START, Clock, work_day


def test_zwolle_balance_over_grpc_shows_the_value_on_the_nodes_day(tmp_path: Path) -> None:
    fed = LocalFederation(tmp_path, ["zwolle"])
    running = fed.start_in_process("zwolle")
    stubs = fed.stubs("zwolle")
    try:
        opened = open_wallet(stubs, "w1", "zwolle-werkt-2026-09")
        app = running.node.app
        assert app.workflow is not None
        clock = Clock()
        app.clock = clock  # the node's own day, moved by the test
        work_day(app, app.workflow, clock, "d0", START, {UUID(opened.wallet_id): 600})
        ask = wallet_pb2.GetBalanceRequest(wallet_id=opened.wallet_id)

        today = stubs.wallet.GetBalance(ask, metadata=bearer(opened.holder_token), timeout=5)
        assert (today.balance.units, today.available.units) == (1000, 1000)
        assert today.balance.currency == "Zwolse uren"
        # The published schedule: 12 steps of 30 days, each the floor of the straight line.
        assert "floor" in today.rounding
        assert len(today.schedule) == 12
        first = today.schedule[0]
        assert first.on == (START + dt.timedelta(days=30)).date().isoformat()
        assert first.value.units == 1000 * (2555 - 30) // 2555
        assert first.depreciation.units == 1000 - first.value.units
        values = [step.value.units for step in today.schedule]
        assert values == sorted(values, reverse=True)
        assert sum(step.depreciation.units for step in today.schedule) == 1000 - values[-1]

        clock.set(START + dt.timedelta(days=365))
        later = stubs.wallet.GetBalance(ask, metadata=bearer(opened.holder_token), timeout=5)
        # floor(1000 × 2190 / 2555): depreciation shows before any event records it.
        assert (later.balance.units, later.available.units, later.held.units) == (857, 857, 0)
        assert app.wallet(UUID(opened.wallet_id)).balance == 1000
    finally:
        stubs.close()
        fed.stop_all()
