"""The finance page's k-shops rule on the real read models (SQLite): only shops paid the
city's own tokens count towards a month's k shops; a partner city's redemptions credited to
shops, and reversals, do not, since the month's redemptions do not include them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from civfed.v1 import events_pb2
from projections.disclosure import Policy
from projections.finance_view import SEVERAL, UNKNOWN, finance_dashboard, shops_per_month
from projections.projector import Projector
from projections.store import Store


def paid(n: int, shop: str, kind: str, amount: int, when: dt.datetime) -> events_pb2.Event:
    e = events_pb2.Event(
        city="sint_niklaas", notification_id=n, aggregate_id=shop, version=n, type="Merchant.Paid"
    )
    e.payload.amounts["amount"] = amount
    e.payload.refs["kind"] = kind
    e.time.FromDatetime(when)
    return e


def test_only_shops_paid_the_citys_own_tokens_count_towards_k_shops(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'rm.sqlite'}")
    projector = Projector(store)
    may = dt.datetime(2026, 5, 10, 12, tzinfo=dt.UTC)
    events = [paid(1, "shop-0", "payment", 40, may)]
    # Ten other shops took only Vienna's tokens: credited by the partner redemptions.
    events += [paid(2 + i, f"shop-{i + 1}", "redemption", 50, may) for i in range(10)]
    events.append(paid(20, "shop-11", "prize", 30, may + dt.timedelta(days=15)))
    with store.transaction() as tx:
        for model in projector.models:
            for e in events:
                model.apply(tx, e)
    with store.transaction() as tx:
        assert shops_per_month(tx, "sint_niklaas") == {"2026-05": 2}
    store.close()


def credited(n: int, wallet: str, rule: str, fund: str, amount: int, when: dt.datetime) -> events_pb2.Event:
    e = events_pb2.Event(
        city="bologna", notification_id=n, aggregate_id=wallet, version=n, type="Wallet.Credited"
    )
    e.payload.amounts["amount"] = amount
    e.payload.refs["rule_id"] = rule
    if fund:
        e.payload.refs["fund"] = fund
    e.time.FromDatetime(when)
    return e


def test_awards_are_grouped_by_the_fund_the_stream_names_and_never_split_by_guess(tmp_path: Path) -> None:
    """A rule whose awards named one fund counts under it; a rule moved between funds counts
    under "several funds", not split by guess; awards whose fund the stream never named are
    said to have none recorded. Each month is the sum of its published days, nothing else."""
    store = Store(f"sqlite:///{tmp_path / 'rm.sqlite'}")
    projector = Projector(store)
    may_4, may_5 = dt.datetime(2026, 5, 4, 9, tzinfo=dt.UTC), dt.datetime(2026, 5, 5, 9, tzinfo=dt.UTC)
    events = []
    for i in range(12):
        events.append(credited(len(events) + 1, f"w{i}", "eco-actions", "eu_grant", 3, may_4))
        events.append(credited(len(events) + 1, f"w{i}", "civic-event", "eu_grant", 5, may_4))
        events.append(credited(len(events) + 1, f"w{i}", "civic-event", "city", 5, may_5))
        events.append(credited(len(events) + 1, f"w{i}", "old-rule", "", 2, may_5))
    with store.transaction() as tx:
        for model in projector.models:
            for e in events:
                model.apply(tx, e)
    june = dt.datetime(2026, 6, 2, tzinfo=dt.UTC)
    with store.transaction() as tx:
        d = finance_dashboard(tx, "bologna", Policy(bounds={"issued_by_rule": 100}), june, lambda v, _s: v)
    awarded = {f["fund_id"]: f["awarded_by_month"]["2026-05"] for f in d["funds"]}
    assert awarded["eu_grant"]["value"] == 12 * 3
    assert awarded[SEVERAL]["value"] == 12 * 5 * 2
    assert awarded[UNKNOWN]["value"] == 12 * 2
    assert all(f["protection"]["method"] == "sum of published cells" for f in awarded.values())
    assert d["redeemed_by_month"]["2026-05"] == {"suppressed": True, "reason": "fewer than 10 shops"}
    store.close()
