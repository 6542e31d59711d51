"""Every command's idempotency key: same key and parameters replay, other parameters conflict."""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
from collections.abc import Callable
from typing import Any, get_args, get_origin, get_type_hints
from uuid import UUID, uuid4

import pytest
from city_scenarios import normalised, run_singly, season
from citykit import T0, Cities, log_count, merchant, open_wallet, wallet_state
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aggregates.errors import IdempotencyConflict, InsufficientBalance, InvalidInput, VoucherAlreadyRedeemed
from services import commands as c
from services.city import CityApplication
from services.claims import new_source_key, public_pem
from services.federation.acceptor import Acceptor
from services.federation.home import HomeRedemptions
from services.federation.local_partner import LocalPartner
from services.identity.credentials import NewCredential
from services.unit_of_work import Job

CITIES = ["vienna", "rome", "sint_niklaas", "bologna"]


@pytest.mark.parametrize("city", CITIES)
def test_a_second_run_of_a_season_returns_the_same_results_and_writes_nothing(
    cities: Cities, city: str
) -> None:
    app = cities.open(city)
    first, wallets = season(app, run_singly(app))
    count = log_count(app)
    states = [wallet_state(app, w) for w in wallets]
    second, _ = season(app, run_singly(app))
    assert normalised(second) == normalised(first)
    # Not just alike: the very same ids come back.
    assert [r for r in second if isinstance(r, dict)] == [r for r in first if isinstance(r, dict)]
    assert log_count(app) == count
    assert [wallet_state(app, w) for w in wallets] == states


def _commands(app: CityApplication, w: UUID, shop: UUID) -> list[tuple[Callable[..., Job], tuple, tuple]]:
    """(builder, original arguments after the key, different arguments) for each command."""
    consent = app.city.config.consent_versions[-1]
    activity = {
        "vienna": ("trip", {"mode": "bike", "distance_m": 200_000, "date": "2026-05-04"}),
        "rome": ("eco_action", {"action": "recycling_drop_off", "date": "2026-05-04"}),
        "sint_niklaas": ("bike_engraving", {"subject": "SN-77", "date": "2026-05-04"}),
        "bologna": ("eco_action", {"action": "bike_to_work", "date": "2026-05-04"}),
    }[app.key]
    other_fields = {**activity[1], "date": "2026-05-05"}
    return [
        (app.open_wallet, ("resident", consent), ("business", consent)),
        (app.register_merchant, ("Bar", "food", True), ("Bar", "food", False)),
        (app.record_activity, (w, activity[0], activity[1]), (w, activity[0], other_fields)),
        (app.spend, (w, shop, 1, "r1"), (w, shop, 2, "r1")),
        (app.issue_voucher, (w, 1), (w, 2)),
        (app.close_wallet, (w, "moving away"), (w, "other reason")),
    ]


@pytest.mark.parametrize("city", CITIES)
def test_every_command_replays_and_refuses_other_parameters(cities: Cities, city: str) -> None:
    app = cities.open(city)
    w = open_wallet(app, "w")
    shop = merchant(app, "shop")
    for n, (build, args, other) in enumerate(_commands(app, w, shop)):
        key = f"k{n}"
        result = app.execute(build(key, *args))
        count, state = log_count(app), wallet_state(app, w)
        assert app.execute(build(key, *args)) == result, build.__name__
        assert log_count(app) == count, build.__name__
        with pytest.raises(IdempotencyConflict):
            app.execute(build(key, *other))
        assert log_count(app) == count, build.__name__
        assert wallet_state(app, w) == state, build.__name__


def test_a_successful_command_replays_even_when_it_would_now_fail(cities: Cities) -> None:
    app = cities.open("vienna")
    w, shop = open_wallet(app, "w"), merchant(app, "shop")
    app.execute(
        app.record_activity("t", w, "trip", {"mode": "bike", "distance_m": 100_000, "date": "2026-05-04"})
    )
    assert app.execute(app.spend("s", w, shop, 1, "r")) == {"spent": 1, "available": 0}
    assert app.execute(app.spend("s", w, shop, 1, "r")) == {"spent": 1, "available": 0}
    assert wallet_state(app, w)["balance"] == 0


