"""The finance page's k-shops rule on the real read models (SQLite): only shops paid the
city's own tokens count towards a month's k shops; a partner city's redemptions credited to
shops, and reversals, do not, since the month's redemptions do not include them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from civfed.v1 import events_pb2
from projections.finance_view import shops_per_month
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
