"""Three city nodes on loopback redeeming across cities, on the demo's own city stores.

The nodes open the same event stores as the embedded demo, so their redemptions
and settlement claims are part of the demo's data set and reach the dashboards.
They run on the scenario clock, on the season's last day, so the data set stays
one season. Every request key starts with `federation-demo:` (the scenario's
start with `demo:`). Run again, every call replays its receipt: the voucher
tokens that replay were signed with the keys kept in the data directory, so they
still verify, and nothing is refused or counted twice.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

from civfed.v1 import federation_pb2, federation_pb2_grpc, merchant_pb2, wallet_pb2
from projections.kanon import K_ANONYMITY
from services.config import Settings
from services.demo_scenario import START, WEEKS
from services.demo_time import scenario_time
from services.grpc.auth import bearer
from services.grpc.local_federation import CityStubs, LocalFederation

CITIES = {"vienna": "wien-2026-01", "rome": "roma-2026-03", "sint_niklaas": "sengzen-2026-02"}
# (home, acceptor): whose tokens are redeemed at whose shops.
PAIRS = [("vienna", "sint_niklaas"), ("vienna", "rome"), ("rome", "sint_niklaas"), ("rome", "vienna")]
# Distinct people per pair: enough that the dashboards may publish each pair's figures.
PEOPLE = K_ANONYMITY + 2
# One activity earns each person enough for any amount below (9 Wienertoken, 10 Rome points).
EARN = {
    "vienna": ("trip", {"mode": "bike", "distance_m": "900000"}),
    "rome": ("eco_action", {"action": "recycling_drop_off"}),
}
KEY = "federation-demo"
# Late on the season's last day.
SEASON_END = START + dt.timedelta(days=WEEKS * 7 - 1, hours=11)


def amount(pair: int, person: int) -> int:
    """A spread of redemption sizes, 2 to 8 tokens, the same on every run."""
    return 2 + (person * 3 + pair) % 7


def store_env(settings: Settings) -> dict[str, str]:
    """The demo's store settings, so the nodes open the embedded demo's city stores."""
    return {name: str(getattr(settings, name)) for name in Settings.model_fields}


def redeem_pair(n: int, home: CityStubs, acceptor: CityStubs, names: tuple[str, str]) -> dict[str, Any]:
    """PEOPLE residents of `home` each redeem a voucher at one shop in `acceptor`."""
    prefix = f"{KEY}:{names[0]}-at-{names[1]}"
    shop = acceptor.merchant.RegisterMerchant(
        merchant_pb2.RegisterMerchantRequest(
            idempotency_key=f"{prefix}:shop",
            name=f"{names[0].title()} visitors' café",
            category="food",
            local=True,
        ),
        metadata=acceptor.staff,
        timeout=5,
    )
    activity, fields = EARN[names[0]]
    tokens = credited = 0
    currency = ""
    for i in range(PEOPLE):
        w = home.wallet.OpenWallet(
            wallet_pb2.OpenWalletRequest(
                idempotency_key=f"{prefix}:wallet{i}",
                participant_kind="resident",
                consent_version=CITIES[names[0]],
            ),
            metadata=home.staff,
            timeout=5,
        )
        home.wallet.RecordActivity(
            wallet_pb2.RecordActivityRequest(
                idempotency_key=f"{prefix}:earn{i}",
                wallet_id=w.wallet_id,
                activity=activity,
                fields={**fields, "date": SEASON_END.date().isoformat()},
                activity_id=f"{prefix}:activity{i}",
            ),
            metadata=home.staff,
            timeout=5,
        )
        units = amount(n, i)
        token = home.wallet.IssueRedemptionVoucher(
            wallet_pb2.IssueRedemptionVoucherRequest(
                idempotency_key=f"{prefix}:voucher{i}", wallet_id=w.wallet_id, amount=units
            ),
            metadata=bearer(w.holder_token),
            timeout=5,
        ).token
        out = acceptor.merchant.AcceptVoucher(
            merchant_pb2.AcceptVoucherRequest(idempotency_key=f"{prefix}:sale{i}", redemption_token=token),
            metadata=bearer(shop.merchant_token),
            timeout=10,
        )
        tokens += units
        credited += out.credited.units
        currency = out.credited.currency
    return {
        "home": names[0],
        "acceptor": names[1],
        "people": PEOPLE,
        "tokens": tokens,
        "credited": credited,
        "currency": currency,
    }


def positions(fed: LocalFederation) -> list[dict[str, Any]]:
    """Each node's settlement position with each partner, as that partner's node is told it."""
    found = []
    for city in CITIES:
        for partner in CITIES:
            if partner == city:
                continue
            f = fed.files[partner]
            channel = fed.channel(city, f.cert, f.key)
            stub: Any = federation_pb2_grpc.FederationServiceStub(channel)
            for p in stub.GetSettlement(federation_pb2.GetSettlementRequest(), timeout=5).positions:
                found.append(
                    {
                        "city": city,
                        "partner": p.partner_city,
                        "payable": p.payable_units,
                        "receivable": p.receivable_units,
                        "net": p.net_units,
                        "redemptions": p.redemptions,
                    }
                )
            channel.close()
    return found


def render_federation(report: dict[str, Any]) -> str:
    lines = [
        f"  {s['people']} people redeemed {s['tokens']} {s['home']} tokens at a {s['acceptor']} shop: "
        f"credited {s['credited']} {s['currency']} (smallest unit)"
        for s in report["sales"]
    ]
    lines += [
        "",
        "payable: own units redeemed at the partner's shops; receivable: the partner's units",
        "redeemed here; net: what the partner owes on balance, in the city's own units",
        f"{'city':<14}{'partner':<14}{'payable':>9}{'receivable':>12}{'net':>7}{'redemptions':>13}",
    ]
    lines += [
        f"{p['city']:<14}{p['partner']:<14}{p['payable']:>9}{p['receivable']:>12}{p['net']:>7}{p['redemptions']:>13}"
        for p in report["positions"]
    ]
    return "\n".join(lines)


def run_federation_demo(settings: Settings) -> dict[str, Any]:
    """Redeem across cities through the nodes: the sales per pair and the settlement positions."""

    def clock() -> dt.datetime:
        return SEASON_END

    with tempfile.TemporaryDirectory(prefix="civfed-pki-") as folder, scenario_time(clock):
        fed = LocalFederation(
            Path(folder),
            list(CITIES),
            extra_env=store_env(settings),
            signing_folder=settings.CIVFED_DATA_DIR / "federation-keys",
        )
        try:
            for city in CITIES:
                fed.start_in_process(city, clock)
            stubs = {c: fed.stubs(c) for c in CITIES}
            try:
                sales = [redeem_pair(n, stubs[h], stubs[a], (h, a)) for n, (h, a) in enumerate(PAIRS)]
            finally:
                for s in stubs.values():
                    s.close()
            return {"sales": sales, "positions": positions(fed)}
        finally:
            fed.stop_all()
