"""Clearing between two city nodes over real gRPC (mutual TLS between them, staff bearer
tokens): a month of Vienna tokens redeemed at a Sint-Niklaas shop is cleared, both nodes
record the same statement signed by both, a tampered or disagreeing statement is refused,
and Sint-Niklaas's exposure limit for Vienna's tokens is enforced before the reserve."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aggregates.clearing import Figures, Line, PartnerExposure
from civfed.v1 import (
    clearing_pb2,
    clearing_pb2_grpc,
    federation_pb2,
    federation_pb2_grpc,
    merchant_pb2,
    wallet_pb2,
)
from services.cli.main import main
from services.clock import MovableClock, utcnow
from services.demo.local_federation import LocalFederation
from services.federation.clearing import Records, all_records, records
from services.federation.vouchers import load_private_key, load_public_key
from services.grpc.clearing_client import figures_message, line_message
from services.settings.cities import PACKAGED_CITIES
from tests.e2e.cluster import conservation
from tests.e2e.flows import accept, shop, vienna_citizen

LIMIT = 30  # Vienna tokens Sint-Niklaas lets Vienna owe it, uncleared


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalFederation, MovableClock]]:
    folder = Path(tmp_path_factory.mktemp("clearing"))
    cities = folder / "cities"
    shutil.copytree(PACKAGED_CITIES, cities)
    toml = cities / "sint_niklaas" / "city.toml"
    text = toml.read_text()
    marker = "[federation.accepts.vienna]\n"
    assert marker in text
    toml.write_text(text.replace(marker, f"{marker}exposure_limit = {LIMIT}\n"))
    clock = MovableClock()
    fed = LocalFederation(folder, ["vienna", "sint_niklaas"], extra_env={"CIVFED_CITIES_DIR": str(cities)})
    for city in fed.cities:
        fed.start_in_process(city, clock)
    yield fed, clock
    for city, running in fed.running.items():
        conservation(running.node.app, city)
    fed.stop_all()


def admin(fed: LocalFederation, city: str) -> Any:
    return clearing_pb2_grpc.ClearingAdminServiceStub(fed.channel(city))


def as_partner(fed: LocalFederation, caller: str, callee: str) -> Any:
    f = fed.files[caller]
    return fed.channel(callee, f.cert, f.key)


def refused(fn: Any, request: Any, **kw: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        fn(request, timeout=30, **kw)
    return info.value.code(), info.value.details() or ""


def settlement_total(fed: LocalFederation) -> tuple[int, int]:
    """Vienna's tokens redeemed at Sint-Niklaas, as each node reports to the other (GetSettlement)."""
    vienna = federation_pb2_grpc.FederationServiceStub(as_partner(fed, "sint_niklaas", "vienna"))
    sn = federation_pb2_grpc.FederationServiceStub(as_partner(fed, "vienna", "sint_niklaas"))
    (home,) = vienna.GetSettlement(federation_pb2.GetSettlementRequest(), timeout=5).positions
    (acceptor,) = sn.GetSettlement(federation_pb2.GetSettlementRequest(), timeout=5).positions
    return home.payable_units, acceptor.receivable_units


def cleared_and_open(fed: LocalFederation, city: str) -> tuple[int, int, list[Any]]:
    """What `city`'s statements cleared of Vienna's tokens, and what is open, by its own node."""
    request = clearing_pb2.ListClearingsRequest()
    listed = admin(fed, city).ListClearings(request, metadata=fed.stubs(city).staff)
    cleared = sum(s.figures.owed_by_b for s in listed.statements)  # city_b is vienna
    (position,) = listed.open
    owed = position.owed_by_us if city == "vienna" else position.owed_by_partner
    return cleared, owed, list(listed.statements)


def check_conservation(fed: LocalFederation) -> None:
    """For the pair: cleared + open = the sum of the redemptions between them, on both nodes."""
    home_total, acceptor_total = settlement_total(fed)
    assert home_total == acceptor_total
    for city in ("vienna", "sint_niklaas"):
        cleared, open_, _ = cleared_and_open(fed, city)
        assert cleared + open_ == home_total, city
        # The node's book, followed call by call, is what one read of its whole store finds.
        app = fed.running[city].node.app
        followed = fed.running[city].node.clearing.book.refresh(app)
        assert followed == all_records(app), city


def month(at: dt.datetime) -> str:
    return at.strftime("%Y-%m")


def next_month(period: str) -> str:
    year, m = map(int, period.split("-"))
    return f"{year + m // 12}-{m % 12 + 1:02d}"