def test_a_refusal_replays_identically_even_after_the_state_changed(cities: Cities) -> None:
    app = cities.open("vienna")
    w, shop = open_wallet(app, "w"), merchant(app, "shop")
    with pytest.raises(InsufficientBalance) as first:
        app.execute(app.spend("s", w, shop, 1, "r"))
    app.execute(
        app.record_activity("t", w, "trip", {"mode": "bike", "distance_m": 100_000, "date": "2026-05-04"})
    )
    count = log_count(app)
    with pytest.raises(InsufficientBalance) as again:
        app.execute(app.spend("s", w, shop, 1, "r"))
    assert str(again.value) == str(first.value)
    assert log_count(app) == count
    assert wallet_state(app, w)["balance"] == 1
    with pytest.raises(IdempotencyConflict):
        app.execute(app.spend("s", w, shop, 2, "r"))
    # A fresh key is decided on today's state.
    assert app.execute(app.spend("s2", w, shop, 1, "r")) == {"spent": 1, "available": 0}


def test_a_redeemed_voucher_refusal_replays(cities: Cities) -> None:
    app = cities.open("vienna")
    w, shop = open_wallet(app, "w"), merchant(app, "shop")
    app.execute(
        app.record_activity("t", w, "trip", {"mode": "bike", "distance_m": 100_000, "date": "2026-05-04"})
    )
    voucher = UUID(app.execute(app.issue_voucher("v", w, 1))["voucher_id"])
    assert app.execute(app.redeem_voucher("r1", voucher, shop))["amount"] == 1
    assert app.execute(app.redeem_voucher("r1", voucher, shop))["amount"] == 1
    with pytest.raises(VoucherAlreadyRedeemed) as first:
        app.execute(app.redeem_voucher("r2", voucher, shop))
    count = log_count(app)
    with pytest.raises(VoucherAlreadyRedeemed) as again:
        app.execute(app.redeem_voucher("r2", voucher, shop))
    assert str(again.value) == str(first.value)
    assert log_count(app) == count
    assert wallet_state(app, w)["balance"] == 0


def test_every_command_needs_a_key(cities: Cities) -> None:
    app = cities.open("rome")
    count = log_count(app)
    with pytest.raises(InvalidInput) as exc:
        app.execute(app.open_wallet("", "resident", "roma-2026-03"))
    assert exc.value.field == "idempotency_key"
    assert log_count(app) == count


# -- every command class, every field ------------------------------------------------------


def command_classes() -> list[type[c.Command]]:
    """Every command in services/commands.py, read from the module: a new one is covered."""
    return [
        cls
        for _, cls in inspect.getmembers(c, inspect.isclass)
        if issubclass(cls, c.Command) and cls is not c.Command
    ]


TRIP = {"mode": "bike", "distance_m": 500_000, "date": "2026-05-04"}  # 100 kg CO2: 5 tokens
Example = tuple[CityApplication, c.Command]


def vienna(cities: Cities) -> tuple[CityApplication, UUID, UUID]:
    """Vienna with a wallet holding 5 tokens and a local shop."""
    app = cities.open("vienna")
    w = open_wallet(app, "w")
    app.execute(app.record_activity("funds", w, "trip", TRIP))
    return app, w, merchant(app, "shop")


def zwolle(cities: Cities) -> tuple[CityApplication, UUID, UUID]:
    """Zwolle with a wallet that claimed a slot of a food-bank task that has started."""
    app = cities.open("zwolle")
    assert app.workflow is not None
    w = open_wallet(app, "w")
    window = (T0, T0 + dt.timedelta(hours=4))
    task = UUID(
        app.execute(app.workflow.post_task("task", "food-bank", "Voedselbank", *window, 2, "coord:anna"))[
            "task_id"
        ]
    )
    app.execute(app.workflow.claim_task("claim", task, w))
    return app, w, task


