"""Funds and budgets behind every award (services/funds.py), on real stores.

A rule's fund runs out: further awards are refused with the fund named, recorded on the
wallet and appealable; a top-up decided by two people lets them continue; tokens that
lapse or depreciate give the budget back; and for each fund, at every step,
budget = awarded + remaining, with the fund's figures equal to what the wallets' own
events say they received from it and gave back.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from citykit import Cities, open_wallet

from aggregates.errors import FundExhausted, NotFound, SelfApproval, TopUpNotOpen
from aggregates.fund import Fund
from services.city import CityApplication
from services.event_log import read_events
from services.funds import RELEASE_OF, FundReport
from services.rule_changes import check_city_rules
from services.settings.cities import PACKAGED_CITIES, load_city
from services.settings.errors import ConfigError

DATE = "2026-05-04"


def small_city(tmp_path: Path, budget: int, extra: str = "", final_spend_days: int = 0) -> Path:
    """Bologna with a small EU grant and a desk for every activity."""
    root = tmp_path / "cities"
    shutil.copytree(PACKAGED_CITIES / "bologna", root / "bologna")
    path = root / "bologna" / "city.toml"
    text = path.read_text()
    text = text.replace('budget_eur = "200000"', f"budget = {budget}")
    text = text.replace(
        'consent_versions = ["bologna-2026-05"]',
        f'consent_versions = ["bologna-2026-05"]\nfinal_spend_days = {final_spend_days}',
    )
    text = text.replace("decimals = 0\n", "decimals = 0\n" + extra, 1)
    path.write_text(text)
    return root


def report(app: CityApplication, fund_id: str = "eu_grant") -> FundReport:
    return next(r for r in app.fund_reports() if r.fund_id == fund_id)


def check_conservation(app: CityApplication) -> None:
    """Each fund's figures from its own events agree with the wallets' events, and
    budget = awarded + remaining."""
    issued: dict[str, int] = {}
    released: dict[tuple[str, str], int] = {}
    for _, event in read_events(app):
        name = type(event).__qualname__
        if name == "Wallet.Credited" and getattr(event, "fund", ""):
            issued[event.fund] = issued.get(event.fund, 0) + event.amount
        how = RELEASE_OF.get(name.split(".")[-1]) if name.startswith("Wallet.") else None
        for fund_id, amount in (getattr(event, "funds", None) or {}).items():
            if how is not None and fund_id:
                released[(fund_id, how)] = released.get((fund_id, how), 0) + amount
    for r in app.fund_reports():
        assert r.budget == r.awarded + r.remaining
        assert r.remaining >= 0
        assert r.issued == issued.get(r.fund_id, 0)
        for how in ("redeemed", "lapsed", "depreciated"):
            assert getattr(r, how) == released.get((r.fund_id, how), 0), how
        assert r.outstanding == r.issued - r.redeemed - r.lapsed - r.depreciated


def eco(app: CityApplication, key: str, wallet: UUID, action: str) -> dict[str, Any]:
    return app.execute(app.record_activity(key, wallet, "eco_action", {"action": action, "date": DATE}))


def test_every_packaged_city_declares_its_funds() -> None:
    funders = {}
    for key in ("bologna", "rome", "sint_niklaas", "vienna", "zwolle"):
        city = load_city(key)
        assert city.config.funds, key
        for rule in city.rules:
            assert city.config.fund_of(rule.id) is not None, (key, rule.id)
        funders[key] = {f.funder for f in city.config.funds.values()}
    assert "European Union" in funders["bologna"]
    assert "Flemish Government (Vlaanderen)" in funders["sint_niklaas"]
    assert "Partner businesses" in funders["rome"]
    assert load_city("zwolle").config.euro_per_token is None  # hours have no euro value


def test_a_rule_without_a_fund_does_not_load(tmp_path: Path) -> None:
    root = small_city(tmp_path, 100)
    path = root / "bologna" / "city.toml"
    path.write_text(path.read_text().replace('rules = ["civic-event"]', "rules = []"))
    with pytest.raises(ConfigError, match="rule 'civic-event' draws on no fund"):
        check_city_rules(load_city("bologna", root))
    path.write_text(
        path.read_text()
        + '\n[funds.other]\nname = "x"\nfunder = "y"\nbudget = 1\nperiod = "2026"\nrules = ["eco-actions"]\n'
    )
    with pytest.raises(ConfigError, match="draws on two funds"):
        load_city("bologna", root)


def test_a_fund_runs_out_is_topped_up_by_two_people_and_awards_continue(
    cities: Cities, tmp_path: Path
) -> None:
    app = cities.open("bologna", small_city(tmp_path, 20))
    ann = open_wallet(app, "w1")
    assert report(app).budget == 20 and report(app).euros(20) is not None
    assert [eco(app, f"a{i}", ann, "bike_to_work")["amount"] for i in range(3)] == [6, 6, 6]
    assert report(app).remaining == 2
    with pytest.raises(FundExhausted, match=r"fund 'eu_grant'.*has 2 left"):
        eco(app, "a3", ann, "bike_to_work")
    wallet = app.wallet(ann)
    assert "eu_grant" in wallet.refused["a3"] and wallet.balance == 18
    refusal = [e for e in app.events.get(ann) if type(e).__name__ == "AwardRefused"][-1]
    assert refusal.limit == "fund:eu_grant"
    with pytest.raises(FundExhausted):
        eco(app, "a4", ann, "bus_ride")
    check_conservation(app)

    proposed = app.execute(app.job(_propose("t1", 30, "staff:ada")))
    assert proposed["status"] == "proposed" and report(app).budget == 20
    with pytest.raises(SelfApproval):
        app.execute(app.job(_approve("t2", proposed["proposal_id"], "staff:ada")))
    approved = app.execute(app.job(_approve("t3", proposed["proposal_id"], "staff:bea")))
    assert approved["status"] == "approved" and approved["approved_by"] == "staff:bea"
    assert report(app).budget == 50
    with pytest.raises(TopUpNotOpen):
        app.execute(app.job(_approve("t4", proposed["proposal_id"], "staff:cai")))
    assert eco(app, "a5", ann, "bike_to_work")["amount"] == 6
    # The refused award is appealed like any refusal; upheld, it draws on the fund.
    filed = app.file_appeal("ap1", ann, "refused_award", "a3", "it was paid for", f"holder:{ann}")
    appeal = app.execute(filed)
    remedy = {"activity": "eco_action", "fields": {"action": "bike_to_work", "date": DATE}}
    decided = app.execute(
        app.decide_appeal("ap2", UUID(appeal["appeal_id"]), True, "topped up", "staff:eve", remedy)
    )
    assert decided["status"] == "upheld"
    r = report(app)
    assert r.issued == app.wallet(ann).balance and r.outstanding == r.issued
    check_conservation(app)


def _propose(key: str, amount: int, by: str) -> Any:
    from services import commands as c

    return c.ProposeFundTopUp(key, "eu_grant", amount, "second tranche of the grant", by)


def _approve(key: str, proposal_id: str, by: str) -> Any:
    from services import commands as c

    return c.ApproveFundTopUp(key, "eu_grant", proposal_id, "Delibera 42/2026", by)


def test_a_group_of_awards_stops_at_the_budget(cities: Cities, tmp_path: Path) -> None:
    """Batch ingestion draws each award on the fund it holds in memory, in arrival order."""
    app = cities.open("bologna", small_city(tmp_path, 30))
    ann = open_wallet(app, "w1")
    jobs = [
        app.record_activity(f"g{i}", ann, "eco_action", {"action": "recycling_drop_off", "date": DATE})
        for i in range(5)
    ]
    results = app.execute_group(jobs)
    assert [r["amount"] if isinstance(r, dict) else type(r).__name__ for r in results] == [
        8,
        8,
        8,
        "FundExhausted",
        "FundExhausted",
    ]
    assert report(app).issued == 24 and app.wallet(ann).balance == 24
    # The stored fund, read afresh by another process, agrees with the group's.
    again = cities.open("bologna", tmp_path / "cities")
    assert again.repository.get(Fund.create_id("bologna", "eu_grant")).issued == 24
    check_conservation(app)


def test_spent_tokens_are_redeemed_and_lapsed_ones_release_the_budget(cities: Cities, tmp_path: Path) -> None:
    app = cities.open("bologna", small_city(tmp_path, 100))
    ann, bob = open_wallet(app, "w1"), open_wallet(app, "w2")
    shop = UUID(app.execute(app.register_merchant("m1", "Forno", "food", True))["merchant_id"])
    for i, who in enumerate((ann, ann, bob)):
        eco(app, f"a{i}", who, "recycling_drop_off")
    app.execute(app.spend("s1", ann, shop, 5, "receipt-1"))
    r = report(app)
    assert (r.issued, r.redeemed, r.outstanding, r.remaining) == (24, 5, 19, 76)
    # Closing a wallet (no final spend window here) lapses its balance: the budget comes back.
    app.execute(app.close_wallet("c1", ann))
    r = report(app)
    assert (r.lapsed, r.outstanding, r.awarded, r.remaining) == (11, 8, 13, 87)
    assert r.euros(r.remaining) is not None and str(r.euros(r.remaining)) == "8.70"
    check_conservation(app)


def test_depreciated_tokens_release_the_budget(cities: Cities, tmp_path: Path) -> None:
    app = cities.open("bologna", small_city(tmp_path, 1000, "[currency.depreciation]\nyears = 1\n"))
    ann = open_wallet(app, "w1")
    shop = UUID(app.execute(app.register_merchant("m1", "Forno", "food", True))["merchant_id"])
    for i in range(10):
        eco(app, f"a{i}", ann, "recycling_drop_off")
    cities.clock.advance(days=183)
    app.execute(app.spend("s1", ann, shop, 10, "receipt-1"))
    r = report(app)
    assert r.issued == 80 and r.redeemed == 10
    # Each lot of 8 is worth floor(8 x 182 / 365) = 3 half a year on: 50 depreciated away.
    assert r.depreciated == 50 and r.outstanding == app.wallet(ann).balance == 20
    assert r.remaining == r.budget - r.issued + r.depreciated
    check_conservation(app)


def test_a_city_without_funds_awards_as_before(cities: Cities, tmp_path: Path) -> None:
    root = tmp_path / "cities"
    shutil.copytree(PACKAGED_CITIES / "bologna", root / "bologna")
    path = root / "bologna" / "city.toml"
    path.write_text(path.read_text().split("\n[funds.")[0])
    app = cities.open("bologna", root)
    ann = open_wallet(app, "w1")
    assert eco(app, "a1", ann, "bike_to_work")["amount"] == 6
    assert app.fund_reports() == []
    with pytest.raises(NotFound, match="declares no fund 'eu_grant'"):
        app.execute(app.job(_propose("t1", 30, "staff:ada")))


def test_the_report_on_the_command_line(tmp_path: Path, capsys: Any) -> None:
    from services.cli.main import main
    from services.settings.cities import cli_environment, load_settings

    data = tmp_path / "data"
    settings = load_settings(cli_environment(str(data)))
    app = CityApplication(load_city("sint_niklaas"), settings.eventsourcing_env("sint_niklaas"))
    try:
        w = open_wallet(app, "w1")
        fields = {"subject": "frame-123", "date": DATE}
        assert app.execute(app.record_activity("b1", w, "bike_engraving", fields))["amount"] > 0
    finally:
        app.close()
    assert main(["funds", "report", "--city", "sint_niklaas", "--data-dir", str(data), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    funds = {f["fund_id"]: f for f in out["funds"]}
    assert out["euro_per_token"] == "0.50" and set(funds) == {"flemish_grant", "city"}
    city = funds["city"]
    assert city["issued"] > 0 and city["budget"] == city["awarded"] + city["remaining"]
    assert city["euros"]["budget"] == "30000.00"
    assert main(["funds", "report", "--city", "zwolle", "--data-dir", str(data)]) == 0
    assert "no euro value" in capsys.readouterr().out


def test_funds_are_snapshotted_and_read_back_alike(store_env: dict[str, str], tmp_path: Path) -> None:
    """With snapshots every two events, a fund with top-ups reads back the same in a new process."""
    cities = Cities({**store_env, "CIVFED_SNAPSHOT_INTERVAL": "2"})
    root = small_city(tmp_path, 20)
    try:
        app = cities.open("bologna", root)
        ann = open_wallet(app, "w1")
        for i in range(3):
            eco(app, f"a{i}", ann, "bike_to_work")
        proposed = app.execute(app.job(_propose("t1", 30, "staff:ada")))
        app.execute(app.job(_approve("t2", proposed["proposal_id"], "staff:bea")))
        eco(app, "a3", ann, "bike_to_work")
        first = report(app)
        again = cities.open("bologna", root)
        assert report(again) == first and (first.budget, first.issued) == (50, 24)
        fund_id = Fund.create_id("bologna", "eu_grant")
        assert again.snapshots is not None and list(again.snapshots.get(fund_id))
        check_conservation(again)
    finally:
        cities.close_all()


def test_a_tourist_wallets_expiry_releases_its_fund(cities: Cities) -> None:
    """Rome, as packaged: a tourist's wallet expires, its final spend window ends and what is
    left lapses (the retention run); the city's fund gets that budget back."""
    import datetime as dt

    from services.privacy.retention import run_retention

    app = cities.open("rome")
    start = report(app, "city")
    end = cities.clock() + dt.timedelta(days=3)
    w = open_wallet(app, "t1", "tourist", valid_until=end)
    for key in ("a1", "a2"):
        fields = {"action": "recycling_drop_off", "date": cities.clock().date().isoformat()}
        assert app.execute(app.record_activity(key, w, "eco_action", fields))["amount"] == 10
    shop = UUID(app.execute(app.register_merchant("m1", "Forno", "food", True))["merchant_id"])
    app.execute(app.spend("s1", w, shop, 5, "r1"))
    cities.clock.now = end + dt.timedelta(days=1)
    assert run_retention(app)["expired"] == 1
    cities.clock.now = end + dt.timedelta(days=app.city.config.final_spend_days, seconds=1)
    assert run_retention(app)["closed"] == 1
    r = report(app, "city")
    assert (r.issued - start.issued, r.redeemed - start.redeemed, r.lapsed - start.lapsed) == (20, 5, 15)
    assert r.outstanding == start.outstanding and r.remaining == start.remaining - 5
    # The partners' fund backs no rule: nothing was drawn on it.
    assert report(app, "partners").issued == 0
    check_conservation(app)


