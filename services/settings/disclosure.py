"""Each city's disclosure policy, from its `[disclosure]` terms and its partners' caps.

The sensitivity of a metric is the most one person adds to one period's cells of it,
summed over its keys (a person may use two rules in a day: the bound is on their day,
not on one rule). Where a city file caps what one person can move, the bound comes from
the cap; otherwise from `[disclosure]`:

- redemptions at partner shops per week: the partner's `per_redemption_cap` (the largest
  over the partners that accept this city's tokens) × `max_redemptions_per_week`;
- a month's money supply: `max_holding` (one person's holding at month end);
- appeals: `max_appeals_per_week`, and their waits `max_appeals_per_week` ×
  `appeal_wait_cap_hours` (a wallet's further appeals in a week are not counted and each wait
  is capped when summed, so these bounds are enforced, not assumed);
- the others straight from `[disclosure]`; "active" counts a person once, so 1.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from projections.disclosure import Policy
from services.settings.cities import PACKAGED_CITIES, CityConfig, city_keys, load_city


def policy_for(config: CityConfig, partners: list[CityConfig]) -> Policy:
    d = config.disclosure
    caps = [
        p.federation.accepts[config.key].per_redemption_cap
        for p in partners
        if config.key in p.federation.accepts
    ]
    per_redemption = max(caps) if caps else d.max_spend_per_day
    return Policy(
        epsilon_per_day=d.epsilon_per_day,
        epsilon_per_week=d.epsilon_per_week,
        epsilon_per_month=d.epsilon_per_month,
        k=d.k,
        grace=dt.timedelta(hours=d.grace_hours),
        bounds={
            "issued_by_rule": d.max_award_per_day,
            "spent_by_category": d.max_spend_per_day,
            "active": 1,
            "vouchers_redeemed": d.max_redemptions_per_day,
            "prizes_redeemed": d.max_redemptions_per_day,
            "redemptions_by_partner": per_redemption * d.max_redemptions_per_week,
            "appeals": d.max_appeals_per_week,
            "appeals_decided": d.max_appeals_per_week,
            "appeal_wait_hours": d.max_appeals_per_week * d.appeal_wait_cap_hours,
            "month_minted": d.max_minted_per_month,
            "month_spent": d.max_spent_per_month,
            "month_tax": d.max_spent_per_month,
            "month_lapsed": d.max_holding,
            "month_supply": d.max_holding,
        },
    )


def disclosure_policies(cities_dir: Path = PACKAGED_CITIES) -> dict[str, Policy]:
    """city key -> its policy, for every city in `cities_dir`."""
    configs = [load_city(key, cities_dir).config for key in city_keys(cities_dir)]
    return {c.key: policy_for(c, configs) for c in configs}