def logged(cities: Cities) -> tuple[CityApplication, UUID, UUID]:
    app, w, task = zwolle(cities)
    assert app.workflow is not None
    return app, w, UUID(app.execute(app.workflow.log_minutes("log", task, w, 90))["log_id"])


def _open_wallet(cities: Cities) -> Example:
    app = cities.open("vienna")
    return app, c.OpenWallet("k", "resident", app.city.config.consent_versions[-1])


def _record_activity(cities: Cities) -> Example:
    app, w, _ = vienna(cities)
    return app, c.RecordActivity("k", w, "trip", {**TRIP, "distance_m": 40_000})


def _set_bank_account(cities: Cities) -> Example:
    app = cities.open("sint_niklaas")
    shop = merchant(app, "shop")
    return app, c.SetBankAccount("k", shop, "BE71096123456769", "", "Bakkerij Jan", True, "staff:mia")


def _propose_payout_run(cities: Cities) -> Example:
    """A week over before the clock's day (T0 is in ISO week 19)."""
    return cities.open("sint_niklaas"), c.ProposePayoutRun("k", "2026-W17", "staff:ann")


def _run_payouts(cities: Cities) -> Example:
    """The week's run another finance officer proposed."""
    app = cities.open("sint_niklaas")
    app.execute(c.ProposePayoutRun("proposed", "2026-W17", "staff:ann"))
    return app, c.RunPayouts("k", "2026-W17", "staff:fin")


def _register_merchant(cities: Cities) -> Example:
    return cities.open("vienna"), c.RegisterMerchant("k", "Bar Rosa", "cafe", True)


def _spend(cities: Cities) -> Example:
    app, w, shop = vienna(cities)
    return app, c.Spend("k", w, shop, 1, "receipt 17")


def _offer_prize(cities: Cities) -> Example:
    app, _, shop = vienna(cities)
    return app, c.OfferPrize("k", shop, "Bread", 1, 5)


def _claim_prize(cities: Cities) -> Example:
    app, w, shop = vienna(cities)
    prize = UUID(app.execute(app.offer_prize("prize", shop, "Bread", 1, 5))["prize_id"])
    return app, c.ClaimPrize("k", w, prize)


def _rome_prize(cities: Cities, stock: int = 5) -> tuple[CityApplication, UUID, UUID, UUID]:
    """Rome with a resident holding 10 points, a partner and its prize of 5 points."""
    app = cities.open("rome")
    w = open_wallet(app, "w")
    fields = {"action": "recycling_drop_off", "date": "2026-05-04"}
    app.execute(app.record_activity("funds", w, "eco_action", fields))
    shop = merchant(app, "partner")
    prize = UUID(app.execute(app.offer_prize("prize", shop, "Gelato", 5, stock))["prize_id"])
    return app, w, shop, prize


def _prize_claim(cities: Cities) -> tuple[CityApplication, UUID, UUID]:
    app, w, shop, prize = _rome_prize(cities)
    claim = UUID(app.execute(c.PlacePrizeClaim("claim", w, prize))["claim_id"])
    return app, shop, claim


def _update_prize(cities: Cities) -> Example:
    app, _, shop, prize = _rome_prize(cities)
    return app, c.UpdatePrize("k", shop, prize, "Two gelati", 8, 3)


def _withdraw_prize(cities: Cities) -> Example:
    app, _, shop, prize = _rome_prize(cities)
    return app, c.WithdrawPrize("k", shop, prize)


def _place_prize_claim(cities: Cities) -> Example:
    app, w, _, prize = _rome_prize(cities)
    return app, c.PlacePrizeClaim("k", w, prize)


def _confirm_prize_handover(cities: Cities) -> Example:
    app, shop, claim = _prize_claim(cities)
    return app, c.ConfirmPrizeHandover("k", shop, claim)


def _cancel_prize_claim(cities: Cities) -> Example:
    app, shop, claim = _prize_claim(cities)
    return app, c.CancelPrizeClaim("k", shop, claim, "closed today")


def _expire_prize_claim(cities: Cities) -> Example:
    app, _, claim = _prize_claim(cities)
    cities.clock.advance(hours=app.city.config.prize_claim_hours)
    return app, c.ExpirePrizeClaim("k", claim)


