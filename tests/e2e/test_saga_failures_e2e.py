"""The saga when a node dies or a partner repeats itself."""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import grpc
import pytest
from cluster import CITIES, Cluster, conservation
from flows import Citizen, shop, vienna_citizen

from aggregates.redemption import ForeignRedemption
from civfed.v1 import federation_pb2, federation_pb2_grpc, merchant_pb2, wallet_pb2
from services.demo.local_federation import LocalFederation
from services.event_log import event_type, read_events
from services.federation.partner import Outcome
from services.grpc.server import RunningNode
from services.unit_of_work import UnitOfWork

ACCEPTED = federation_pb2.DECISION_ACCEPTED


def as_city(cluster: Cluster, caller: str, callee: str) -> federation_pb2_grpc.FederationServiceStub:
    """Call `callee`'s federation service with `caller`'s node certificate."""
    f = cluster.fed.files[caller]
    return federation_pb2_grpc.FederationServiceStub(cluster.fed.channel(callee, f.cert, f.key))


def count(cluster: Cluster, city: str, kind: str) -> int:
    app = cluster.open_app(city)
    try:
        return sum(1 for _, e in read_events(app) if event_type(e) == kind)
    finally:
        app.close()


def wait_until(check: object, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.2)


def reserved(cluster: Cluster, citizen: Citizen, amount: int) -> tuple[str, str]:
    token = citizen.voucher(amount, f"v{amount}")
    sn = as_city(cluster, "sint_niklaas", "vienna")
    reply = sn.Reserve(federation_pb2.ReserveRequest(idempotency_key="r1", redemption_token=token), timeout=5)
    assert reply.decision == ACCEPTED and reply.amount.units == amount
    assert citizen.balance().held.units == amount
    return token, reply.redemption_id


