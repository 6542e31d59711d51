"""Each city's wallet from opening to closing: earn, spend, vouchers once and until expiry."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from citykit import Cities, event_names, merchant, open_wallet, wallet_state

from aggregates.errors import InsufficientBalance, VoucherAlreadyRedeemed, VoucherExpired, WalletClosed

EARN: dict[str, tuple[str, dict[str, Any], int]] = {
    "vienna": ("trip", {"mode": "bike", "distance_m": 500_000, "date": "2026-05-04"}, 5),
    "rome": ("eco_action", {"action": "recycling_drop_off", "date": "2026-05-04"}, 10),
    "sint_niklaas": ("bike_engraving", {"subject": "SN-9", "date": "2026-05-04"}, 500),
    "bologna": ("eco_action", {"action": "recycling_drop_off", "date": "2026-05-04"}, 8),
}


@pytest.mark.parametrize("city", sorted(EARN))
def test_wallet_lifecycle(cities: Cities, city: str) -> None:
    app = cities.open(city)
    clock = cities.clock
    ttl = app.city.config.voucher_ttl_hours
    w, shop = open_wallet(app, "w"), merchant(app, "shop", local=True)
    activity, fields, earned = EARN[city]
    award = app.execute(app.record_activity("earn", w, activity, fields))
    assert award["amount"] == earned
    assert award["explanation"]

    assert app.execute(app.spend("s1", w, shop, 1, "r1")) == {"spent": 1, "available": earned - 1}
    with pytest.raises(InsufficientBalance):
        app.execute(app.spend("s2", w, shop, earned, "r2"))

    v1 = UUID(app.execute(app.issue_voucher("v1", w, 1))["voucher_id"])
    v2 = UUID(app.execute(app.issue_voucher("v2", w, 2))["voucher_id"])
    assert wallet_state(app, w)["available"] == earned - 4

    clock.advance(hours=ttl, microseconds=-1)
    assert app.execute(app.redeem_voucher("r-v1", v1, shop)) == {"amount": 1, "merchant_id": str(shop)}
    with pytest.raises(VoucherAlreadyRedeemed):
        app.execute(app.redeem_voucher("r-v1-again", v1, shop))
    clock.advance(microseconds=1)
    with pytest.raises(VoucherExpired):
        app.execute(app.redeem_voucher("r-v2", v2, shop))
    assert event_names(app, v2) == ["Issued"]
    state = wallet_state(app, w)
    # The expired voucher's two tokens are still the holder's, released at the next spend.
    assert (state["balance"], state["available"]) == (earned - 2, earned - 4)
    app.execute(app.spend("s3", w, shop, earned - 2, "r3"))
    assert wallet_state(app, w)["balance"] == 0

    # Nothing left to spend, so leaving closes the wallet at once: no final spend window.
    assert app.execute(app.close_wallet("close", w)) == {
        "closed": True,
        "balance": 0,
        "final_spend_until": None,
    }
    with pytest.raises(WalletClosed):
        app.execute(app.record_activity("earn-after", w, activity, fields))
    assert event_names(app, w)[-1] == "Closed"
