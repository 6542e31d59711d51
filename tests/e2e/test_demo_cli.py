"""`civfed demo --json` end to end: real SQLite stores, run twice."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from aggregates.depreciation import total_at
from projections.dashboard_view import federation_dashboard
from projections.settlement import net_positions
from services.city import CityApplication
from services.city_totals import city_totals
from services.event_log import event_type, read_events
from services.settings.cities import load_city, load_settings
from services.settings.disclosure import disclosure_policies
from services.settings.stream import load_stream_settings, read_model_store

ROOT = Path(__file__).resolve().parents[2]


def run_demo_json(data_dir: Path) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli",
            "demo",
            "--json",
            "--scale",
            "0.1",
            "--data-dir",
            str(data_dir),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    found: dict[str, Any] = json.loads(out.stdout)
    return found


def run_demo(data_dir: Path) -> dict[str, dict[str, int]]:
    cities: dict[str, dict[str, int]] = run_demo_json(data_dir)["cities"]
    return cities


def federation_board(data_dir: Path) -> dict[str, Any]:
    """The federation dashboard's figures, from the read models the demo projected, and the
    read model's exact net positions and published-cell rows (what the draws were made from)."""
    store = read_model_store(load_settings({"CIVFED_DATA_DIR": str(data_dir)}), load_stream_settings({}))
    try:
        with store.transaction() as tx:
            board = federation_dashboard(tx, disclosure_policies())
            board["exact_nets"] = {pair: net for pair, (net, _) in net_positions(tx).items()}
            board["drawn"] = tx.all(
                "SELECT city, period, metric, key, value, people, noised, method FROM rm_published_cells "
                "ORDER BY city, period, metric, key"
            )
            return board
    finally:
        store.close()