def test_home_killed_after_reserve_then_the_hold_lapses(cluster: Cluster) -> None:
    v = cluster.stubs("vienna")
    fay = vienna_citizen(v, "fay", 600)
    _, rid = reserved(cluster, fay, 4)
    cluster.kill("vienna")  # SIGKILL: no chance to tidy up
    sn = as_city(cluster, "sint_niklaas", "vienna")
    with pytest.raises(grpc.RpcError) as err:
        sn.Commit(federation_pb2.CommitRequest(idempotency_key="c1", redemption_id=rid), timeout=1)
    assert err.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    cluster.fed.move_clock(6.5)  # the hold lapses while Vienna is down
    cluster.start("vienna")
    fay.city = cluster.stubs("vienna")
    # The restarted node's sweeper releases the lapsed hold; a late commit is refused.
    wait_until(lambda: fay.balance().held.units == 0)
    with pytest.raises(grpc.RpcError) as err:
        as_city(cluster, "sint_niklaas", "vienna").Commit(
            federation_pb2.CommitRequest(idempotency_key="c2", redemption_id=rid), timeout=5
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "expired" in err.value.details()
    assert fay.balance().balance.units == 6
    assert count(cluster, "vienna", "Wallet.HoldBurned") == 0
    assert count(cluster, "vienna", "Redemption.Expired") == 1


def test_home_killed_after_reserve_then_cancel_releases_the_hold(cluster: Cluster) -> None:
    v = cluster.stubs("vienna")
    gus = vienna_citizen(v, "gus", 600)
    _, rid = reserved(cluster, gus, 2)
    cluster.kill("vienna")
    cluster.start("vienna")
    gus.city = cluster.stubs("vienna")
    sn = as_city(cluster, "sint_niklaas", "vienna")
    req = federation_pb2.CancelRequest(idempotency_key="x1", redemption_id=rid, reason="shop cancelled")
    assert sn.Cancel(req, timeout=5).released
    assert sn.Cancel(req, timeout=5).released  # a retry changes nothing
    assert (gus.balance().balance.units, gus.balance().held.units) == (6, 0)
    # Rome is a partner too, but this is not its redemption: refused, and nothing moves.
    with pytest.raises(grpc.RpcError) as err:
        as_city(cluster, "rome", "vienna").Commit(
            federation_pb2.CommitRequest(idempotency_key="c", redemption_id=rid), timeout=5
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_acceptor_retrying_commit_burns_once(cluster: Cluster) -> None:
    v = cluster.stubs("vienna")
    hal = vienna_citizen(v, "hal", 500)
    _, rid = reserved(cluster, hal, 5)
    sn = as_city(cluster, "sint_niklaas", "vienna")
    # The same key (a retry after a lost reply) and a fresh key (a confused acceptor).
    for key in ("c1", "c1", "c2", "c3"):
        reply = sn.Commit(federation_pb2.CommitRequest(idempotency_key=key, redemption_id=rid), timeout=5)
        assert reply.decision == ACCEPTED and reply.amount.units == 5
    assert (hal.balance().balance.units, hal.balance().held.units) == (0, 0)
    assert count(cluster, "vienna", "Wallet.HoldBurned") == 1
    assert count(cluster, "vienna", "Redemption.Committed") == 1
    # A key reused with different parameters is refused and changes nothing.
    with pytest.raises(grpc.RpcError) as err:
        sn.Cancel(federation_pb2.CancelRequest(idempotency_key="c1", redemption_id=rid), timeout=5)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def refusal(call: Any, request: Any, rid: str = "") -> tuple[grpc.StatusCode, str]:
    """The status and details a call fails with, the redemption id it names written as <id>."""
    with pytest.raises(grpc.RpcError) as err:
        call(request, timeout=5)
    details = err.value.details() or ""
    return err.value.code(), details.replace(rid, "<id>") if rid else details


def test_another_partners_redemption_answers_exactly_like_an_unknown_one(cluster: Cluster) -> None:
    v = cluster.stubs("vienna")
    ivy = vienna_citizen(v, "ivy", 500)
    _, rid = reserved(cluster, ivy, 3)  # reserved by Sint-Niklaas
    rome = as_city(cluster, "rome", "vienna")
    not_found = (grpc.StatusCode.NOT_FOUND, "redemption <id> not found")
    # Sint-Niklaas's redemption, an id that exists nowhere, then the first again.
    for n, target in enumerate((rid, str(uuid4()), rid)):
        commit = federation_pb2.CommitRequest(idempotency_key=f"rc{n}", redemption_id=target)
        cancel = federation_pb2.CancelRequest(idempotency_key=f"rx{n}", redemption_id=target)
        # Rome learns nothing: neither whether the id exists nor that another city holds it.
        assert refusal(rome.Commit, commit, target) == not_found
        assert refusal(rome.Cancel, cancel, target) == not_found
        assert refusal(rome.Commit, commit, target) == not_found  # a retry
    assert (ivy.balance().balance.units, ivy.balance().held.units) == (5, 3)  # nothing moved
    sn = as_city(cluster, "sint_niklaas", "vienna")
    done = sn.Commit(federation_pb2.CommitRequest(idempotency_key="c1", redemption_id=rid), timeout=5)
    assert (done.decision, done.amount.units) == (ACCEPTED, 3)
    assert (ivy.balance().balance.units, ivy.balance().held.units) == (2, 0)


def test_a_reserve_key_reused_for_another_voucher_is_the_reused_key_error(cluster: Cluster) -> None:
    v = cluster.stubs("vienna")
    jo = vienna_citizen(v, "jo", 500)
    first, other = jo.voucher(2, "vj1"), jo.voucher(3, "vj2")
    sn = as_city(cluster, "sint_niklaas", "vienna")

    def reserve(key: str, token: str) -> federation_pb2.ReserveRequest:
        return federation_pb2.ReserveRequest(idempotency_key=key, redemption_token=token)

    reply = sn.Reserve(reserve("rk", first), timeout=5)
    assert (reply.decision, reply.amount.units) == (ACCEPTED, 2)
    # The same key with the same voucher: the stored answer, and nothing held twice.
    assert sn.Reserve(reserve("rk", first), timeout=5) == reply
    # The same key with another voucher: the answer every command gives for a reused key,
    # not a refusal that would read as the holder lacking tokens.
    reused = (
        grpc.StatusCode.FAILED_PRECONDITION,
        "idempotency key was already used with different parameters",
    )
    assert refusal(sn.Reserve, reserve("rk", other)) == reused
    issue = wallet_pb2.IssueRedemptionVoucherRequest(idempotency_key="vj1", wallet_id=jo.wallet_id, amount=1)
    assert refusal(partial(v.wallet.IssueRedemptionVoucher, metadata=jo.auth), issue) == reused
    assert (jo.balance().balance.units, jo.balance().held.units) == (5, 2)  # the other voucher held nothing
    fresh = sn.Reserve(reserve("rk2", other), timeout=5)
    assert (fresh.decision, fresh.amount.units) == (ACCEPTED, 3)
    for n, r in enumerate((reply, fresh)):
        sn.Cancel(
            federation_pb2.CancelRequest(idempotency_key=f"x{n}", redemption_id=r.redemption_id), timeout=5
        )
    assert (jo.balance().balance.units, jo.balance().held.units) == (5, 0)


def test_graceful_shutdown_exits_cleanly(cluster: Cluster) -> None:
    assert cluster.stop("rome") == 0


@pytest.fixture
def home_and_acceptor(tmp_path: Path) -> Iterator[tuple[Cluster, RunningNode]]:
    """Vienna as a `civfed serve` process; Sint-Niklaas in this process, so a test can time a crash."""
    fed = LocalFederation(tmp_path, CITIES, hold_seconds=6, sweep_seconds=0.3, movable_clock=True)
    cluster = Cluster(fed)
    cluster.start("vienna")
    acceptor = fed.start_in_process("sint_niklaas")
    yield cluster, acceptor
    for s in cluster._stubs.values():
        s.close()
    fed.stop_all()
    for city in list(cluster.procs):
        assert cluster.stop(city) == 0
    for city in ("vienna", "sint_niklaas"):
        app = cluster.open_app(city)
        try:
            conservation(app, city)
        finally:
            app.close()


def kill_home_before_commit(cluster: Cluster, acceptor: RunningNode) -> None:
    """The next commit the acceptor sends finds Vienna gone: killed after reserve, before commit."""
    partner = acceptor.node.partners["vienna"]
    commit = partner.commit

    def killed_first(key: str, redemption_id: UUID) -> Outcome:
        cluster.kill("vienna")
        partner.commit = commit  # type: ignore[method-assign]
        return commit(key, redemption_id)

    partner.commit = killed_first  # type: ignore[method-assign]


def saga_states(acceptor: RunningNode) -> list[str]:
    app = acceptor.node.app
    return [
        UnitOfWork(app).get(e.originator_id, ForeignRedemption, "saga").state
        for _, e in read_events(app)
        if event_type(e) == "ForeignRedemption.Started"
    ]


def sale_during_crash(cluster: Cluster, acceptor: RunningNode, name: str) -> tuple[Citizen, object]:
    """A shop presents a voucher for 3 of 5 tokens; Vienna dies between reserve and commit."""
    v = cluster.stubs("vienna")
    citizen = vienna_citizen(v, name, 500)
    token = citizen.voucher(3, "v1")
    s = cluster.fed.stubs("sint_niklaas")
    _, shop_auth = shop(s, f"Shop of {name}")
    kill_home_before_commit(cluster, acceptor)
    request = merchant_pb2.AcceptVoucherRequest(idempotency_key="sale", redemption_token=token)
    with pytest.raises(grpc.RpcError) as err:
        s.merchant.AcceptVoucher(request, metadata=shop_auth, timeout=20)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE  # the shop may retry with the same key
    assert saga_states(acceptor) == ["credited"]
    return citizen, (s, shop_auth)


def statement_total(shop: object) -> int:
    s, auth = shop  # type: ignore[misc]
    return int(
        s.merchant.GetStatement(merchant_pb2.GetStatementRequest(), metadata=auth, timeout=5).total.units
    )


def test_home_killed_mid_saga_and_back_in_time_commits_once(home_and_acceptor: Any) -> None:
    cluster, acceptor = home_and_acceptor
    citizen, till = sale_during_crash(cluster, acceptor, "ivo")
    cluster.start("vienna")  # back within the hold: the acceptor's sweeper finishes the sale
    citizen.city = cluster.stubs("vienna")
    wait_until(lambda: saga_states(acceptor) == ["committed"])
    assert (citizen.balance().balance.units, citizen.balance().held.units) == (2, 0)
    assert statement_total(till) == 150
    assert count(cluster, "vienna", "Wallet.HoldBurned") == 1


def test_home_killed_mid_saga_past_the_hold_reverses_the_credit(home_and_acceptor: Any) -> None:
    cluster, acceptor = home_and_acceptor
    citizen, till = sale_during_crash(cluster, acceptor, "jo")
    cluster.fed.move_clock(6.5)  # the hold lapses while Vienna is down
    cluster.start("vienna")
    citizen.city = cluster.stubs("vienna")
    wait_until(lambda: saga_states(acceptor) == ["reversed"])
    wait_until(lambda: citizen.balance().held.units == 0)
    assert citizen.balance().balance.units == 5  # nothing burned
    assert statement_total(till) == 0  # credited once, reversed once
    assert count(cluster, "vienna", "Wallet.HoldBurned") == 0
    assert count(cluster, "vienna", "Redemption.Expired") == 1