def test_two_nodes_clear_a_month_and_record_the_same_signed_statement(
    world: tuple[LocalFederation, MovableClock],
) -> None:
    fed, clock = world
    v, sn = fed.stubs("vienna"), fed.stubs("sint_niklaas")
    _, bakker = shop(sn, "Bakker")
    ida = vienna_citizen(v, "ida", 6000)  # 60 Wienertoken
    period = month(utcnow())
    for i, amount in enumerate((5, 7, 4)):
        accept(sn, bakker, ida.voucher(amount, f"v{i}"), f"sale{i}")

    # The exposure limit: 16 open, 15 more would make 31 > 30; refused before any hold.
    token = ida.voucher(15, "over")
    code, details = refused(sn.merchant.AcceptVoucher, _accept(token, "over"), metadata=bakker)
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "exposure limit" in details and "30" in details, details
    assert ida.balance().balance.units == 60 - 16

    # Not before the month is over.
    run = clearing_pb2.RunClearingRequest(partner_city="sint_niklaas", period=period)
    code, details = refused(admin(fed, "vienna").RunClearing, run, metadata=v.staff)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "not over" in details

    clock.offset = dt.timedelta(days=40)
    statement = admin(fed, "vienna").RunClearing(run, metadata=v.staff, timeout=30).statement
    f = statement.figures
    assert (f.city_a, f.city_b, f.period, f.owed_by_a, f.owed_by_b, f.redemptions) == (
        "sint_niklaas",
        "vienna",
        period,
        0,
        16,
        3,
    )
    # Signed by both cities' keys, over the same figures.
    figures = Figures(f.city_a, f.city_b, f.period, f.owed_by_a, f.owed_by_b, f.redemptions, f.digest)
    load_public_key(fed.files["sint_niklaas"].public_key).verify(statement.signature_a, figures.payload())
    load_public_key(fed.files["vienna"].public_key).verify(statement.signature_b, figures.payload())
    # Both nodes recorded exactly this statement.
    for city in ("vienna", "sint_niklaas"):
        _, open_, statements = cleared_and_open(fed, city)
        assert statements == [statement]
        assert open_ == 0  # the next period starts at zero
        # The node's book keeps only the last period cleared with each partner, not the
        # statements and their redemptions: a statement is read from the store when listed.
        node = fed.running[city].node
        partner = "vienna" if city == "sint_niklaas" else "sint_niklaas"
        assert node.clearing.book.refresh(node.app)[partner] == Records([], period)
    # Again: the same statement, nothing recorded twice; from the other side too.
    assert admin(fed, "vienna").RunClearing(run, metadata=v.staff, timeout=30).statement == statement
    back = clearing_pb2.RunClearingRequest(partner_city="vienna", period=period)
    assert admin(fed, "sint_niklaas").RunClearing(back, metadata=sn.staff, timeout=30).statement == statement
    check_conservation(fed)

    # Cleared, the exposure is free again: the 15 now go through, and are open.
    accept(sn, bakker, ida.voucher(15, "after"), "after")
    assert cleared_and_open(fed, "vienna")[1] == 15
    assert cleared_and_open(fed, "sint_niklaas")[1] == 15
    check_conservation(fed)

    # A redemption the home refuses (the tokens were spent meanwhile) gives its room back.
    exposure = PartnerExposure.create_id("sint_niklaas", "vienna")
    sn_app = fed.running["sint_niklaas"].node.app
    before = sn_app.repository.get(exposure)
    assert before.open == 15
    token = ida.voucher(10, "spent-meanwhile")
    kaffeehaus, _ = shop(v, "Kaffeehaus")
    spend = wallet_pb2.SpendRequest(
        idempotency_key="spend", wallet_id=ida.wallet_id, merchant_id=kaffeehaus, amount=25, purchase_ref="p1"
    )
    v.wallet.Spend(spend, metadata=ida.auth, timeout=5)
    code, _ = refused(sn.merchant.AcceptVoucher, _accept(token, "spent"), metadata=bakker)
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    after = sn_app.repository.get(exposure)
    assert (after.open, after.version) == (15, before.version + 2)  # used, then given back


def _accept(token: str, key: str) -> Any:
    return merchant_pb2.AcceptVoucherRequest(idempotency_key=key, redemption_token=token)


def propose(fed: LocalFederation, figures: Figures, signature: bytes, lines: list[Line] | None = None) -> Any:
    stub = clearing_pb2_grpc.ClearingServiceStub(as_partner(fed, "vienna", "sint_niklaas"))
    request = clearing_pb2.ProposeClearingRequest(
        figures=figures_message(figures), signature=signature, lines=[line_message(x) for x in lines or []]
    )
    return stub, request


