"""Three city nodes on loopback redeeming across cities, on the demo's own city stores.

The nodes open the same event stores as the embedded demo, so their redemptions
and settlement claims are part of the demo's data set and reach the dashboards.
They run on the scenario's clock: their people earn through the season like
everyone else and redeem in its last week. Every request key starts with
`federation-demo:` (the scenario's start with `demo:`). Run again, every call
replays its receipt: the voucher tokens that replay were signed with the keys
kept in the data directory, so they still verify, and nothing is refused or
counted twice.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from civfed.v1 import (
    claims_pb2,
    clearing_pb2,
    clearing_pb2_grpc,
    federation_pb2,
    federation_pb2_grpc,
    merchant_pb2,
    payouts_pb2,
    payouts_pb2_grpc,
    sources_pb2,
    wallet_pb2,
)
from projections.disclosure import K_MIN as K_ANONYMITY
from services.demo.cashback import Shoppers, render_cashback
from services.demo.city_node import Phones, store_env
from services.demo.clock import ScenarioClock, scenario_time
from services.demo.local_federation import CityStubs, LocalFederation
from services.demo.mobility import SOURCE_ID, MobilityProvider
from services.demo.scenario import WEEKS
from services.grpc.auth import bearer
from services.settings.cities import Settings, load_city

CITIES = {"vienna": "wien-2026-01", "rome": "roma-2026-03", "sint_niklaas": "sengzen-2026-02"}
# (home, acceptor, people): whose tokens are redeemed at whose shops, by how many
# people, one voucher each. At least K_ANONYMITY people per pair, so the
# dashboards may publish every pair's figures.
PAIRS = [
    ("vienna", "sint_niklaas", K_ANONYMITY + 2),
    ("vienna", "rome", K_ANONYMITY + 1),
    ("rome", "sint_niklaas", K_ANONYMITY + 2),
    ("rome", "vienna", K_ANONYMITY + 1),
]
# home -> (activity, fields, every how many days). Vienna: a 10 km commute each
# way by bike instead of by car, 4 kg CO2 every other day (2 tokens in three
# weeks); Rome: recycling dropped off once a week, 10 points (30 in three weeks).
EARNING = {
    "vienna": ("trip", {"mode": "bike", "distance_m": "20000"}, 2),
    "rome": ("eco_action", {"action": "recycling_drop_off"}, 7),
}
EARNING_DAYS = 21  # three weeks of earning; redemptions in the season's last week
AMOUNTS = {"vienna": (1, 2), "rome": (10, 20)}
KEY = "federation-demo"


class Visitors:
    """One pair's people: residents of `home` who redeem a voucher at a shop in `acceptor`."""

    def __init__(
        self,
        n: int,
        home: CityStubs,
        acceptor: CityStubs,
        names: tuple[str, str],
        people: int,
        phones: Phones,
    ) -> None:
        self.n, self.home, self.acceptor, self.names, self.people = n, home, acceptor, names, people
        self.phones = phones
        self.prefix = f"{KEY}:{names[0]}-at-{names[1]}"
        self.wallets: list[Any] = []
        self.holder_tokens: list[str] = []
        self.shop: Any = None
        self.till_token = ""
        self.tokens = self.credited = 0
        self.currency = ""
        self.provider = MobilityProvider()

    def open(self) -> None:
        home = self.names[0]
        if EARNING[home][0] == "trip":
            listed = self.home.sources.ListSources(sources_pb2.ListSourcesRequest(), timeout=5)
            if SOURCE_ID not in {s.source_id for s in listed.sources}:
                request = self.provider.register_request(f"{KEY}:mobility-provider")
                self.home.sources.RegisterSource(request, metadata=self.home.staff, timeout=5)
        self.shop = self.acceptor.merchant.RegisterMerchant(
            merchant_pb2.RegisterMerchantRequest(
                idempotency_key=f"{self.prefix}:shop",
                name=f"{home.title()} visitors' café",
                category="food",
                local=True,
            ),
            metadata=self.acceptor.staff,
            timeout=5,
        )
        self.wallets = [
            self.home.wallet.OpenWallet(
                wallet_pb2.OpenWalletRequest(
                    idempotency_key=f"{self.prefix}:wallet{i}",
                    participant_kind="resident",
                    consent_version=CITIES[home],
                ),
                metadata=self.home.staff,
                timeout=5,
            )
            for i in range(self.people)
        ]
        self.till_token = self.phones.keep(f"{self.prefix}:shop", self.shop.merchant_token)
        self.holder_tokens = [
            self.phones.keep(f"{self.prefix}:wallet{i}", w.holder_token) for i, w in enumerate(self.wallets)
        ]

    def play(self, day: int, date: str) -> None:
        """What this pair's people do on the season's `day`."""
        activity, fields, every = EARNING[self.names[0]]
        for i, w in enumerate(self.wallets):
            if day < EARNING_DAYS and day % every == i % every and activity == "trip":
                # Trips come signed by the mobility provider, never from a desk.
                claim = self.provider.trip(f"{self.prefix}:activity{i}:{day}", w.wallet_id, fields, date)
                self.home.claims.SubmitClaim(claims_pb2.SubmitClaimRequest(claim=claim), timeout=5)
            elif day < EARNING_DAYS and day % every == i % every:
                self.home.wallet.RecordActivity(
                    wallet_pb2.RecordActivityRequest(
                        idempotency_key=f"{self.prefix}:earn{i}:{day}",
                        wallet_id=w.wallet_id,
                        activity=activity,
                        fields={**fields, "date": date},
                        activity_id=f"{self.prefix}:activity{i}:{day}",
                    ),
                    metadata=self.home.staff,
                    timeout=5,
                )
            if day == EARNING_DAYS + i % 7:
                self.redeem(i, w)

    def redeem(self, i: int, wallet: Any) -> None:
        units = AMOUNTS[self.names[0]][(i + self.n) % 2]
        token = self.home.wallet.IssueRedemptionVoucher(
            wallet_pb2.IssueRedemptionVoucherRequest(
                idempotency_key=f"{self.prefix}:voucher{i}", wallet_id=wallet.wallet_id, amount=units
            ),
            metadata=bearer(self.holder_tokens[i]),
            timeout=5,
        ).token
        out = self.acceptor.merchant.AcceptVoucher(
            merchant_pb2.AcceptVoucherRequest(
                idempotency_key=f"{self.prefix}:sale{i}", redemption_token=token
            ),
            metadata=bearer(self.till_token),
            timeout=10,
        )
        self.tokens += units
        self.credited += out.credited.units
        self.currency = out.credited.currency

    def sale(self) -> dict[str, Any]:
        return {
            "home": self.names[0],
            "acceptor": self.names[1],
            "people": self.people,
            "tokens": self.tokens,
            "credited": self.credited,
            "currency": self.currency,
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


def render_federation(report: dict[str, Any], settings: Settings, _: Callable[[str], str] = str) -> str:
    """The sales and the settlement positions, each amount in its city's currency units."""
    configs = {key: load_city(key, settings.CIVFED_CITIES_DIR).config for key in CITIES}

    def amount(city: str, units: int) -> str:
        return f"{units / 10 ** configs[city].currency.decimals:,.{configs[city].currency.decimals}f}"

    lines = [
        _(
            "  {people} people redeemed {tokens} {home_currency} at a shop in {acceptor}:"
            " credited {credited} {currency}"
        ).format(
            people=s["people"],
            tokens=amount(s["home"], s["tokens"]),
            home_currency=configs[s["home"]].currency.name,
            acceptor=configs[s["acceptor"]].name,
            credited=amount(s["acceptor"], s["credited"]),
            currency=configs[s["acceptor"]].currency.name,
        )
        for s in report["sales"]
    ]
    if "cashback" in report:
        lines.append(render_cashback(report["cashback"], configs["sint_niklaas"].currency.decimals))
    if "payout" in report:
        lines += render_settled(report, configs, amount, _)
    lines += [
        "",
        _(
            "Exact settlement, as each node reports it to its partner node (GetSettlement: partner\n"
            "cities' finance only, never published). payable: the city's own currency redeemed at the\n"
            "partner's shops; receivable: the partner's currency redeemed here; net: what the partner\n"
            "owes on balance, in the city's own currency"
        ),
        f"{_('city'):<14}{_('partner'):<14}{_('payable'):>10}{_('receivable'):>12}{_('net'):>10}"
        f"{_('redemptions'):>13}",
    ]
    lines += [
        f"{configs[p['city']].name:<14}{configs[p['partner']].name:<14}{amount(p['city'], p['payable']):>10}"
        f"{amount(p['partner'], p['receivable']):>12}{amount(p['city'], p['net']):>10}{p['redemptions']:>13}"
        for p in report["positions"]
    ]
    return "\n".join(lines)


def render_settled(
    report: dict[str, Any],
    configs: dict[str, Any],
    amount: Callable[[str, int], str],
    _: Callable[[str], str],
) -> list[str]:
    """The payout run and the clearing, a line each."""
    pay, clear = report["payout"], report["clearing"]
    again = _(" (run before: nothing paid twice)") if pay["already_run"] else ""
    return [
        _(
            "  Payout run {period} in {city}: {shops} shop(s) paid {tokens} {currency} as EUR {euros}"
            " (SEPA pain.001){again}"
        ).format(
            period=pay["period"],
            city=configs[pay["city"]].name,
            shops=pay["shops"],
            tokens=amount(pay["city"], pay["tokens"]),
            currency=configs[pay["city"]].currency.name,
            euros=f"{pay['euro_cents'] / 100:,.2f}",
            again=again,
        ),
        _(
            "  Clearing {period} {a} <-> {b}: {a} owes {owed_a} {currency_a}, {b} owes {owed_b} {currency_b}"
            " over {n} redemption(s); {signed}"
        ).format(
            period=clear["period"],
            a=configs[clear["city_a"]].name,
            b=configs[clear["city_b"]].name,
            owed_a=amount(clear["city_a"], clear["owed_by_a"]),
            currency_a=configs[clear["city_a"]].currency.name,
            owed_b=amount(clear["city_b"], clear["owed_by_b"]),
            currency_b=configs[clear["city_b"]].currency.name,
            n=clear["redemptions"],
            signed=_("signed by both nodes") if clear["signed_by_both"] else _("not signed by both"),
        ),
    ]


DAYS = WEEKS * 7
# After the season: Sint-Niklaas pays its shops for the week the visitors redeemed in (ISO week
# 22 of 2026: 25 to 31 May) and clears May with Vienna. The shops' accounts (valid IBANs of
# no real shop) are set by the city's shop registration staff.
PAYOUT_CITY, CLEARING_PARTNER = "sint_niklaas", "vienna"
PAYOUT_WEEK, CLEARING_MONTH = "2026-W22", "2026-05"
SHOP_ACCOUNTS = ("BE71096123456769", "BE68539007547034")


def pay_and_clear(fed: LocalFederation, stubs: dict[str, CityStubs], pairs: list[Visitors]) -> dict[str, Any]:
    """Once the season's month is over: one payout run for Sint-Niklaas's shops (proposed by
    one finance officer, run by another) and one clearing of May between Sint-Niklaas and
    Vienna, signed by both nodes. Run again, both find what they recorded and pay or clear
    nothing twice."""
    sn = stubs[PAYOUT_CITY]
    payouts: Any = payouts_pb2_grpc.PayoutServiceStub(sn.channel)
    shops = [p.shop for p in pairs if p.names[1] == PAYOUT_CITY]
    for shop, iban in zip(shops, SHOP_ACCOUNTS, strict=False):
        payouts.SetBankAccount(
            payouts_pb2.SetBankAccountRequest(
                idempotency_key=f"{KEY}:bank:{shop.merchant_id}",
                merchant_id=shop.merchant_id,
                iban=iban,
                account_holder="Visitors' café BV",
            ),
            metadata=fed.staff("demo-shops", "merchant_admin"),
            timeout=5,
        )
    payouts.ProposePayoutRun(
        payouts_pb2.ProposePayoutRunRequest(idempotency_key=f"{KEY}:payout:propose", period=PAYOUT_WEEK),
        metadata=fed.staff("demo-finance-1", "finance_officer"),
        timeout=10,
    )
    paid = payouts.RunPayouts(
        payouts_pb2.RunPayoutsRequest(idempotency_key=f"{KEY}:payout:run", period=PAYOUT_WEEK),
        metadata=fed.staff("demo-finance-2", "finance_officer"),
        timeout=30,
    )
    cleared = (
        clearing_pb2_grpc.ClearingAdminServiceStub(sn.channel)
        .RunClearing(
            clearing_pb2.RunClearingRequest(partner_city=CLEARING_PARTNER, period=CLEARING_MONTH),
            metadata=fed.staff("demo-council", "council_approver"),
            timeout=60,
        )
        .statement
    )
    f = cleared.figures
    return {
        "payout": {
            "city": PAYOUT_CITY,
            "period": paid.run.period,
            "shops": len(paid.run.lines),
            "tokens": paid.run.tokens,
            "euro_cents": paid.run.euro_cents,
            "sepa_file_bytes": len(paid.sepa_file),
            "already_run": paid.already_run,
        },
        "clearing": {
            "city_a": f.city_a,
            "city_b": f.city_b,
            "period": f.period,
            "owed_by_a": f.owed_by_a,
            "owed_by_b": f.owed_by_b,
            "redemptions": f.redemptions,
            "signed_by_both": bool(cleared.signature_a and cleared.signature_b),
        },
    }


def run_federation_demo(settings: Settings, step: Callable[[int], None] = lambda n: None) -> dict[str, Any]:
    """Redeem across cities through the nodes: the sales per pair and the settlement positions.
    `step` is told of each day played (DAYS in all)."""

    clock = ScenarioClock()
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
                phones = Phones(settings.CIVFED_DATA_DIR / "federation-credentials.json")
                pairs = [
                    Visitors(n, stubs[h], stubs[a], (h, a), k, phones) for n, (h, a, k) in enumerate(PAIRS)
                ]
                shoppers = Shoppers(stubs["sint_niklaas"], K_ANONYMITY + 2, phones.keep)
                clock.day(0)
                for pair in pairs:
                    pair.open()
                shoppers.open()
                phones.save()
                for day in range(WEEKS * 7):
                    date = clock.day(day).isoformat()
                    for pair in pairs:
                        pair.play(day, date)
                    shoppers.play(day, date, EARNING_DAYS)
                    step(1)
                sales = [pair.sale() for pair in pairs]
                clock.day(DAYS + 7)  # a week into June: the payout week and May are over
                settled = pay_and_clear(fed, stubs, pairs)
            finally:
                for s in stubs.values():
                    s.close()
            return {
                "sales": sales,
                "positions": positions(fed),
                "cashback": shoppers.summary(),
                **settled,
            }
        finally:
            fed.stop_all()