def test_the_demo_season_uses_up_a_fund_and_a_top_up_lets_awards_continue(tmp_path: Path) -> None:
    """Bologna's demo season (`civfed demo`): the neighbourhood clean-up fund runs out, further
    clean-up awards are refused and counted, two people top it up and the awards continue."""
    from services.demo.clock import ScenarioClock, scenario_time
    from services.demo.main import fund_figures
    from services.demo.scenario import bologna
    from services.settings.cities import cli_environment, load_settings

    settings = load_settings(cli_environment(str(tmp_path / "data")))
    clock = ScenarioClock()
    app = CityApplication(load_city("bologna"), settings.eventsourcing_env("bologna"), clock=clock)
    try:
        with scenario_time(clock):
            bologna(app, clock, lambda n: None, 200)
        funds = {f["fund_id"]: f for f in fund_figures(app)}
        clean_ups = funds["quartieri"]
        assert clean_ups["refused"] > 0 and clean_ups["topped_up"] == clean_ups["declared"]
        # Awards continued after the top-up: more was awarded than the declared budget.
        assert clean_ups["awarded"] > clean_ups["declared"]
        assert clean_ups["budget"] == clean_ups["awarded"] + clean_ups["remaining"]
        assert funds["eu_grant"]["refused"] == 0
        fund = app.repository.get(Fund.create_id("bologna", "quartieri"))
        (top_up,) = fund.top_ups.values()
        assert (top_up["proposed_by"], top_up["approved_by"]) == ("staff:demo-quartiere", "staff:demo-giunta")
        check_conservation(app)
    finally:
        app.close()


