"""Two applications on one store (two processes of the same city) stay consistent."""

from __future__ import annotations

import pytest
from citykit import Cities, log_count, merchant, open_wallet, wallet_state

from aggregates.errors import IdempotencyConflict, InsufficientBalance

TRIP = {"mode": "bike", "distance_m": 200_000, "date": "2026-05-04"}  # 40 kg: 2 tokens


def test_a_key_used_by_one_writer_replays_at_the_other(cities: Cities) -> None:
    one, two = cities.open("vienna"), cities.open("vienna")
    w, shop = open_wallet(one, "w"), merchant(one, "shop")
    one.execute(one.record_activity("t", w, "trip", TRIP))
    assert wallet_state(two, w)["balance"] == 2  # the second writer has now read the wallet

    first = one.execute(one.spend("s1", w, shop, 1, "r1"))
    count = log_count(one)
    # The second writer did not see the receipt beforehand: its save collides and it looks again.
    assert two.execute(two.spend("s1", w, shop, 1, "r1")) == first
    with pytest.raises(IdempotencyConflict):
        two.execute(two.spend("s1", w, shop, 2, "r1"))
    assert log_count(one) == count
    assert wallet_state(one, w)["balance"] == wallet_state(two, w)["balance"] == 1


def test_a_stale_writer_cannot_overspend(cities: Cities) -> None:
    one, two = cities.open("vienna"), cities.open("vienna")
    w, shop = open_wallet(one, "w"), merchant(one, "shop")
    one.execute(one.record_activity("t", w, "trip", TRIP))
    assert wallet_state(two, w)["balance"] == 2
    one.execute(one.spend("s1", w, shop, 2, "r1"))
    with pytest.raises(InsufficientBalance):
        two.execute(two.spend("s2", w, shop, 1, "r2"))
    assert wallet_state(one, w)["balance"] == wallet_state(two, w)["balance"] == 0


def test_a_rule_change_approved_at_one_writer_reaches_the_other(cities: Cities) -> None:
    one, two = cities.open("bologna"), cities.open("bologna")
    points = {"points": {"bike_to_work": 6, "bus_ride": 5, "recycling_drop_off": 8}}
    today = cities.clock().date()
    proposed = one.execute(
        one.propose_rule_change("p", "eco-actions", "change", "", "", points, {}, "more", today, "staff:a")
    )
    one.execute(one.approve_rule_change("ok", proposed["proposal_id"], "Delibera 3", "staff:b"))
    w = open_wallet(two, "w")
    bus = {"action": "bus_ride", "date": today.isoformat()}
    # The other writer still holds the rulebook it started with, until it looks again (the
    # node's sweeper does so every round).
    assert two.rulebook.get("eco-actions").version == 1
    two.refresh_rulebook()
    assert two.execute(two.record_activity("b", w, "eco_action", bus))["rule_version"] == 2