@pytest.fixture(scope="module")
def twice(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo run twice on one data directory, with the federation board after each run."""
    data = tmp_path_factory.mktemp("demo")
    first = run_demo_json(data)
    board = federation_board(data)
    second = run_demo_json(data)
    return {
        "data": data,
        "first": first,
        "second": second,
        "board": board,
        "board_again": federation_board(data),
    }


def test_demo_summarises_five_cities_and_is_idempotent(twice: dict[str, Any]) -> None:
    first = twice["first"]["cities"]
    assert set(first) == {"vienna", "rome", "sint_niklaas", "bologna", "zwolle"}
    for key, row in first.items():
        assert row["wallets"] > 0, key
        assert row["issued"] > 0, key
        # Burned: redeemed at partner cities' shops, owed in settlement.
        outflows = row["spent"] + row["burned"] + row["lapsed"] + row["depreciated"] + row["tax_paid"]
        assert row["outstanding"] == row["issued"] - outflows, key
        if key != "zwolle":  # currencies without depreciation or tax
            assert row["depreciated"] == row["tax_paid"] == 0, key
    zw = first["zwolle"]
    assert zw["depreciated"] > 0 and zw["tax_paid"] > 0
    redeemed_abroad = {
        home: sum(s["tokens"] for s in twice["first"]["federation"]["sales"] if s["home"] == home)
        for home in ("vienna", "rome")
    }
    assert {home: first[home]["burned"] for home in redeemed_abroad} == redeemed_abroad
    assert all(tokens > 0 for tokens in redeemed_abroad.values())
    assert first["vienna"]["quantity"] > 0
    assert first["rome"]["prizes_claimed"] > 0
    assert first["vienna"]["vouchers_redeemed"] > 0

    assert twice["second"]["cities"] == first


def test_demo_shoppers_earn_cashback_from_a_local_tills_reports_once(twice: dict[str, Any]) -> None:
    """Over the node's contract: each receipt sent twice, credited once; the chain earns nothing."""
    first, second = twice["first"]["federation"]["cashback"], twice["second"]["federation"]["cashback"]
    assert first["people"] >= 10 and first["receipts"] >= first["people"] and first["cashback"] > 0
    assert first["currency"] == "Sengzen" and first["refused_chain"] == "not_local_shop"
    assert second == first  # run again, every report replays


def test_demo_settles_redemptions_between_cities_on_its_own_stores(twice: dict[str, Any]) -> None:
    sales = twice["first"]["federation"]["sales"]
    pairs = {(s["home"], s["acceptor"]): s for s in sales}
    assert set(pairs) == {
        ("vienna", "sint_niklaas"),
        ("vienna", "rome"),
        ("rome", "sint_niklaas"),
        ("rome", "vienna"),
    }
    assert all(s["people"] >= 10 and s["tokens"] > 0 and s["credited"] > 0 for s in sales)
    nodes = {(p["city"], p["partner"]): p for p in twice["first"]["federation"]["positions"]}
    for (home, acceptor), sale in pairs.items():
        assert nodes[(home, acceptor)]["payable"] == sale["tokens"]
        assert nodes[(acceptor, home)]["receivable"] == sale["tokens"]
    # Sint-Niklaas only accepts: its net is what its shops were credited.
    assert nodes[("sint_niklaas", "vienna")]["net"] == pairs[("vienna", "sint_niklaas")]["credited"]
    assert nodes[("vienna", "rome")]["net"] == (
        pairs[("rome", "vienna")]["credited"] - pairs[("vienna", "rome")]["tokens"]
    )

    # The redemptions are in the demo's data set: projected, and published per closed week.
    board = twice["board"]
    shown = {(c["from"], c["to"]): c for c in board["settlement"]}
    assert set(shown) == set(pairs)
    drawn = {
        (city, key): (value, people, noised, method)
        for city, period, metric, key, value, people, noised, method in board["drawn"]
        if metric == "redemptions_by_partner"
    }
    # One closed week (the season's last), drawn from exactly what was sold, by enough people.
    assert {pair: d[:2] for pair, d in drawn.items()} == {
        pair: (sale["tokens"], sale["people"]) for pair, sale in pairs.items()
    }
    assert all(d[3] == "laplace" for d in drawn.values())
    assert {pair: c["value"] for pair, c in shown.items()} == {pair: d[2] for pair, d in drawn.items()}
    assert twice["first"]["published"]["settlement"] == board["settlement"]
    # The read model's exact net positions agree with what the city nodes report; they are
    # not on the public page.
    assert board["exact_nets"] == {pair: p["net"] for pair, p in nodes.items()}
    assert "net_positions" not in board

    # Run again: every call replays its receipt; no figure moves, nothing is refused.
    assert twice["second"]["federation"] == twice["first"]["federation"]
    assert twice["board_again"] == board


def test_demo_pays_sint_niklaas_shops_once_and_clears_may_with_vienna(twice: dict[str, Any]) -> None:
    """After the season, through the nodes' contracts: one payout run of the week the visitors
    redeemed in, paying the two shops that took them, and May cleared between Sint-Niklaas
    and Vienna with a statement both nodes signed; run again, both replay what was recorded."""
    fed = twice["first"]["federation"]
    credited = sum(s["credited"] for s in fed["sales"] if s["acceptor"] == "sint_niklaas")
    pay = fed["payout"]
    assert (pay["city"], pay["period"], pay["shops"], pay["already_run"]) == (
        "sint_niklaas",
        "2026-W22",
        2,
        False,
    )
    # Every Sengzen the shops were credited that week, at 1/2 euro cent a hundredth.
    assert pay["tokens"] == credited > 0 and pay["euro_cents"] == credited // 2 and pay["sepa_file_bytes"] > 0
    (vienna_here,) = [s for s in fed["sales"] if (s["home"], s["acceptor"]) == ("vienna", "sint_niklaas")]
    assert fed["clearing"] == {
        "city_a": "sint_niklaas",
        "city_b": "vienna",
        "period": "2026-05",
        "owed_by_a": 0,
        "owed_by_b": vienna_here["tokens"],
        "redemptions": vienna_here["people"],
        "signed_by_both": True,
    }
    assert twice["second"]["federation"]["payout"] == pay
    assert twice["second"]["federation"]["clearing"] == fed["clearing"]


def test_vienna_tokens_equal_floor_of_co2_per_wallet(tmp_path: Path) -> None:
    reported = run_demo(tmp_path)["vienna"]
    settings = load_settings({"CIVFED_DATA_DIR": str(tmp_path)})
    app = CityApplication(load_city("vienna"), settings.eventsourcing_env("vienna"))
    totals = city_totals(app, "vienna")
    app.close()
    expected = sum(grams // 20_000 for grams in totals.per_wallet_quantity.values())
    assert reported["issued"] == expected == totals.issued
    assert reported["quantity"] == sum(totals.per_wallet_quantity.values())


def test_demo_json_has_the_workflow_citys_equilibrium_figures(twice: dict[str, Any]) -> None:
    tmp_path = twice["data"]
    zw = twice["second"]["cities"]["zwolle"]
    report = zw["equilibrium"]
    assert report["period_days"] == 2555 and report["k"] == 10
    months = report["months"]
    assert [m["month"] for m in months] == ["2026-05", "2026-06", "2026-07"]  # twelve weeks from 4 May
    # Each month's minted and supply figures are drawn once from the exact figures: every
    # minted token is in the draws, and the figure shown is the draw.
    drawn = {
        (period.removeprefix("month:")[:7], metric.removeprefix("equilibrium_")): (value, noised, method)
        for city, period, metric, key, value, people, noised, method in twice["board"]["drawn"]
        if city == "zwolle" and metric.startswith("equilibrium_")
    }
    assert sum(drawn[(m["month"], "minted")][0] for m in months) == zw["issued"]
    for m in months:
        for col in ("minted", "supply"):
            assert drawn[(m["month"], col)][2] == "laplace"
            assert m[col]["value"] == drawn[(m["month"], col)][1]
            assert m[col]["protection"]["period"] == f"closed month {m['month']}-01"
    per_year = report["issuance_per_year"]["value"]
    assert per_year == sum(m["minted"]["value"] for m in months) * 12 // 3
    assert report["steady_state_supply"] == {
        "value": per_year * 2555 // 730,
        "protection": {"method": "derived from published cells"},
    }
    taxed = [m["tax"]["value"] for m in months if "value" in m["tax"] and not m["tax"].get("empty")]
    assert report["treasury_received"]["value"] == sum(taxed)
    # Every token paid in tax is in the months' tax cells (published or not).
    assert sum(drawn.get((m["month"], "tax"), (0,))[0] for m in months) == zw["tax_paid"]

    # `civfed workflow report` gives the same figures from the same store, as JSON and as a table.
    cli = [
        sys.executable,
        "-m",
        "services.cli",
        "workflow",
        "report",
        "--city",
        "zwolle",
        "--data-dir",
        str(tmp_path),
    ]
    as_json = subprocess.run(
        [*cli, "--json"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(as_json.stdout) == report
    table = subprocess.run(cli, cwd=ROOT, capture_output=True, text=True, check=True, timeout=120).stdout
    assert "2026-07" in table
    assert f"{report['steady_state_supply']['value'] / 100:,.2f}" in table
    assert "projected steady-state supply (issuance/yr × period / 2)" in table

    # The report's closing supply is what the wallets are worth when July ends.
    settings = load_settings({"CIVFED_DATA_DIR": str(tmp_path)})
    app = CityApplication(load_city("zwolle"), settings.eventsourcing_env("zwolle"))
    try:
        wallets = {e.originator_id for _, e in read_events(app) if event_type(e) == "Wallet.Opened"}
        end = dt.date(2026, 8, 1)
        assert drawn[("2026-07", "supply")][0] == sum(total_at(app.wallet(w).lots, end) for w in wallets)
        assert zw["outstanding"] == sum(app.wallet(w).balance for w in wallets)
    finally:
        app.close()


def test_the_readme_demo_command_prints_only_json_on_stdout(tmp_path: Path) -> None:
    """`python3 dev.py demo --json`: set-up lines go to stderr, so stdout parses as JSON."""
    out = subprocess.run(
        [sys.executable, "dev.py", "demo", "--json", "--scale", "0.05", "--data-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    report = json.loads(out.stdout)
    assert set(report["cities"]) == {"vienna", "rome", "sint_niklaas", "bologna", "zwolle"}
    assert "services.protogen" in out.stderr


def events_of(data_dir: Path, key: str) -> dict[str, list[Any]]:
    """Every event in `key`'s demo store, by type."""
    settings = load_settings({"CIVFED_DATA_DIR": str(data_dir)})
    app = CityApplication(load_city(key), settings.eventsourcing_env(key))
    try:
        found: dict[str, list[Any]] = {}
        for _, e in read_events(app):
            found.setdefault(event_type(e), []).append(e)
        return found
    finally:
        app.close()


def receipts(events: dict[str, list[Any]], command: str) -> list[str]:
    """The idempotency keys of `command`'s receipts: over gRPC, each names its caller first."""
    return [e.key for e in events["Receipt.Recorded"] if e.command == command]


def credentials(events: dict[str, list[Any]]) -> list[tuple[UUID, str, str]]:
    """(owner, issued by, label) of every credential issued."""
    owners = {e.originator_id: e.owner_id for e in events["Keyring.Created"]}
    return [(owners[e.originator_id], e.issued_by, e.label) for e in events["Keyring.CredentialIssued"]]


def test_the_demo_drives_zwolles_work_and_romes_prizes_through_the_nodes_contracts(
    twice: dict[str, Any],
) -> None:
    """Only calls through a node's gRPC contracts leave these marks: idempotency keys scoped
    to the authenticated caller (`staff:<sub>:`, `holder:<wallet>:`, `till:<merchant>:`),
    staff subjects from the identity provider in the events, first holder credentials issued
    at the desk, till credentials issued by a merchant admin, and prize claims held until
    the partner's till hands them over."""
    first = twice["first"]["cities"]
    zwolle = events_of(twice["data"], "zwolle")
    coordinators = {"staff:wijkteam-noord", "staff:wijkteam-zuid"}
    posted = zwolle["Task.Posted"]
    assert len(posted) == 12 * 10 and {e.posted_by for e in posted} == coordinators
    approved = zwolle["WorkLog.Approved"]
    assert approved and {e.approver for e in approved} == coordinators
    # Residents logged their own minutes, with their holder credential.
    assert all(e.logged_by == f"holder:{e.wallet_id}" for e in zwolle["WorkLog.Logged"])
    for command, caller in [
        ("post_task", "staff:wijkteam-"),
        ("approve_log", "staff:wijkteam-"),
        ("claim_task", "holder:"),
        ("log_minutes", "holder:"),
        ("pay_tax", "holder:"),
        ("spend", "holder:"),
        ("open_wallet", "staff:desk-1:"),
        ("register_merchant", "staff:merchants-1:"),
    ]:
        keys = receipts(zwolle, command)
        assert keys and all(k.startswith(caller) for k in keys), command
    # Every wallet was opened at the desk, which handed its holder a first credential.
    opened = {e.originator_id for e in zwolle["Wallet.Opened"]}
    holders = {owner for owner, issued_by, _ in credentials(zwolle) if issued_by == "staff:desk-1"}
    assert opened == holders and len(opened) == first["zwolle"]["wallets"]

    rome = events_of(twice["data"], "rome")
    admin = "staff:merchants-1"
    # Twenty partners registered by a merchant admin, each given a till credential by one,
    # and each offering its prize with that till.
    registered = [k for k in receipts(rome, "register_merchant") if ":demo:partner" in k]
    assert len(registered) == 20 and all(k.startswith(f"{admin}:") for k in registered)
    tills = {
        str(owner)
        for owner, issued_by, label in credentials(rome)
        if (issued_by, label) == (admin, "prize desk")
    }
    offers = receipts(rome, "offer_prize")
    assert len(tills) == len(offers) == 20
    assert all(k.startswith("till:") for k in offers) and {k.split(":")[1] for k in offers} == tills
    # Claimed by residents with their own credential, handed over at the partner's till.
    assert all(k.startswith("holder:") for k in receipts(rome, "place_prize_claim"))
    handovers = receipts(rome, "confirm_prize_handover")
    assert handovers and all(k.startswith("till:") for k in handovers)
    assert "Prize.Claimed" not in rome  # the in-process path claims and pays at once
    assert len(rome["PrizeClaim.HandedOver"]) == first["rome"]["prizes_claimed"] > 0


def test_the_demo_reports_sint_niklaas_purchases_from_each_shops_till(twice: dict[str, Any]) -> None:
    """Sint-Niklaas purchases reach the ledger only as the shop's till reports them over the
    node's cashback contract: each local shop registered by a merchant admin and given a till
    credential by one, each cashback award naming the reporting till (`till:<merchant>`) and
    its receipt id, one award per receipt, and no purchase recorded at a desk."""
    events = events_of(twice["data"], "sint_niklaas")
    admin = "staff:merchants-1"
    shops = [k for k in receipts(events, "register_merchant") if ":demo:shop" in k]
    assert len(shops) == 25 and all(k.startswith(f"{admin}:") for k in shops)
    tills = {
        f"till:{owner}"
        for owner, issued_by, label in credentials(events)
        if (issued_by, label) == (admin, "checkout")
    }
    assert len(tills) == 25
    cashback = [
        e
        for e in events["Wallet.Credited"] + events.get("Wallet.Progressed", [])
        if e.rule_id == "local-cashback"
    ]
    # Every purchase came from a till (the federation demo's café reports to this store too);
    # the in-process path would have credited it with no source.
    assert cashback and all(e.source.startswith("till:") for e in cashback)
    ours = [e for e in cashback if e.source in tills]
    assert len(ours) > len(shops) and len({e.source for e in ours}) > 1
    assert all(e.claim_id for e in ours)
    # One receipt per purchase, keyed by the shop and its receipt id, whatever key the till sent.
    reports = [k for k in receipts(events, "report_purchase") if f"till:{k.split(':')[1]}" in tills]
    assert len(reports) == len(ours) and all(k.startswith("till-receipt:") for k in reports)
    assert not [k for k in receipts(events, "record_activity") if ":demo:buy" in k]
    assert twice["second"]["cities"]["sint_niklaas"] == twice["first"]["cities"]["sint_niklaas"]


def test_the_demo_table_agrees_with_the_json_and_the_report_and_ends_with_a_working_command(
    twice: dict[str, Any],
) -> None:
    """Run a third time on the same data, as text: every figure in the ledger table is the JSON
    run's, in currency units; Zwolle's equilibrium table is `civfed workflow report --json`'s;
    the outstanding-versus-supply difference is explained; the last line serves the dashboard."""
    data = twice["data"]
    civfed = Path(sys.executable).parent / "civfed"
    out = subprocess.run(
        [str(civfed), "demo", "--scale", "0.1", "--data-dir", str(data), "--lang", "en"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert "Traceback" not in out.stderr
    cities = twice["second"]["cities"]
    lines = out.stdout.splitlines()
    start = lines.index("Ledger totals: the operator's own check of its stores (not published)") + 3
    table = lines[start : start + len(cities)]
    rows = {line[:14].strip(): line for line in table}
    for row in cities.values():
        line, d = rows[row["name"]], row["decimals"]
        other = row["burned"] + row["lapsed"] + row["depreciated"] + row["tax_paid"]
        shown = [line[44:53], line[53:65], line[65:77], line[77:89], line[89:102]]
        assert [s.strip() for s in shown] == [
            f"{row['wallets']:,}",
            *(f"{v / 10**d:,.{d}f}" for v in (row["issued"], row["spent"], other, row["outstanding"])),
        ], row["name"]
        assert line[14:44].strip() == row["currency"]
    assert "(smallest unit)" not in out.stdout
    assert "The equilibrium report's supply below differs by definition" in out.stdout

    report = json.loads(
        subprocess.run(
            [str(civfed), "workflow", "report", "--city", "Zwolle", "--data-dir", str(data), "--json"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
    )
    assert report == cities["zwolle"]["equilibrium"]
    for month in report["months"]:
        (line,) = [line for line in lines if line.startswith(month["month"])]
        supply = month["supply"]
        assert line.split()[-1] == (f"{supply['value'] / 100:,.2f}" if "value" in supply else "suppressed")

    # The last line names the command that serves the dashboard; it works as printed.
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("To see the dashboards at http://127.0.0.1:8470/, run: ")
    command = last.split("run: ", 1)[1].split()
    assert command[1:] == ["dashboard", "--data-dir", str(data)]
    server = subprocess.Popen(
        [*command, "--port", "0"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline().startswith("Dashboard: http://127.0.0.1:")
    finally:
        server.terminate()
        server.communicate(timeout=10)
