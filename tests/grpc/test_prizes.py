"""Rome's partner prizes over gRPC against a real node: a partner (by its till credential)
offers a prize, residents claim it, the price is held until the partner hands it over,
cancels, or the claim expires on the city's clock (released by the node's sweep). And a
tourist is told over gRPC when their wallet expires, and can spend in the window after."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.message_factory import GetMessageClass
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from civfed.v1 import merchant_pb2, prizes_pb2, wallet_pb2
from services.city_totals import city_totals
from services.demo.local_federation import CityStubs, LocalFederation
from services.grpc.auth import bearer
from services.grpc.server import RunningNode
from tests.e2e.cluster import conservation
from tests.e2e.flows import CONSENT

START = dt.datetime(2026, 5, 4, 9, 0, tzinfo=dt.UTC)
ROME = CONSENT["rome"]


class ScenarioClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class Rome:
    fed: LocalFederation
    running: RunningNode
    clock: ScenarioClock

    @property
    def stubs(self) -> CityStubs:
        return self.fed.stubs("rome")

    def resident(self, key: str, drop_offs: int = 1) -> tuple[str, Any]:
        """A resident with 10 points per recycling drop-off; their wallet id and credential."""
        r = self.stubs
        opened = r.wallet.OpenWallet(
            wallet_pb2.OpenWalletRequest(
                idempotency_key=key, participant_kind="resident", consent_version=ROME
            ),
            metadata=r.staff,
            timeout=5,
        )
        for i in range(drop_offs):
            self.earn(f"{key}:drop{i}", opened.wallet_id)
        return opened.wallet_id, bearer(opened.holder_token)

    def earn(self, key: str, wallet_id: str) -> None:
        r = self.stubs
        req = wallet_pb2.RecordActivityRequest(
            idempotency_key=key,
            wallet_id=wallet_id,
            activity="eco_action",
            fields={"action": "recycling_drop_off", "date": "2026-05-04"},
            activity_id=key,
        )
        r.wallet.RecordActivity(req, metadata=r.staff, timeout=5)

    def partner(self, key: str) -> tuple[str, Any]:
        """A partner business registered by a merchant administrator: its id and till credential."""
        r = self.stubs
        shop = r.merchant.RegisterMerchant(
            merchant_pb2.RegisterMerchantRequest(
                idempotency_key=key, name="Museo", category="culture", local=True
            ),
            metadata=self.fed.staff("mia", "merchant_admin"),
            timeout=5,
        )
        return shop.merchant_id, bearer(shop.merchant_token)

    def offer(self, till: Any, key: str, cost: int = 10, stock: int = 3) -> str:
        req = prizes_pb2.OfferPrizeRequest(idempotency_key=key, name="Museum ticket", cost=cost, stock=stock)
        return str(self.stubs.prizes.OfferPrize(req, metadata=till, timeout=5).prize_id)

    def claim(self, holder: Any, key: str, wallet_id: str, prize_id: str) -> Any:
        req = prizes_pb2.ClaimPrizeRequest(idempotency_key=key, wallet_id=wallet_id, prize_id=prize_id)
        return self.stubs.prizes.ClaimPrize(req, metadata=holder, timeout=10)

    def balance(self, holder: Any, wallet_id: str) -> Any:
        req = wallet_pb2.GetBalanceRequest(wallet_id=wallet_id)
        return self.stubs.wallet.GetBalance(req, metadata=holder, timeout=5)

    def stock(self, till: Any, prize_id: str) -> int:
        listed = self.stubs.prizes.ListPrizes(prizes_pb2.ListPrizesRequest(), metadata=till, timeout=5)
        return next(int(p.stock) for p in listed.prizes if p.prize_id == prize_id)


@pytest.fixture(scope="module")
def rome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rome]:
    fed = LocalFederation(Path(tmp_path_factory.mktemp("prizes")), ["rome"])
    clock = ScenarioClock()
    running = fed.start_in_process("rome", clock)
    try:
        yield Rome(fed, running, clock)
        conservation(running.node.app, "rome")
    finally:
        fed.stop_all()


def refused(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value


def conserved(rome: Rome) -> None:
    """Balances + holds + spent (+ lapsed) = issued, from the events and every wallet."""
    app = rome.running.node.app
    found = conservation(app, "rome")
    totals = city_totals(app, "rome")
    assert found["balances"] + totals.spent + totals.lapsed + totals.burned == totals.issued


def test_ten_residents_race_for_the_last_three_units_and_exactly_three_win(rome: Rome) -> None:
    _, till = rome.partner("race:partner")
    prize = rome.offer(till, "race:offer", cost=10, stock=5)
    early = [rome.resident(f"race:early{i}") for i in range(2)]
    for i, (wallet, holder) in enumerate(early):
        rome.claim(holder, f"race:early-claim{i}", wallet, prize)
    assert rome.stock(till, prize) == 3
    racers = [rome.resident(f"race:r{i}") for i in range(10)]
    start = threading.Barrier(len(racers))

    def race(i: int) -> grpc.StatusCode | str:
        wallet, holder = racers[i]
        start.wait()
        try:
            return str(rome.claim(holder, f"race:claim{i}", wallet, prize).claim_id)
        except grpc.RpcError as exc:
            assert "out of stock" in (exc.details() or ""), exc.details()
            return exc.code()

    with ThreadPoolExecutor(len(racers)) as pool:
        outcomes = list(pool.map(race, range(len(racers))))
    won = [o for o in outcomes if isinstance(o, str)]
    assert len(won) == 3 and len(set(won)) == 3
    assert outcomes.count(grpc.StatusCode.FAILED_PRECONDITION) == 7
    assert rome.stock(till, prize) == 0
    # The winners' price is held, the others' wallets untouched.
    for i, outcome in enumerate(outcomes):
        seen = rome.balance(racers[i][1], racers[i][0])
        assert (seen.balance.units, seen.held.units) == ((10, 10) if isinstance(outcome, str) else (10, 0))
    # A sold-out prize refuses the next claim too, with its reason.
    late_wallet, late_holder = rome.resident("race:late")
    err = refused(lambda: rome.claim(late_holder, "race:late-claim", late_wallet, prize))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "out of stock" in (err.details() or "")
    conserved(rome)


def test_the_hand_over_spends_the_held_price_to_the_partner(rome: Rome) -> None:
    _, till = rome.partner("confirm:partner")
    prize = rome.offer(till, "confirm:offer", cost=15, stock=2)
    wallet, holder = rome.resident("confirm:w", drop_offs=2)
    claim = rome.claim(holder, "confirm:claim", wallet, prize)
    assert (claim.state, claim.cost.units) == ("held", 15)
    seen = rome.balance(holder, wallet)
    assert (seen.balance.units, seen.available.units, seen.held.units) == (20, 5, 15)
    # The holder cannot spend what is held.
    spend = wallet_pb2.SpendRequest(
        idempotency_key="confirm:spend", wallet_id=wallet, merchant_id=rome.partner("confirm:other")[0]
    )
    spend.amount, spend.purchase_ref = 10, "r1"
    err = refused(lambda: rome.stubs.wallet.Spend(spend, metadata=holder, timeout=5))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    p = rome.stubs.prizes
    req = prizes_pb2.ConfirmHandoverRequest(idempotency_key="confirm:handover", claim_id=claim.claim_id)
    done = p.ConfirmHandover(req, metadata=till, timeout=5)
    assert done.state == "handed_over"
    assert p.ConfirmHandover(req, metadata=till, timeout=5) == done  # a retry: the same answer
    seen = rome.balance(holder, wallet)
    assert (seen.balance.units, seen.held.units) == (5, 0)
    statement = rome.stubs.merchant.GetStatement(merchant_pb2.GetStatementRequest(), metadata=till, timeout=5)
    assert [(line.kind, line.credited.units) for line in statement.lines] == [("prize", 15)]
    again = prizes_pb2.ConfirmHandoverRequest(idempotency_key="confirm:again", claim_id=claim.claim_id)
    err = refused(lambda: p.ConfirmHandover(again, metadata=till, timeout=5))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "handed over" in (err.details() or "")
    mine = p.ListMyPrizeClaims(
        prizes_pb2.ListMyPrizeClaimsRequest(wallet_id=wallet), metadata=holder, timeout=5
    )
    assert [(c.claim_id, c.state) for c in mine.claims] == [(claim.claim_id, "handed_over")]
    conserved(rome)


def test_a_cancelled_claim_releases_the_price_and_the_unit(rome: Rome) -> None:
    _, till = rome.partner("cancel:partner")
    prize = rome.offer(till, "cancel:offer", cost=10, stock=1)
    wallet, holder = rome.resident("cancel:w")
    claim = rome.claim(holder, "cancel:claim", wallet, prize)
    assert rome.stock(till, prize) == 0
    p = rome.stubs.prizes
    req = prizes_pb2.CancelClaimRequest(
        idempotency_key="cancel:c", claim_id=claim.claim_id, reason="closed today"
    )
    assert p.CancelClaim(req, metadata=till, timeout=5).state == "cancelled"
    assert p.CancelClaim(req, metadata=till, timeout=5).state == "cancelled"  # a retry
    seen = rome.balance(holder, wallet)
    assert (seen.balance.units, seen.available.units, seen.held.units) == (10, 10, 0)
    assert rome.stock(till, prize) == 1
    handover = prizes_pb2.ConfirmHandoverRequest(idempotency_key="cancel:h", claim_id=claim.claim_id)
    err = refused(lambda: p.ConfirmHandover(handover, metadata=till, timeout=5))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "cancelled" in (err.details() or "")
    conserved(rome)


def test_an_expired_claim_is_released_by_the_sweep_on_the_citys_clock(rome: Rome) -> None:
    _, till = rome.partner("expire:partner")
    prize = rome.offer(till, "expire:offer", cost=10, stock=1)
    wallet, holder = rome.resident("expire:w")
    claim = rome.claim(holder, "expire:claim", wallet, prize)
    hours = rome.running.node.app.city.config.prize_claim_hours
    assert claim.expires_at == (rome.clock.now + dt.timedelta(hours=hours)).isoformat()
    rome.running.node.sweep()  # not yet due: nothing happens
    assert rome.balance(holder, wallet).held.units == 10
    rome.clock.now += dt.timedelta(hours=hours)
    try:
        rome.running.node.sweep()
        p = rome.stubs.prizes
        mine = p.ListMyPrizeClaims(
            prizes_pb2.ListMyPrizeClaimsRequest(wallet_id=wallet), metadata=holder, timeout=5
        )
        assert [c.state for c in mine.claims] == ["expired"]
        seen = rome.balance(holder, wallet)
        assert (seen.balance.units, seen.held.units) == (10, 0)
        assert rome.stock(till, prize) == 1
        req = prizes_pb2.ConfirmHandoverRequest(idempotency_key="expire:h", claim_id=claim.claim_id)
        err = refused(lambda: p.ConfirmHandover(req, metadata=till, timeout=5))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "expired" in (err.details() or "")
    finally:
        rome.clock.now = START
    conserved(rome)


def test_one_partners_till_cannot_touch_another_partners_prizes_or_claims(rome: Rome) -> None:
    _, till = rome.partner("own:partner")
    _, other = rome.partner("own:intruder")
    prize = rome.offer(till, "own:offer", cost=10, stock=2)
    wallet, holder = rome.resident("own:w")
    claim = rome.claim(holder, "own:claim", wallet, prize).claim_id
    p = rome.stubs.prizes
    calls = {
        "update": lambda: p.UpdatePrize(
            prizes_pb2.UpdatePrizeRequest(idempotency_key="x1", prize_id=prize, name="Mine", cost=1, stock=9),
            metadata=other,
        ),
        "withdraw": lambda: p.WithdrawPrize(
            prizes_pb2.WithdrawPrizeRequest(idempotency_key="x2", prize_id=prize), metadata=other
        ),
        "confirm": lambda: p.ConfirmHandover(
            prizes_pb2.ConfirmHandoverRequest(idempotency_key="x3", claim_id=claim), metadata=other
        ),
        "cancel": lambda: p.CancelClaim(
            prizes_pb2.CancelClaimRequest(idempotency_key="x4", claim_id=claim), metadata=other
        ),
    }
    for what, call in calls.items():
        assert refused(call).code() == grpc.StatusCode.NOT_FOUND, what
    theirs = p.ListPartnerClaims(prizes_pb2.ListPartnerClaimsRequest(), metadata=other, timeout=5)
    assert list(theirs.claims) == []
    listed = p.ListPrizes(prizes_pb2.ListPrizesRequest(), metadata=other, timeout=5)
    assert list(listed.prizes) == []
    ours = p.ListPartnerClaims(prizes_pb2.ListPartnerClaimsRequest(), metadata=till, timeout=5)
    assert [c.claim_id for c in ours.claims] == [claim]
    assert rome.stock(till, prize) == 1
    # A holder claims only for their own wallet.
    other_wallet, _ = rome.resident("own:w2")
    err = refused(lambda: rome.claim(holder, "own:theirs", other_wallet, prize))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    conserved(rome)


def test_update_withdraw_and_retries_of_every_command(rome: Rome) -> None:
    _, till = rome.partner("upd:partner")
    p = rome.stubs.prizes
    prize = rome.offer(till, "upd:offer", cost=10, stock=2)
    assert rome.offer(till, "upd:offer", cost=10, stock=2) == prize  # a retry: the same prize
    wallet, holder = rome.resident("upd:w", drop_offs=3)
    first = rome.claim(holder, "upd:claim", wallet, prize)
    assert rome.claim(holder, "upd:claim", wallet, prize) == first  # a retry: one claim, one hold
    assert rome.balance(holder, wallet).held.units == 10
    update = prizes_pb2.UpdatePrizeRequest(
        idempotency_key="upd:u", prize_id=prize, name="Two tickets", cost=20
    )
    update.stock = 4
    changed = p.UpdatePrize(update, metadata=till, timeout=5)
    assert (changed.name, changed.cost.units, changed.stock) == ("Two tickets", 20, 4)
    second = rome.claim(holder, "upd:claim2", wallet, prize)
    assert second.cost.units == 20 and rome.balance(holder, wallet).held.units == 30  # first keeps its price
    withdraw = prizes_pb2.WithdrawPrizeRequest(idempotency_key="upd:w", prize_id=prize)
    assert p.WithdrawPrize(withdraw, metadata=till, timeout=5).withdrawn
    assert p.WithdrawPrize(withdraw, metadata=till, timeout=5).withdrawn
    listed = p.ListPrizes(prizes_pb2.ListPrizesRequest(), metadata=holder, timeout=5)
    assert prize not in [x.prize_id for x in listed.prizes]
    err = refused(lambda: rome.claim(holder, "upd:claim3", wallet, prize))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "withdrawn" in (err.details() or "")
    # Claims made before the withdrawal are still handed over.
    req = prizes_pb2.ConfirmHandoverRequest(idempotency_key="upd:h", claim_id=first.claim_id)
    assert p.ConfirmHandover(req, metadata=till, timeout=5).state == "handed_over"
    bad = prizes_pb2.OfferPrizeRequest(idempotency_key="upd:bad", name="Free", cost=0, stock=1)
    err = refused(lambda: p.OfferPrize(bad, metadata=till, timeout=5))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "cost" in (err.details() or "")
    conserved(rome)


def test_a_tourist_is_told_when_the_wallet_expires_and_spends_in_the_window_after(rome: Rome) -> None:
    r = rome.stubs
    until = START + dt.timedelta(days=7)
    opened = r.wallet.OpenWallet(
        wallet_pb2.OpenWalletRequest(
            idempotency_key="tourist:open",
            participant_kind="tourist",
            consent_version=ROME,
            valid_until=until.isoformat(),
        ),
        metadata=r.staff,
        timeout=5,
    )
    holder = bearer(opened.holder_token)
    rome.earn("tourist:drop", opened.wallet_id)
    days = rome.running.node.app.city.config.final_spend_days
    seen = rome.balance(holder, opened.wallet_id)
    assert seen.expires_on == until.isoformat()
    assert seen.final_spend_until == (until + dt.timedelta(days=days)).isoformat()
    resident = rome.balance(*reversed(rome.resident("tourist:resident")))
    assert (resident.expires_on, resident.final_spend_until) == ("", "")
    shop, _ = rome.partner("tourist:shop")
    rome.clock.now = until + dt.timedelta(days=1)
    try:
        spend = wallet_pb2.SpendRequest(
            idempotency_key="tourist:spend", wallet_id=opened.wallet_id, merchant_id=shop, amount=4
        )
        spend.purchase_ref = "gelato"
        assert rome.stubs.wallet.Spend(spend, metadata=holder, timeout=5).spent.units == 4
        rome.clock.now = until + dt.timedelta(days=days)
        spend2 = wallet_pb2.SpendRequest(
            idempotency_key="tourist:spend2", wallet_id=opened.wallet_id, merchant_id=shop, amount=1
        )
        spend2.purchase_ref = "late"
        err = refused(lambda: rome.stubs.wallet.Spend(spend2, metadata=holder, timeout=5))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        rome.clock.now = START
    naive = wallet_pb2.OpenWalletRequest(
        idempotency_key="tourist:naive",
        participant_kind="tourist",
        consent_version=ROME,
        valid_until="2026-05-10T12:00:00",
    )
    err = refused(lambda: r.wallet.OpenWallet(naive, metadata=r.staff, timeout=5))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "valid_until" in (err.details() or "")
    conserved(rome)


def test_a_client_with_no_stubs_finds_and_calls_the_prize_service_through_reflection(rome: Rome) -> None:
    """What `grpcurl` does: the public port (server authentication only), reflection for the
    contract, and a call built from the reflected descriptors alone."""
    _, till = rome.partner("reflect:partner")
    rome.offer(till, "reflect:offer", cost=5, stock=1)
    creds = grpc.ssl_channel_credentials(root_certificates=Path(rome.fed.ca.ca_file).read_bytes())
    port = rome.running.public_port
    channel = grpc.secure_channel(
        f"127.0.0.1:{port}", creds, options=[("grpc.ssl_target_name_override", "rome")]
    )
    try:
        database = ProtoReflectionDescriptorDatabase(channel)
        assert "civfed.v1.PrizeService" in database.get_services()
        pool = descriptor_pool.DescriptorPool(database)
        method = pool.FindServiceByName("civfed.v1.PrizeService").FindMethodByName("ListPrizes")
        request = GetMessageClass(method.input_type)()
        response = GetMessageClass(method.output_type)
        call = channel.unary_unary(
            "/civfed.v1.PrizeService/ListPrizes",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response.FromString,
        )
        listed = call(request, metadata=till, timeout=5)
        assert [(p.name, p.cost.units, p.stock) for p in listed.prizes] == [("Museum ticket", 5, 1)]
    finally:
        channel.close()