def _expire_wallet(cities: Cities) -> Example:
    app = cities.open("rome")
    w = open_wallet(app, "t", "tourist", valid_until=cities.clock() + dt.timedelta(days=2))
    fields = {"action": "recycling_drop_off", "date": "2026-05-04"}
    app.execute(app.record_activity("funds", w, "eco_action", fields))
    cities.clock.advance(days=3)
    return app, c.ExpireWallet("k", w)


def _issue_voucher(cities: Cities) -> Example:
    app, w, _ = vienna(cities)
    return app, c.IssueVoucher("k", w, 1)


def _redeem_voucher(cities: Cities) -> Example:
    app, w, shop = vienna(cities)
    voucher = UUID(app.execute(app.issue_voucher("voucher", w, 1))["voucher_id"])
    return app, c.RedeemVoucher("k", voucher, shop)


def _close_wallet(cities: Cities) -> Example:
    app, w, _ = vienna(cities)
    return app, c.CloseWallet("k", w, "moving away")


def _finish_closing(cities: Cities) -> Example:
    app, w, _ = vienna(cities)
    app.execute(app.close_wallet("close", w, "moving away"))  # 5 tokens left: a final spend window
    cities.clock.advance(days=app.city.config.final_spend_days + 1)
    return app, c.FinishClosing("k", w)


def _erase_wallet(cities: Cities) -> Example:
    app, w, _ = vienna(cities)
    return app, c.EraseWallet("k", w, "asked to be forgotten")


def _file_appeal(cities: Cities) -> Example:
    app, w, _ = vienna(cities)
    return app, c.FileAppeal("k", w, "missing_award", "trip of 4 May", "not credited", "holder")


def _decide_appeal(cities: Cities) -> Example:
    app, w, _ = vienna(cities)
    filed = app.execute(app.file_appeal("file", w, "missing_award", "trip of 4 May", "missing", "holder"))
    return app, c.DecideAppeal("k", UUID(filed["appeal_id"]), False, "it was credited", "officer:eva")


def _publish_category(cities: Cities) -> Example:
    app, _, _ = zwolle(cities)
    return app, c.PublishCategory("k", "river-clean-up", "River clean-up", "civic", "council 2026/17")


def _retire_category(cities: Cities) -> Example:
    app, _, _ = zwolle(cities)
    return app, c.RetireCategory("k", "litter-picking", "council 2026/18")


def _post_task(cities: Cities) -> Example:
    app, _, _ = zwolle(cities)
    return app, c.PostTask("k", "food-bank", "Voedselbank", T0, T0 + dt.timedelta(hours=3), 3, "coord:bert")


def _close_task(cities: Cities) -> Example:
    app, _, task = zwolle(cities)
    return app, c.CloseTask("k", task, "enough hands", "staff:anna")


def _claim_task(cities: Cities) -> Example:
    app, _, task = zwolle(cities)
    return app, c.ClaimTask("k", task, open_wallet(app, "other"))


def _log_minutes(cities: Cities) -> Example:
    app, w, task = zwolle(cities)
    return app, c.LogMinutes("k", task, w, 90)


def _approve_log(cities: Cities) -> Example:
    app, _, log = logged(cities)
    return app, c.ApproveLog("k", log, "coord:anna")


def _reject_log(cities: Cities) -> Example:
    app, _, log = logged(cities)
    return app, c.RejectLog("k", log, "coord:anna", "the food bank was closed that day")


def _pay_tax(cities: Cities) -> Example:
    app, w, log = logged(cities)
    assert app.workflow is not None
    app.execute(app.workflow.approve_log("approve", log, "coord:anna"))  # 150 hundredths
    return app, c.PayTax("k", w, 100, "AANSLAG-2026-0417")


def _issue_credential(cities: Cities) -> Example:
    app, _, _ = vienna(cities)
    w = open_wallet(app, "fresh")
    return app, c.IssueCredential("k", "holder", w, uuid4(), "0" * 64, "phone", 365, "staff:eva", True)