def test_tampered_or_disagreeing_statements_are_refused(world: tuple[LocalFederation, MovableClock]) -> None:
    fed, clock = world
    period = next_month(month(utcnow()))
    clock.offset = dt.timedelta(days=70)  # the month after the cleared one is over too
    # Sint-Niklaas's own count of the open month: the 15 redeemed after the first clearing.
    true, lines, _ = fed.running["sint_niklaas"].node.clearing.draft("vienna", period)
    assert (true.owed_by_b, true.redemptions) == (15, 1)
    vienna_key = load_private_key(fed.files["vienna"].signing_key)

    # A signature by another key, or figures altered after signing: refused, nothing recorded.
    stub, request = propose(fed, true, Ed25519PrivateKey.generate().sign(true.payload()))
    code, details = refused(stub.ProposeClearing, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "not signed by vienna" in details
    altered = Figures(true.city_a, true.city_b, period, 0, 14, 1, true.digest)
    stub, request = propose(fed, altered, vienna_key.sign(true.payload()))
    assert refused(stub.ProposeClearing, request)[0] == grpc.StatusCode.INVALID_ARGUMENT

    # Signed by Vienna but counting 14 for the redemption Sint-Niklaas counts as 15.
    (line,) = lines
    wrong = [Line(line.redemption_id, "vienna", 14, line.at)]
    disputed = Figures.of("sint_niklaas", "vienna", period, wrong)
    stub, request = propose(fed, disputed, vienna_key.sign(disputed.payload()))
    answer = stub.ProposeClearing(request, timeout=30)
    assert not answer.agreed and not answer.countersignature
    assert set(answer.differing_figures) == {"owed_by_b", "digest"}
    stub, request = propose(fed, disputed, vienna_key.sign(disputed.payload()), wrong)
    answer = stub.ProposeClearing(request, timeout=30)
    assert not answer.agreed
    assert answer.first_differing_redemption == line.redemption_id
    assert (answer.proposer_amount, answer.receiver_amount) == (14, 15)
    assert answer.proposer_counts and answer.receiver_counts
    # Lines that do not add up to the signed figures: a tampered statement.
    extra = [*wrong, Line(str(uuid4()), "vienna", 1)]
    stub, request = propose(fed, disputed, vienna_key.sign(disputed.payload()), extra)
    assert refused(stub.ProposeClearing, request)[0] == grpc.StatusCode.INVALID_ARGUMENT
    # A redemption Vienna does not count at all.
    missing = Figures.of("sint_niklaas", "vienna", period, [])
    stub, request = propose(fed, missing, vienna_key.sign(missing.payload()), [])
    answer = stub.ProposeClearing(request, timeout=30)
    assert not answer.agreed and set(answer.differing_figures) == {"owed_by_b", "redemptions", "digest"}
    assert answer.first_differing_redemption == line.redemption_id
    assert not answer.proposer_counts and (answer.receiver_counts, answer.receiver_amount) == (True, 15)
    # Nothing of it was recorded: the month is still open on both sides.
    for city in ("vienna", "sint_niklaas"):
        assert cleared_and_open(fed, city)[1] == 15
    check_conservation(fed)

    # A node whose own records count it otherwise: the staff call is refused, naming it.
    node = fed.running["vienna"].node
    found = records(node.app, "sint_niklaas")
    wrong_draft = (disputed, wrong, found)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(node.clearing, "draft", lambda partner, p: wrong_draft)
        run = clearing_pb2.RunClearingRequest(partner_city="sint_niklaas", period=period)
        code, details = refused(admin(fed, "vienna").RunClearing, run, metadata=fed.stubs("vienna").staff)
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert details == (
        f"sint_niklaas disagrees with the clearing statement for {period}: first differing redemption "
        f"{line.redemption_id}: vienna counts 14, sint_niklaas counts 15"
    )
    for city in ("vienna", "sint_niklaas"):
        assert cleared_and_open(fed, city)[1] == 15

    # The true figures clear, proposed by the other side this time; Sint-Niklaas stops after
    # Vienna countersigned and recorded, before its own save.
    sn = fed.stubs("sint_niklaas")
    run = clearing_pb2.RunClearingRequest(partner_city="vienna", period=period)
    sn_clearing = fed.running["sint_niklaas"].node.clearing

    def stopped(*args: Any) -> Any:
        raise RuntimeError("stopped before saving")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sn_clearing, "_record", stopped)
        code, _ = refused(admin(fed, "sint_niklaas").RunClearing, run, metadata=sn.staff)
    assert code == grpc.StatusCode.INTERNAL
    assert cleared_and_open(fed, "vienna")[:2] == (31, 0)
    assert cleared_and_open(fed, "sint_niklaas")[:2] == (16, 15)
    # Run again, even with a count of its own that differs meanwhile: Vienna answers with the
    # statement it recorded, signed by both, and Sint-Niklaas records it, its records bearing it out.
    sn_found = records(fed.running["sint_niklaas"].node.app, "vienna")
    other = Figures.of("sint_niklaas", "vienna", period, [])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sn_clearing, "draft", lambda partner, p: (other, [], sn_found))
        statement = admin(fed, "sint_niklaas").RunClearing(run, metadata=sn.staff, timeout=30).statement
    assert (statement.figures.owed_by_b, statement.figures.redemptions) == (15, 1)
    for city in ("vienna", "sint_niklaas"):
        cleared, open_, statements = cleared_and_open(fed, city)
        assert (cleared, open_) == (31, 0)
        assert statements[-1] == statement
    check_conservation(fed)


