"""One small season per city, run through any executor (singly or grouped).

Each phase is a list of commands whose parameters depend on earlier results, so a
scenario is a function of a `run` callback. Refusals are part of every season:
over-spending, duplicate subjects, unknown actions, a key repeated in a phase,
a voucher redeemed twice, activity after opting out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from aggregates.errors import DomainError
from services.city import CityApplication
from services.unit_of_work import Job

Result = dict[str, Any] | DomainError
Run = Callable[[Sequence[Job]], list[Result]]
DATE = "2026-05-04"


def run_singly(app: CityApplication) -> Run:
    def run(cmds: Sequence[Job]) -> list[Result]:
        out: list[Result] = []
        for cmd in cmds:
            try:
                out.append(app.execute(cmd))
            except DomainError as exc:
                out.append(exc)
        return out

    return run


def run_grouped(app: CityApplication) -> Run:
    return lambda cmds: app.execute_group(list(cmds))


def _ids(results: list[Result], field: str) -> list[UUID]:
    return [UUID(r[field]) for r in results if isinstance(r, dict) and field in r]


def _activities(app: CityApplication, w: list[UUID], shops: list[UUID]) -> list[Job]:
    act = app.record_activity
    if app.key == "vienna":
        trips = [("bike", 225_000), ("tram", 50_000), ("bike", 40_000), ("walk", 0), ("car", 9_000)]
        cmds = [
            act(f"trip{i}:{n}", wallet, "trip", {"mode": m, "distance_m": d, "date": DATE})
            for i, wallet in enumerate(w)
            for n, (m, d) in enumerate(trips[i:] + trips[:i])
        ]
        return [*cmds, act("trip-bad", w[0], "trip", {"mode": "jetpack", "distance_m": 5, "date": DATE})]
    if app.key == "rome":
        actions = ["recycling_drop_off", "public_transport_ride", "bike_share_trip", "water_refill"]
        cmds = [
            act(f"eco{i}:{n}", wallet, "eco_action", {"action": a, "date": DATE})
            for i, wallet in enumerate(w)
            for n, a in enumerate(actions * (i + 1))
        ]
        return [*cmds, act("eco-bad", w[0], "eco_action", {"action": "littering", "date": DATE})]
    if app.key == "sint_niklaas":
        return [
            act("engrave0", w[0], "bike_engraving", {"subject": "SN-1", "date": DATE}),
            act("engrave1", w[1], "bike_engraving", {"subject": "SN-1", "date": DATE}),
            act("engrave2", w[1], "bike_engraving", {"subject": "SN-2", "date": DATE}),
            act("event0", w[0], "event_attendance", {"subject": "fair", "date": DATE}),
            act("event1", w[0], "event_attendance", {"subject": "fair", "date": DATE}),
            act("event2", w[2], "event_attendance", {"subject": "fair", "date": DATE}),
            *[
                act(
                    f"buy{i}",
                    wallet,
                    "local_purchase",
                    {"amount_cents": c, "merchant_id": str(s), "date": DATE},
                )
                for i, (wallet, c, s) in enumerate(
                    [(w[2], 1_999, shops[0]), (w[3], 40, shops[0]), (w[2], 5_000, shops[1])]
                )
            ],
        ]
    assert app.key == "bologna"
    return [
        *[
            act(f"eco{i}:{n}", wallet, "eco_action", {"action": a, "date": DATE})
            for i, wallet in enumerate(w)
            for n, a in enumerate(["bike_to_work", "bus_ride", "recycling_drop_off"][: i + 1])
        ],
        act("clean0", w[0], "civic_event", {"subject": "pulizia-1", "date": DATE}),
        act("clean1", w[0], "civic_event", {"subject": "pulizia-1", "date": DATE}),
        act("clean2", w[1], "civic_event", {"subject": "pulizia-1", "date": DATE}),
    ]


_EARNING: dict[str, tuple[str, dict[str, Any]]] = {
    "vienna": ("trip", {"mode": "bike", "distance_m": 1_000, "date": DATE}),
    "rome": ("eco_action", {"action": "recycling_drop_off", "date": DATE}),
    "sint_niklaas": ("event_attendance", {"subject": "late-fair", "date": DATE}),
    "bologna": ("eco_action", {"action": "bike_to_work", "date": DATE}),
}


def season(app: CityApplication, run: Run) -> tuple[list[Result], list[UUID]]:
    """Run the city's season; returns every result in order and the wallet ids."""
    consent = app.city.config.consent_versions[-1]
    kind = app.city.config.participant_kinds[0]
    out: list[Result] = []

    opened = run(
        [app.open_wallet(f"w{i}", kind, consent) for i in range(4)]
        + [app.open_wallet("w0", kind, consent)]  # the same key again, in the same phase
        + [app.register_merchant("m0", "Corner shop", "food", True)]
        + [app.register_merchant("m1", "Chain store", "retail", False)]
    )
    out += opened
    wallets, shops = _ids(opened, "wallet_id")[:4], _ids(opened, "merchant_id")
    prizes: list[UUID] = []
    if app.key == "rome":
        offered = run([app.offer_prize("p0", shops[0], "Gelato", 15, 1)])
        out += offered
        prizes = _ids(offered, "prize_id")

    out += run(_activities(app, wallets, shops))

    spends = [
        app.spend("spend-too-much", wallets[0], shops[0], 10**9, "r0"),
        app.spend("spend1", wallets[1], shops[0], 1, "r1"),
        app.spend("spend-chain", wallets[1], shops[1], 1, "r2"),
        app.issue_voucher("voucher0", wallets[2], 1),
    ]
    if prizes:
        spends += [app.claim_prize(f"claim{i}", w, prizes[0]) for i, w in enumerate(wallets[1:])]
    spent = run(spends)
    out += spent
    (voucher,) = _ids(spent, "voucher_id")

    out += run(
        [
            app.redeem_voucher("redeem0", voucher, shops[0]),
            app.redeem_voucher("redeem1", voucher, shops[0]),
            app.close_wallet("close3", wallets[3]),
            app.spend("after-close", wallets[3], shops[0], 1, "r3"),
            # Leaving stops earning at once, even while a final spend window is open.
            app.record_activity("earn-after-close", wallets[3], *_EARNING[app.key]),
            app.spend("spend1", wallets[1], shops[0], 1, "r1"),  # a retry, inside a later phase
        ]
    )
    return out, wallets


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def normalised(results: list[Result]) -> list[Any]:
    """Results with random ids replaced by their order of appearance, errors by type and text."""
    seen: dict[str, str] = {}

    def label(m: re.Match[str]) -> str:
        return seen.setdefault(m.group(0), f"<id{len(seen)}>")

    def norm(value: Any) -> Any:
        if isinstance(value, DomainError):
            return (type(value).__name__, _UUID.sub(label, str(value)))
        if isinstance(value, dict):
            return {k: norm(v) for k, v in value.items()}
        if isinstance(value, str):
            return _UUID.sub(label, value)
        return value

    return [norm(r) for r in results]