def _revoke_credential(cities: Cities) -> Example:
    app, _, _ = vienna(cities)
    w = open_wallet(app, "fresh")
    new = NewCredential.make("holder", w)
    app.execute(app.issue_credential("issue", new, "phone", 365, "staff:eva", first_only=True))
    return app, c.RevokeCredential("k", "holder", w, new.credential_id, "holder:" + str(w), "lost phone")


KEYS = [public_pem(new_source_key()) for _ in range(2)]
BIKE_150_KM = {"activity": "trip", "field": "distance_m", "max_per_day": 150_000, "where": {"mode": "bike"}}


def _register_source(cities: Cities) -> Example:
    app = cities.open("vienna")
    kinds, bounds = ["trip"], [BIKE_150_KM]
    return app, c.RegisterSource(
        "k", "wien-mobility", "Mobility", "k1", KEYS[0], kinds, bounds, "staff:s", "x"
    )


def _with_source(cities: Cities) -> tuple[CityApplication, UUID]:
    app, w, _ = vienna(cities)
    app.execute(dataclasses.replace(_register_source(cities)[1], idempotency_key="register"))
    return app, w


def _rotate_source_key(cities: Cities) -> Example:
    app, _ = _with_source(cities)
    return app, c.RotateSourceKey("k", "wien-mobility", "k2", KEYS[1], "staff:s", "yearly rotation")


def _retire_source(cities: Cities) -> Example:
    app, _ = _with_source(cities)
    return app, c.RetireSource("k", "wien-mobility", "staff:s", "contract ended")


def _submit_claim(cities: Cities) -> Example:
    app, w = _with_source(cities)
    fields = {"mode": "bike", "distance_m": 40_000}
    return app, c.SubmitClaim("k", "wien-mobility", "c1", w, "trip", fields, T0.date().isoformat())


def _record_desk_activity(cities: Cities) -> Example:
    app = cities.open("sint_niklaas")
    w = open_wallet(app, "w")
    fields = {"subject": "SN-77", "date": "2026-05-04"}
    return app, c.RecordDeskActivity("k", w, "bike_engraving", fields, None, "staff:desk-1")


def _report_purchase(cities: Cities) -> Example:
    app = cities.open("sint_niklaas")
    w = open_wallet(app, "w")
    shop = UUID(app.execute(app.register_merchant("shop", "Café Pax", "cafe", True))["merchant_id"])
    return app, c.ReportPurchase("k", shop, "R-0001", w, 5_000, T0.date().isoformat())


ECO_POINTS = {"points": {"recycling_drop_off": 12, "public_transport_ride": 5}}


def _propose_rule_change(cities: Cities) -> Example:
    app = cities.open("rome")
    on = T0.date() + dt.timedelta(days=7)
    return app, c.ProposeRuleChange(
        "k", "eco-actions", "change", "", "", ECO_POINTS, {}, "more for recycling", on, "staff:anna"
    )


def _proposal(cities: Cities) -> tuple[CityApplication, str]:
    app = cities.open("rome")
    on = T0.date() + dt.timedelta(days=7)
    job = app.propose_rule_change(
        "p", "eco-actions", "change", "", "", ECO_POINTS, {}, "more", on, "staff:anna"
    )
    return app, str(app.execute(job)["proposal_id"])


def _approve_rule_change(cities: Cities) -> Example:
    app, proposal = _proposal(cities)
    return app, c.ApproveRuleChange("k", proposal, "Delibera 12", "staff:bruno")


def _reject_rule_change(cities: Cities) -> Example:
    app, proposal = _proposal(cities)
    return app, c.RejectRuleChange("k", proposal, "no budget", "staff:bruno")


def _propose_fund_top_up(cities: Cities) -> Example:
    app = cities.open("rome")
    return app, c.ProposeFundTopUp("k", "partners", 10_000, "a new partner's prizes", "staff:anna")


def _approve_fund_top_up(cities: Cities) -> Example:
    app = cities.open("rome")
    proposed = app.execute(app.job(c.ProposeFundTopUp("p", "city", 10_000, "more", "staff:anna")))
    return app, c.ApproveFundTopUp("k", "city", str(proposed["proposal_id"]), "Delibera 13", "staff:bruno")