def test_each_fund_month_is_counted_exactly_from_the_funds_own_events(cities: Cities, tmp_path: Path) -> None:
    """The finance report's months: each draw and release booked on its day on the city's
    clock; the months add up to the fund's running totals, and a month's outstanding is
    what the fund had out at its end."""
    app = cities.open("bologna", small_city(tmp_path, 100))
    ann, bob = open_wallet(app, "w1"), open_wallet(app, "w2")
    shop = UUID(app.execute(app.register_merchant("m1", "Forno", "food", True))["merchant_id"])
    first = cities.clock().strftime("%Y-%m")
    for i, who in enumerate((ann, ann, bob)):
        eco(app, f"a{i}", who, "recycling_drop_off")
    cities.clock.advance(days=62)  # two months on: the month between has nothing booked
    later = cities.clock().strftime("%Y-%m")
    app.execute(app.spend("s1", ann, shop, 5, "receipt-1"))
    app.execute(app.close_wallet("c1", bob))  # lapses bob's 8
    eco(app, "a3", ann, "bike_to_work")
    months = app.fund_months()["eu_grant"]
    assert months[0].period == first and months[-1].period == later and len(months) == 3
    assert (months[0].issued, months[0].redeemed, months[0].lapsed, months[0].outstanding) == (24, 0, 0, 24)
    assert (months[1].issued, months[1].redeemed, months[1].outstanding) == (0, 0, 24)
    assert (months[2].issued, months[2].redeemed, months[2].lapsed, months[2].outstanding) == (6, 5, 8, 17)
    r = report(app)
    for figure in ("issued", "redeemed", "lapsed", "depreciated"):
        assert sum(getattr(m, figure) for m in months) == getattr(r, figure), figure
    assert months[-1].outstanding == r.outstanding
    # One month asked: that month's line, or an empty one carrying what was outstanding.
    assert app.fund_months(later)["eu_grant"] == [months[2]]
    (quiet,) = app.fund_months("2099-01")["eu_grant"]
    assert (quiet.issued, quiet.redeemed, quiet.outstanding) == (0, 0, 17)
    (before,) = app.fund_months("2000-01")["eu_grant"]
    assert (before.issued, before.outstanding) == (0, 0)
    check_conservation(app)


def test_fund_events_stored_before_days_were_recorded_still_load_and_count_by_their_time() -> None:
    fund = Fund.declare("bologna", "eu_grant", "EU grant", "European Union", 100, "2026")
    fund.draw(10, "eco-actions", "2026-05-04")
    fund.release("redeemed", 4, "2026-06-01")
    events = fund.collect_events()
    for e in events[1:]:
        vars(e).pop("on")  # as stored before the field existed
    replayed = None
    for e in events:
        replayed = e.mutate(replayed)
    assert isinstance(replayed, Fund)
    assert (replayed.issued, replayed.redeemed, replayed.outstanding) == (10, 4, 6)
    from services.funds import months_of

    (line,) = months_of("eu_grant", events)
    assert line.period == events[1].timestamp.strftime("%Y-%m")
    assert (line.issued, line.redeemed, line.outstanding) == (10, 4, 6)
