"""In a group commit the city's funds hear of every token that left a wallet exactly once:
the step after each command looks only at the wallets that command touched, never at every
aggregate the group holds, and a wallet touched twice in the group is told of twice."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from citykit import Cities, open_wallet

from tests.integration.test_funds import check_conservation, eco, report, small_city


def test_a_group_of_spends_and_closings_releases_each_token_once(cities: Cities, tmp_path: Path) -> None:
    app = cities.open("bologna", small_city(tmp_path, 1000))
    w1, w2, w3, w4 = (open_wallet(app, f"w{i}") for i in range(1, 5))
    shop = UUID(app.execute(app.register_merchant("m1", "Forno", "food", True))["merchant_id"])
    for who in (w1, w2, w3, w4):
        for n in range(2):
            eco(app, f"a{who}:{n}", who, "recycling_drop_off")
    results = app.execute_group(
        [
            app.spend("s1", w1, shop, 5, "r1"),
            app.spend("s2", w2, shop, 3, "r2"),
            app.spend("s3", w1, shop, 4, "r3"),  # the same wallet again, later in the group
            app.close_wallet("c3", w3),  # its 16 tokens lapse
            app.spend("s4", w4, shop, 16, "r4"),
            app.spend("s5", w2, shop, 99, "r5"),  # refused: more than the wallet holds
        ]
    )
    assert [isinstance(r, dict) for r in results] == [True] * 5 + [False]
    r = report(app)
    assert (r.issued, r.redeemed, r.lapsed) == (64, 5 + 3 + 4 + 16, 16)
    assert r.outstanding == 64 - 28 - 16
    assert [app.wallet(w).balance for w in (w1, w2, w3, w4)] == [7, 13, 0, 0]
    check_conservation(app)
