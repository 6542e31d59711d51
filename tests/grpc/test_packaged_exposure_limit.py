"""The exposure limit Vienna's packaged city.toml sets for Rome (20,000 points taken at
Vienna's shops and not yet cleared), over real gRPC between a Rome and a Vienna node: a
redemption that would take Rome above it is refused when the shop asks, before Rome holds
anything, and one within it goes through.

Reaching 20,000 points one redemption at a time (each capped at 200) would take a hundred
redemptions; the test starts from what they would leave, Rome's open exposure at Vienna
just below the limit, recorded through the exposure's own method in Vienna's store.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from aggregates.clearing import PartnerExposure
from services.demo.local_federation import LocalFederation
from services.settings.cities import load_city
from tests.e2e.flows import accept, rome_citizen, shop

LIMIT = 20_000


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    f = LocalFederation(Path(tmp_path_factory.mktemp("exposure")), ["rome", "vienna"])
    for city in f.cities:
        f.start_in_process(city)
    yield f
    f.stop_all()


def test_the_packaged_limit_refuses_a_reserve_above_it(fed: LocalFederation) -> None:
    terms = load_city("vienna").config.federation.accepts["rome"]
    assert terms.exposure_limit == LIMIT
    vienna = fed.running["vienna"].node.app
    already = PartnerExposure("vienna", "rome")
    already.use(LIMIT - 15)  # a hundred earlier redemptions, none cleared yet
    vienna.save(already)

    r, v = fed.stubs("rome"), fed.stubs("vienna")
    gio = rome_citizen(r, f"gio-{uuid.uuid4().hex[:6]}", 3)  # 30 points
    _, cafe = shop(v, "Café Rom")
    with pytest.raises(grpc.RpcError) as err:
        accept(v, cafe, gio.voucher(20, "over"), "over")
    assert "exposure limit reached" in (err.value.details() or "")
    assert err.value.code() not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL)
    # Refused before Rome held anything: the points are all still there.
    balance = gio.balance()
    assert (balance.balance.units, balance.available.units) == (30, 30)
    # Within the limit, the redemption goes through: 15 points reach it exactly.
    out = accept(v, cafe, gio.voucher(15, "within"), "within")
    assert out.credited.units > 0
    assert vienna.repository.get(PartnerExposure.create_id("vienna", "rome")).open == LIMIT
    with pytest.raises(grpc.RpcError) as err:
        accept(v, cafe, gio.voucher(2, "one-more"), "one-more")
    assert "exposure limit reached" in (err.value.details() or "")