def clearing_cli(
    fed: LocalFederation, monkeypatch: pytest.MonkeyPatch, capsys: Any, token: str, *argv: str
) -> tuple[int, Any]:
    monkeypatch.setenv("CIVFED_STAFF_ACCESS_TOKEN", token)
    city = argv[argv.index("--city") + 1]
    port = fed.running[city].public_port
    where = ["--address", f"127.0.0.1:{port}", "--ca", str(fed.ca.ca_file)]
    code = main(["clearing", *argv, *where])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if code == 0 else out.err)


def test_staff_clear_and_list_from_the_command_line(
    world: tuple[LocalFederation, MovableClock], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    fed, _ = world
    approver = fed.idp.token("cora", ["council_approver"])
    auditor = fed.idp.token("aldo", ["auditor"])
    code, listed = clearing_cli(fed, monkeypatch, capsys, auditor, "list", "--city", "sint_niklaas")
    assert code == 0 and listed["city"] == "sint_niklaas"
    assert [s["period"] for s in listed["statements"]] == [month(utcnow()), next_month(month(utcnow()))]
    assert listed["open"] == [
        {"partner_city": "vienna", "owed_by_us": 0, "owed_by_partner": 0, "redemptions": 0}
    ]
    # Running a cleared month again gives the statement both cities signed.
    argv = ("run", "--city", "vienna", "--partner", "sint_niklaas", "--period", month(utcnow()))
    code, statement = clearing_cli(fed, monkeypatch, capsys, approver, *argv)
    assert code == 0 and statement == listed["statements"][0]
    # An auditor reads but does not sign for the city.
    code, err = clearing_cli(fed, monkeypatch, capsys, auditor, *argv)
    assert code == 1 and "PERMISSION_DENIED" in err
    # A month not over yet.
    late = ("run", "--city", "vienna", "--partner", "sint_niklaas", "--period", "2099-01")
    code, err = clearing_cli(fed, monkeypatch, capsys, approver, *late)
    assert code == 1 and "FAILED_PRECONDITION" in err and "not over" in err


def test_clearing_messages_carry_no_wallet_or_shop() -> None:
    """Everything nodes exchange to clear: figures, signatures, and on disagreement the lines
    (redemption id, home city, amount, time) and the first difference. Nothing else."""
    fields = {
        name: {f.name for f in getattr(clearing_pb2, name).DESCRIPTOR.fields}
        for name in ("ProposeClearingRequest", "ProposeClearingResponse", "ClearingFigures", "ClearingLine")
    }
    assert fields == {
        "ProposeClearingRequest": {"figures", "signature", "lines"},
        "ProposeClearingResponse": {
            "agreed",
            "countersignature",
            "differing_figures",
            "first_differing_redemption",
            "proposer_amount",
            "proposer_counts",
            "receiver_amount",
            "receiver_counts",
            "recorded",
            "recorded_proposer_signature",
            "recorded_redemption_ids",
        },
        "ClearingFigures": {"city_a", "city_b", "period", "owed_by_a", "owed_by_b", "redemptions", "digest"},
        "ClearingLine": {"redemption_id", "home_city", "amount", "recorded_at"},
    }
    service = clearing_pb2.DESCRIPTOR.services_by_name["ClearingService"]
    assert {m.name for m in service.methods} == {"ProposeClearing"}