def _record_access(cities: Cities) -> Example:
    app, w, _ = vienna(cities)
    return app, c.RecordAccess("k", w, "staff:eva", ("appeals_officer",), "read history", "appeal 17", True)


def _erase_own_wallet(cities: Cities) -> Example:
    app, w, _ = vienna(cities)
    return app, c.EraseOwnWallet("k", w)


def _request_erasure(cities: Cities) -> Example:
    app, w, _ = vienna(cities)
    return app, c.RequestErasure(
        "k", w, "art17_1b_consent_withdrawn", "case-2026-17", "staff:eva", ("erasure_officer",)
    )


def _erasure_request(cities: Cities) -> tuple[CityApplication, UUID]:
    app, cmd = _request_erasure(cities)
    return app, UUID(app.execute(dataclasses.replace(cmd, idempotency_key="request"))["request_id"])


def _approve_erasure(cities: Cities) -> Example:
    app, request = _erasure_request(cities)
    return app, c.ApproveErasure("k", request, "staff:bruno", ("erasure_officer",))


def _withdraw_erasure(cities: Cities) -> Example:
    app, request = _erasure_request(cities)
    return app, c.WithdrawErasure("k", request, "staff:eva", ("erasure_officer",), "asked in error")


def _rotate_credential(cities: Cities) -> Example:
    app, _, _ = vienna(cities)
    w = open_wallet(app, "fresh")
    new = NewCredential.make("holder", w)
    app.execute(app.issue_credential("issue", new, "phone", 365, "staff:eva", first_only=True))
    return app, c.RotateCredential(
        "k", w, "new phone", 365, True, new.credential_id, new.secret, uuid4(), "1" * 64
    )


def _request_recovery(cities: Cities) -> Example:
    app, w, _ = vienna(cities)
    return app, c.RequestRecovery("k", w, "lost phone", "staff:eva", uuid4())


def _approve_recovery(cities: Cities) -> Example:
    app, w, _ = vienna(cities)
    recovery = uuid4()
    app.execute(c.RequestRecovery("ask", w, "lost phone", "staff:eva", recovery))
    return app, c.ApproveRecovery("k", w, recovery, "staff:jan", 365, uuid4(), "2" * 64)


def _issue_till_credential(cities: Cities) -> Example:
    app, _, shop = vienna(cities)
    return app, c.IssueTillCredential("k", shop, "till 2", 365, "staff:mia", uuid4(), "3" * 64)


SIGNING_KEY = Ed25519PrivateKey.generate()


def vienna_home(cities: Cities) -> tuple[CityApplication, HomeRedemptions, UUID]:
    """Vienna, redeeming at partners, with a wallet holding 5 tokens."""
    app, w, _ = vienna(cities)
    home = HomeRedemptions(app, SIGNING_KEY, dt.timedelta(minutes=15), dt.timedelta(minutes=2))
    return app, home, w


def reserved(cities: Cities) -> tuple[CityApplication, UUID]:
    """Vienna with a redemption Sint-Niklaas has reserved."""
    app, home, w = vienna_home(cities)
    voucher = home.voucher(app.execute(home.issue("voucher", w, 2))["token"])
    return app, UUID(app.execute(home.reserve("reserve", "sint_niklaas", voucher))["redemption_id"])


def _issue_redemption_voucher(cities: Cities) -> Example:
    app, _, w = vienna_home(cities)
    return app, c.IssueRedemptionVoucher("k", w, 2)


def _reserve_redemption(cities: Cities) -> Example:
    app, home, w = vienna_home(cities)
    voucher = home.voucher(app.execute(home.issue("voucher", w, 2))["token"])
    return app, c.ReserveRedemption("k", "sint_niklaas", voucher.voucher_id)


def _commit_redemption(cities: Cities) -> Example:
    app, rid = reserved(cities)
    return app, c.CommitRedemption("k", "sint_niklaas", rid)


