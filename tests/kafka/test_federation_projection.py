"""Real cross-city redemptions between city nodes, through relay, topic and projection, into settlement."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from civfed.v1 import federation_pb2, federation_pb2_grpc
from projections.dashboard_view import city_dashboard, federation_dashboard
from projections.integration import to_integration_event
from projections.kafka_source import KafkaSource
from projections.log_source import catch_up_log
from projections.projector import Projector
from projections.settlement import matrix, net_positions
from projections.store import Store
from services.demo.local_federation import LocalFederation
from services.relay import Relay
from services.settings.disclosure import disclosure_policies
from tests.e2e.flows import accept, rome_citizen, shop, vienna_citizen
from tests.grpc.conftest import in_process_federation
from tests.kafka.conftest import Broker, snapshot

CITIES = ["vienna", "rome", "sint_niklaas"]


@pytest.fixture
def fed(tmp_path: Path) -> Iterator[LocalFederation]:
    with in_process_federation(tmp_path, CITIES) as f:
        yield f


def redeem_across(fed: LocalFederation) -> None:
    """Ten Viennese at a Rome shop, ten Romans at a Vienna shop, three Viennese in Sint-Niklaas."""
    v, r, s = fed.stubs("vienna"), fed.stubs("rome"), fed.stubs("sint_niklaas")
    _, forno = shop(r, "Forno")
    _, kaffeehaus = shop(v, "Kaffeehaus")
    _, bakker = shop(s, "Bakker")
    for i in range(10):
        viennese = vienna_citizen(v, f"v{i}", 300)
        assert accept(r, forno, viennese.voucher(2, "v"), f"f{i}").credited.units == 4  # 2 points a token
        roman = rome_citizen(r, f"r{i}", 1)
        assert accept(v, kaffeehaus, roman.voucher(7, "v"), f"k{i}").credited.units == 3  # half, rounded down
    for i in range(3):
        viennese = vienna_citizen(v, f"sn{i}", 100)
        accept(s, bakker, viennese.voucher(1, "v"), f"b{i}")
    for stubs in (v, r, s):
        stubs.close()


def node_net(fed: LocalFederation, city: str, partner: str) -> int | None:
    """`city`'s net position with `partner` as its node reports it to that partner (None: no claims)."""
    f = fed.files[partner]
    stub = federation_pb2_grpc.FederationServiceStub(fed.channel(city, f.cert, f.key))
    positions = stub.GetSettlement(federation_pb2.GetSettlementRequest(), timeout=5).positions
    assert [p.partner_city for p in positions] in ([], [partner])
    return int(positions[0].net_units) if positions else None


def test_hold_burned_names_its_partner_city_on_the_wire(fed: LocalFederation) -> None:
    redeem_across(fed)
    app = fed.running["vienna"].node.app
    burned = []
    for n in app.recorder.select_notifications(start=0, limit=100_000):
        event = to_integration_event("vienna", n.id, app.mapper.to_domain_event(n), app.pseudonym)
        if event is not None and event.type == "Wallet.HoldBurned":
            burned.append(event)
    assert len(burned) == 13
    assert {e.payload.refs["partner_city"] for e in burned} == {"rome", "sint_niklaas"}
    # The redemption id the partner holds stays in the home city's store.
    assert all(
        e.payload.refs["hold_id"].startswith("redemption:") and "redemption_id" not in e.payload.refs
        for e in burned
    )
    # The accepting side publishes only its settlement claim, never its saga's voucher reference or shop.
    rome = fed.running["rome"].node.app
    exported = [
        to_integration_event("rome", n.id, rome.mapper.to_domain_event(n), rome.pseudonym)
        for n in rome.recorder.select_notifications(start=0, limit=100_000)
    ]
    foreign = [e for e in exported if e is not None and e.type.startswith("ForeignRedemption.")]
    assert {e.type for e in foreign} == {"ForeignRedemption.Committed"} and len(foreign) == 10
    for e in foreign:
        assert dict(e.payload.refs) == {"home_city": "vienna"}
        assert dict(e.payload.amounts) == {"home_amount": 2, "credit": 4}


def test_cross_city_redemptions_reach_settlement_and_the_federation_dashboard(
    fed: LocalFederation, broker: Broker, read_store: Store, tmp_path: Path
) -> None:
    redeem_across(fed)
    apps = {c: fed.running[c].node.app for c in CITIES}
    # Through Kafka into PostgreSQL ...
    for city, app in apps.items():
        relay = Relay(app, city, broker.bootstrap, read_store, partitions=3, timeout_ms=3000)
        assert relay.publish_once(limit=100_000) > 0
        relay.close()
    source = KafkaSource(broker.bootstrap, CITIES, Projector(read_store))
    source.catch_up()
    source.close()
    # ... and, embedded, from the notification logs into SQLite: the same read model.
    embedded = Store(f"sqlite:///{tmp_path / 'rm.sqlite'}")
    projector = Projector(embedded)
    for city, app in apps.items():
        catch_up_log(projector, app, city)
    assert snapshot(read_store) == snapshot(embedded)

    policies = disclosure_policies()
    week_later = dt.datetime.now(dt.UTC) + dt.timedelta(days=8)  # the redemptions' week has closed
    with read_store.transaction() as tx:
        pairs = matrix(tx)
        nets = net_positions(tx)
        board = federation_dashboard(tx, policies, week_later)
        vienna = city_dashboard(tx, "vienna", policies["vienna"], week_later)
    # Who owes whom, in the debtor's units, with the people behind each claim.
    assert pairs == [("rome", "vienna", 70, 10), ("vienna", "rome", 20, 10), ("vienna", "sint_niklaas", 3, 3)]
    # Published: each pair's closed weeks, noised; three people's redemptions suppressed.
    settlement = {(c["from"], c["to"]): c for c in board["settlement"]}
    assert set(settlement) == {("rome", "vienna"), ("vienna", "rome"), ("vienna", "sint_niklaas")}
    assert settlement[("vienna", "sint_niklaas")]["suppressed"] is True
    weeks = {(c["from"], c["to"]): c for c in board["settlement_by_week"]}
    for pair in (("rome", "vienna"), ("vienna", "rome")):
        assert settlement[pair]["protection"] == {"method": "sum of published cells", "cells": 1}
        assert weeks[pair]["value"] == settlement[pair]["value"]
        assert weeks[pair]["protection"]["method"] == "laplace"
        assert weeks[pair]["protection"]["sensitivity"] == policies[pair[0]].bounds["redemptions_by_partner"]
    assert vienna["redemptions_by_partner"]["rome"]["value"] == settlement[("vienna", "rome")]["value"]
    # Exact money between cities is not on the public page: partner nodes read it
    # (GetSettlement), and the read model's net positions agree with what they report.
    assert "net_positions" not in board
    reported = {
        (city, partner): node_net(fed, city, partner)
        for city in CITIES
        for partner in CITIES
        if city != partner
    }
    assert reported == {
        ("vienna", "rome"): 10,
        ("rome", "vienna"): -30,
        ("vienna", "sint_niklaas"): -3,
        ("sint_niklaas", "vienna"): 150,
        ("rome", "sint_niklaas"): None,
        ("sint_niklaas", "rome"): None,
    }
    projected = {pair: net for pair, (net, _) in nets.items()}
    assert projected == {pair: net for pair, net in reported.items() if net is not None}
