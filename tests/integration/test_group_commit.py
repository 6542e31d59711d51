"""Group commit (`execute_group`) gives exactly what one command per save gives."""

from __future__ import annotations

from collections import Counter

import pytest
from city_scenarios import normalised, run_grouped, run_singly, season
from citykit import Cities, log_types, wallet_state

from aggregates.errors import DomainError

CITIES = ["vienna", "rome", "sint_niklaas", "bologna"]


@pytest.mark.parametrize("city", CITIES)
def test_grouped_results_equal_single_execution(cities: Cities, other_cities: Cities, city: str) -> None:
    single_app = cities.open(city)
    group_app = other_cities.open(city)
    single, single_wallets = season(single_app, run_singly(single_app))
    grouped, group_wallets = season(group_app, run_grouped(group_app))

    assert normalised(grouped) == normalised(single)
    refusals = {type(r).__name__ for r in single if isinstance(r, DomainError)}
    assert {"InsufficientBalance", "VoucherAlreadyRedeemed", "WalletClosed"} <= refusals
    assert len(refusals) >= 4

    def settled(state: dict[str, object]) -> dict[str, object]:
        holds = state["holds"]
        assert holds == {}
        return state

    assert [settled(wallet_state(single_app, w)) for w in single_wallets] == [
        settled(wallet_state(group_app, w)) for w in group_wallets
    ]
    # The same events were written, and nothing else.
    assert Counter(log_types(group_app)) == Counter(log_types(single_app))


@pytest.mark.parametrize("city", CITIES)
def test_a_group_of_retries_returns_the_stored_results_and_writes_nothing(cities: Cities, city: str) -> None:
    app = cities.open(city)
    first, _ = season(app, run_grouped(app))
    stored = log_types(app)
    # Retrying the whole season, grouped or singly, replays every stored result.
    again_grouped, _ = season(app, run_grouped(app))
    again_single, _ = season(app, run_singly(app))
    assert normalised(again_grouped) == normalised(first)
    assert normalised(again_single) == normalised(first)
    assert log_types(app) == stored