def _cancel_redemption(cities: Cities) -> Example:
    app, rid = reserved(cities)
    return app, c.CancelRedemption("k", "sint_niklaas", rid, "shop closed")


def _expire_redemption(cities: Cities) -> Example:
    app, rid = reserved(cities)
    return app, c.ExpireRedemption("k", rid)


def _accept_foreign_voucher(cities: Cities) -> Example:
    vapp, home, w = vienna_home(cities)
    token = vapp.execute(home.issue("voucher", w, 2))["token"]
    app = cities.open("sint_niklaas")
    partner = LocalPartner(home, vapp.execute, "sint_niklaas")
    Acceptor(app, {"vienna": partner}, {"vienna": SIGNING_KEY.public_key()}, app.execute)
    return app, c.AcceptForeignVoucher("k", merchant(app, "shop"), token)


EXAMPLES: dict[type[c.Command], Callable[[Cities], Example]] = {
    c.OpenWallet: _open_wallet,
    c.RecordActivity: _record_activity,
    c.RegisterMerchant: _register_merchant,
    c.Spend: _spend,
    c.OfferPrize: _offer_prize,
    c.ClaimPrize: _claim_prize,
    c.IssueVoucher: _issue_voucher,
    c.UpdatePrize: _update_prize,
    c.WithdrawPrize: _withdraw_prize,
    c.PlacePrizeClaim: _place_prize_claim,
    c.ConfirmPrizeHandover: _confirm_prize_handover,
    c.CancelPrizeClaim: _cancel_prize_claim,
    c.ExpirePrizeClaim: _expire_prize_claim,
    c.ExpireWallet: _expire_wallet,
    c.RedeemVoucher: _redeem_voucher,
    c.CloseWallet: _close_wallet,
    c.FinishClosing: _finish_closing,
    c.EraseWallet: _erase_wallet,
    c.FileAppeal: _file_appeal,
    c.DecideAppeal: _decide_appeal,
    c.PublishCategory: _publish_category,
    c.RetireCategory: _retire_category,
    c.PostTask: _post_task,
    c.CloseTask: _close_task,
    c.ClaimTask: _claim_task,
    c.LogMinutes: _log_minutes,
    c.ApproveLog: _approve_log,
    c.RejectLog: _reject_log,
    c.PayTax: _pay_tax,
    c.IssueCredential: _issue_credential,
    c.RevokeCredential: _revoke_credential,
    c.RegisterSource: _register_source,
    c.RotateSourceKey: _rotate_source_key,
    c.RetireSource: _retire_source,
    c.SubmitClaim: _submit_claim,
    c.RecordDeskActivity: _record_desk_activity,
    c.ReportPurchase: _report_purchase,
    c.ProposeRuleChange: _propose_rule_change,
    c.ApproveRuleChange: _approve_rule_change,
    c.RejectRuleChange: _reject_rule_change,
    c.ProposeFundTopUp: _propose_fund_top_up,
    c.ApproveFundTopUp: _approve_fund_top_up,
    c.RecordAccess: _record_access,
    c.EraseOwnWallet: _erase_own_wallet,
    c.RequestErasure: _request_erasure,
    c.ApproveErasure: _approve_erasure,
    c.WithdrawErasure: _withdraw_erasure,
    c.RotateCredential: _rotate_credential,
    c.RequestRecovery: _request_recovery,
    c.ApproveRecovery: _approve_recovery,
    c.IssueTillCredential: _issue_till_credential,
    c.IssueRedemptionVoucher: _issue_redemption_voucher,
    c.ReserveRedemption: _reserve_redemption,
    c.CommitRedemption: _commit_redemption,
    c.CancelRedemption: _cancel_redemption,
    c.ExpireRedemption: _expire_redemption,
    c.AcceptForeignVoucher: _accept_foreign_voucher,
    c.SetBankAccount: _set_bank_account,
    c.ProposePayoutRun: _propose_payout_run,
    c.RunPayouts: _run_payouts,
}


def changed(value: Any, hint: Any) -> Any:
    """Another value of the field's type; None becomes a value of the type it stands in for."""
    if value is None:
        kind = next(a for a in get_args(hint) if a is not type(None))
        if kind is str:
            return "changed"
        if kind is dt.datetime:
            return T0 + dt.timedelta(days=1)
        if get_origin(kind) is dict:
            return {"changed": True}
        raise AssertionError(f"no other value known for an empty {hint}; add one here")
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "-changed"
    if isinstance(value, UUID):
        return uuid4()
    if isinstance(value, dt.datetime):
        return value + dt.timedelta(minutes=1)
    if isinstance(value, dt.date):
        return value + dt.timedelta(days=1)
    if isinstance(value, dict):
        return {**value, "changed": True}
    if isinstance(value, list):
        return [*value, "changed"]
    if isinstance(value, tuple):
        return (*value, "changed")
    raise AssertionError(f"no other value known for {value!r}; add one here")


def per_attempt(cls: type[c.Command]) -> set[str]:
    """Fields made anew by each attempt (a new credential's id and hash): not fingerprinted."""
    hints = get_type_hints(cls, include_extras=True)
    return {
        name
        for name, hint in hints.items()
        if any(isinstance(m, c.Attempt) for m in getattr(hint, "__metadata__", ()))
    }


def variants(original: c.Command, attempt: bool = False) -> dict[str, c.Command]:
    """The original with one field changed, for every field but the key (`attempt`: for every
    field made per attempt instead)."""
    hints = get_type_hints(type(original))
    fresh = per_attempt(type(original))
    return {
        f.name: dataclasses.replace(original, **{f.name: changed(getattr(original, f.name), hints[f.name])})
        for f in dataclasses.fields(original)
        if f.name != "idempotency_key" and (f.name in fresh) == attempt
    }


def test_the_module_holds_the_commands() -> None:
    names = [cls.name for cls in command_classes()]
    assert len(names) == len(set(names)) >= 21  # one receipt name per command


@pytest.mark.parametrize("cls", command_classes(), ids=lambda cls: cls.__name__)
def test_a_reused_key_is_bound_to_every_field_of_its_command(cities: Cities, cls: type[c.Command]) -> None:
    assert cls in EXAMPLES, f"add an example of {cls.__name__} to EXAMPLES"
    app, original = EXAMPLES[cls](cities)
    assert type(original) is cls
    result = app.execute(original)
    count = log_count(app)

    # The same key with the same fields replays the stored result, built anew or not.
    assert app.execute(original) == result
    assert app.execute(dataclasses.replace(original)) == result
    assert log_count(app) == count

    # The same key with any one field changed is refused, and changes nothing.
    others = variants(original)
    assert others, f"{cls.__name__} has no field but its key"
    for field, other in others.items():
        with pytest.raises(IdempotencyConflict):
            app.execute(other)
        assert log_count(app) == count, field

    # A field made per attempt (a retry's own new credential) is not part of the request:
    # the retry replays the first attempt's result.
    for field, retry in variants(original, attempt=True).items():
        assert app.execute(retry) == result, field
        assert log_count(app) == count, field

    # In a group commit too: the original replays, every variant is refused.
    grouped = app.execute_group([original, *others.values()])
    assert grouped[0] == result
    assert all(isinstance(r, IdempotencyConflict) for r in grouped[1:]), grouped
    assert log_count(app) == count
    assert app.execute(original) == result


def test_a_success_replays_though_the_same_command_would_now_be_invalid(cities: Cities) -> None:
    app = cities.open("rome")
    consent = app.city.config.consent_versions[-1]
    cmd = c.OpenWallet("tourist", "tourist", consent, T0 + dt.timedelta(days=2))
    opened = app.execute(cmd)
    cities.clock.advance(days=3)
    # Asked afresh, the validity end is now in the past; retried, the key gets its answer.
    with pytest.raises(InvalidInput):
        app.execute(dataclasses.replace(cmd, idempotency_key="tourist-again"))
    count = log_count(app)
    assert app.execute(cmd) == opened
    assert app.execute_group([cmd]) == [opened]
    assert log_count(app) == count
