"""Signed claims from registered sources, against a real node over gRPC: each forged,
unknown, retired, out-of-kind, out-of-date, out-of-bounds or reused claim is refused with
its status and reason; a good claim credits once; a batch credits exactly its good claims."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from joserfc.jwk import OKPKey

from civfed.v1 import claims_pb2, sources_pb2, wallet_pb2
from services.claims import new_source_key, public_pem, sign_claim
from services.demo.local_federation import CityStubs, LocalFederation
from services.grpc.auth import bearer
from tests.e2e.flows import CONSENT, open_wallet
from tests.grpc.conftest import in_process_federation

SOURCE = "wien-mobility"
BIKE_150_KM = sources_pb2.Bound(
    activity="trip", field="distance_m", max_per_day=150_000, where={"mode": "bike"}
)


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@dataclass
class World:
    fed: LocalFederation
    v: CityStubs
    key: OKPKey
    publisher: Any

    def wallet(self, name: str) -> Any:
        return open_wallet(self.v, f"claims:{name}")

    def claim(
        self,
        claim_id: str,
        wallet: str,
        fields: dict[str, Any] | None = None,
        date: dt.date | None = None,
        key: OKPKey | None = None,
        key_id: str = "k1",
        source: str = SOURCE,
        activity: str = "trip",
    ) -> str:
        fields = {"mode": "bike", "distance_m": 20_000} if fields is None else fields
        return sign_claim(
            key or self.key, key_id, source, claim_id, wallet, activity, fields, date or today()
        )

    def submit(self, token: str) -> Any:
        return self.v.claims.SubmitClaim(claims_pb2.SubmitClaimRequest(claim=token), timeout=5)

    def refused(self, token: str) -> tuple[grpc.StatusCode, str]:
        with pytest.raises(grpc.RpcError) as err:
            self.submit(token)
        return err.value.code(), err.value.details()

    def balance(self, opened: Any) -> int:
        req = wallet_pb2.GetBalanceRequest(wallet_id=opened.wallet_id)
        return int(
            self.v.wallet.GetBalance(req, metadata=bearer(opened.holder_token), timeout=5).balance.units
        )


def register(w: World, source: str, key: OKPKey, kinds: list[str], bounds: list[Any], n: str = "") -> Any:
    req = sources_pb2.RegisterSourceRequest(
        idempotency_key=f"register:{source}{n}",
        source_id=source,
        name="Wiener Mobilitätsdaten",
        key_id="k1",
        public_key_pem=public_pem(key),
        kinds=kinds,
        bounds=bounds,
        reason="pilot: trips measured by the city's mobility app",
    )
    return w.v.sources.RegisterSource(req, metadata=w.publisher, timeout=5)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with in_process_federation(Path(tmp_path_factory.mktemp("claims")), ["vienna"]) as fed:
        w = World(fed, fed.stubs("vienna"), new_source_key(), fed.staff("rosa", "rule_publisher"))
        register(w, SOURCE, w.key, ["trip"], [BIKE_150_KM])
        yield w


def test_only_a_rule_publisher_registers_and_anyone_sees_the_sources(world: World) -> None:
    req = sources_pb2.RegisterSourceRequest(
        idempotency_key="by-recorder",
        source_id="rogue",
        name="Rogue",
        key_id="k1",
        public_key_pem=public_pem(new_source_key()),
        kinds=["trip"],
        reason="trust me",
    )
    with pytest.raises(grpc.RpcError) as err:
        world.v.sources.RegisterSource(req, metadata=world.fed.staff("eva", "recorder"), timeout=5)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    listed = world.v.sources.ListSources(sources_pb2.ListSourcesRequest(), timeout=5)
    (source,) = [s for s in listed.sources if s.source_id == SOURCE]
    assert list(source.kinds) == ["trip"] and source.active and source.key_id == "k1"
    assert source.bounds[0].max_per_day == 150_000 and dict(source.bounds[0].where) == {"mode": "bike"}
    assert "BEGIN PUBLIC KEY" in source.public_key_pem
    registered = [h for h in listed.history if h.source_id == SOURCE and h.action == "registered"]
    assert registered and registered[0].by == "staff:rosa"
    assert not [s for s in listed.sources if s.source_id == "rogue"]


def test_a_good_claim_credits_once_and_resending_it_changes_nothing(world: World) -> None:
    ann = world.wallet("ann")
    token = world.claim("good-1", ann.wallet_id, {"mode": "bike", "distance_m": 100_000})  # 20 kg: 1 token
    first = world.submit(token)
    assert first.accepted and first.awarded.units == 1 and first.claim_id == "good-1"
    assert world.balance(ann) == 1
    again = world.submit(token)
    assert again == first
    assert world.balance(ann) == 1
    # The holder's history says where the award came from.
    events = world.v.wallet.ListMyEvents(
        wallet_pb2.ListMyEventsRequest(wallet_id=ann.wallet_id), metadata=bearer(ann.holder_token), timeout=5
    ).events
    (credit,) = [e for e in events if e.type == "Wallet.Credited"]
    fields = json.loads(credit.fields_json)
    assert (fields["source"], fields["claim_id"]) == (f"source:{SOURCE}", "good-1")


def test_forged_and_unknown_keys_are_refused(world: World) -> None:
    ben = world.wallet("ben")
    stranger = new_source_key()
    cases = {
        # The source's key id, a stranger's key: the signature does not verify.
        "bad_signature": world.claim("forged-1", ben.wallet_id, key=stranger),
        "unknown_key": world.claim("forged-2", ben.wallet_id, key_id="k9"),
        "unknown_source": world.claim("forged-3", ben.wallet_id, source="nobody-mobility"),
    }
    # A payload altered after signing.
    header, _, signature = world.claim("forged-4", ben.wallet_id).split(".")
    tampered = world.claim("forged-4", ben.wallet_id, {"mode": "bike", "distance_m": 140_000}).split(".")[1]
    cases["tampered"] = ".".join([header, tampered, signature])
    for reason, token in cases.items():
        code, details = world.refused(token)
        assert code == grpc.StatusCode.UNAUTHENTICATED, reason
        assert details.startswith("bad_signature" if reason == "tampered" else reason), details
    assert world.balance(ben) == 0


def test_a_retired_key_and_a_retired_source_are_refused(world: World) -> None:
    cy = world.wallet("cy")
    old_key, new_key = new_source_key(), new_source_key()
    register(world, "bike-share", old_key, ["trip"], [])
    before = world.claim("bs-1", cy.wallet_id, key=old_key, source="bike-share")
    assert world.submit(before).accepted
    rotate = sources_pb2.RotateSourceKeyRequest(
        idempotency_key="rotate-bs",
        source_id="bike-share",
        key_id="k2",
        public_key_pem=public_pem(new_key),
        reason="yearly rotation",
    )
    world.v.sources.RotateSourceKey(rotate, metadata=world.publisher, timeout=5)
    code, details = world.refused(world.claim("bs-2", cy.wallet_id, key=old_key, source="bike-share"))
    assert code == grpc.StatusCode.UNAUTHENTICATED and details.startswith("retired_key"), details
    assert world.submit(
        world.claim("bs-3", cy.wallet_id, key=new_key, key_id="k2", source="bike-share")
    ).accepted
    retire = sources_pb2.RetireSourceRequest(
        idempotency_key="retire-bs", source_id="bike-share", reason="ended"
    )
    world.v.sources.RetireSource(retire, metadata=world.publisher, timeout=5)
    code, details = world.refused(
        world.claim("bs-4", cy.wallet_id, key=new_key, key_id="k2", source="bike-share")
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED and details.startswith("retired_key"), details
    listed = world.v.sources.ListSources(sources_pb2.ListSourcesRequest(), timeout=5)
    (bs,) = [s for s in listed.sources if s.source_id == "bike-share"]
    assert not bs.active and list(bs.retired_key_ids) == ["k1", "k2"]
    actions = [h.action for h in listed.history if h.source_id == "bike-share"]
    assert actions == ["registered", "key_rotated", "retired"]


def test_a_kind_the_source_may_not_attest_is_refused(world: World) -> None:
    dee = world.wallet("dee")
    token = world.claim("kind-1", dee.wallet_id, {"action": "recycling_drop_off"}, activity="eco_action")
    code, details = world.refused(token)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("kind_not_attested"), details
    assert world.balance(dee) == 0


def test_future_and_stale_dates_are_refused(world: World) -> None:
    eli = world.wallet("eli")
    code, details = world.refused(world.claim("date-1", eli.wallet_id, date=today() + dt.timedelta(days=2)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("invalid_date"), details
    code, details = world.refused(world.claim("date-2", eli.wallet_id, date=today() - dt.timedelta(days=31)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("stale_claim"), details
    # Within the window: fine.
    assert world.submit(world.claim("date-3", eli.wallet_id, date=today() - dt.timedelta(days=30))).accepted


def test_the_bound_holds_over_a_persons_day(world: World) -> None:
    fay = world.wallet("fay")
    code, details = world.refused(
        world.claim("far-1", fay.wallet_id, {"mode": "bike", "distance_m": 1_000_000})
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("over_bound"), details
    # 20 trips of 10 km by bike in a day: the first 15 (150 km) count, the rest are refused.
    batch = [
        world.claim(f"day-{i}", fay.wallet_id, {"mode": "bike", "distance_m": 10_000}) for i in range(20)
    ]
    out = world.v.claims.SubmitClaims(claims_pb2.SubmitClaimsRequest(claims=batch), timeout=30)
    assert [r.accepted for r in out.results] == [True] * 15 + [False] * 5
    assert {r.reason for r in out.results[15:]} == {"over_bound"}
    assert world.balance(fay) == 15 * 10 * 200 // 20_000  # 150 km at 200 g/km: 30 kg, 1 token
    # Another day has its own 150 km.
    yesterday = today() - dt.timedelta(days=1)
    assert world.submit(
        world.claim("day-y", fay.wallet_id, {"mode": "bike", "distance_m": 150_000}, yesterday)
    ).accepted


def test_a_claim_id_reused_for_another_claim_is_refused(world: World) -> None:
    gus = world.wallet("gus")
    assert world.submit(world.claim("reuse-1", gus.wallet_id)).accepted
    other = world.claim("reuse-1", gus.wallet_id, {"mode": "bike", "distance_m": 30_000})
    code, details = world.refused(other)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("claim_id_reused"), details


def test_a_batch_of_good_and_bad_claims_credits_exactly_the_good_ones(world: World) -> None:
    hal, ivy = world.wallet("hal"), world.wallet("ivy")
    good = [
        world.claim(f"mix-good-{i}", hal.wallet_id, {"mode": "bike", "distance_m": 50_000}) for i in range(2)
    ]
    good.append(world.claim("mix-good-ivy", ivy.wallet_id, {"mode": "bus", "distance_m": 200_000}))
    bad = [
        world.claim("mix-forged", hal.wallet_id, key=new_source_key()),
        world.claim("mix-future", hal.wallet_id, date=today() + dt.timedelta(days=3)),
        world.claim("mix-kind", hal.wallet_id, {"action": "x"}, activity="eco_action"),
        "not a claim",
        "eyJ" + "x" * 5000 + ".y.z",  # oversized: refused alone
        world.claim("mix-far", ivy.wallet_id, {"mode": "bike", "distance_m": 151_000}),
    ]
    batch = [good[0], bad[0], bad[1], good[1], bad[2], bad[3], good[2], bad[5], bad[4], good[0]]
    out = world.v.claims.SubmitClaims(claims_pb2.SubmitClaimsRequest(claims=batch), timeout=30)
    assert [r.accepted for r in out.results] == [
        True,
        False,
        False,
        True,
        False,
        False,
        True,
        False,
        False,
        True,
    ]
    reasons = [r.reason for r in out.results if not r.accepted]
    assert reasons == [
        "bad_signature",
        "invalid_date",
        "kind_not_attested",
        "invalid_claim",
        "over_bound",
        "invalid_claim",
    ]
    assert [r.status for r in out.results if not r.accepted] == [
        "UNAUTHENTICATED",
        "INVALID_ARGUMENT",
        "FAILED_PRECONDITION",
        "INVALID_ARGUMENT",
        "FAILED_PRECONDITION",
        "INVALID_ARGUMENT",
    ]
    # The repeated claim returns its stored result; it is counted once in the balance.
    assert out.results[-1] == out.results[0]
    assert (out.accepted, out.refused) == (4, 6)
    assert world.balance(hal) == 2 * 50 * 200 // 20_000  # 100 km by bike: 20 kg, 1 token
    assert world.balance(ivy) == 200 * (200 - 70) // 20_000  # 26 kg: 1 token
    # Sent again, the whole batch changes nothing.
    again = world.v.claims.SubmitClaims(claims_pb2.SubmitClaimsRequest(claims=batch), timeout=30)
    assert [r.accepted for r in again.results] == [r.accepted for r in out.results]
    assert world.balance(hal) == 1 and world.balance(ivy) == 1


def test_a_batch_of_a_thousand_is_taken_and_more_is_refused_whole(world: World) -> None:
    jo = world.wallet("jo")
    batch = [
        world.claim(f"big-{i}", jo.wallet_id, {"mode": "walk", "distance_m": 1_000}) for i in range(1000)
    ]
    out = world.v.claims.SubmitClaims(claims_pb2.SubmitClaimsRequest(claims=batch), timeout=120)
    assert out.accepted == 1000 and out.refused == 0
    assert world.balance(jo) == 1000 * 200 // 20_000  # 1,000 km on foot: 200 kg, 10 tokens
    more = [*batch, world.claim("big-1000", jo.wallet_id, {"mode": "walk", "distance_m": 1_000})]
    with pytest.raises(grpc.RpcError) as err:
        world.v.claims.SubmitClaims(claims_pb2.SubmitClaimsRequest(claims=more), timeout=60)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "at most 1000" in err.value.details()
    assert world.balance(jo) == 10


def test_staff_cannot_record_trips_at_a_desk(world: World) -> None:
    """Twenty made-up bike trips by one staff token: refused, nothing credited."""
    kim = world.wallet("kim")
    recorder = world.fed.staff("eva", "recorder")
    for i in range(20):
        req = wallet_pb2.RecordActivityRequest(
            idempotency_key=f"desk-trip-{i}",
            wallet_id=kim.wallet_id,
            activity="trip",
            fields={"mode": "bike", "distance_m": "1000000", "date": today().isoformat()},
        )
        with pytest.raises(grpc.RpcError) as err:
            world.v.wallet.RecordActivity(req, metadata=recorder, timeout=5)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "signed by a registered source" in err.value.details()
    assert world.balance(kim) == 0


def test_a_desk_activity_names_the_staff_member_who_recorded_it(fed: LocalFederation) -> None:
    """Sint-Niklaas engraves bikes at a desk: the recorder's authenticated subject is on the
    award, never a name from the request."""
    s = fed.stubs("sint_niklaas")
    opened = open_wallet(s, "desk:lea", CONSENT["sint_niklaas"])
    req = wallet_pb2.RecordActivityRequest(
        idempotency_key="desk:engrave",
        wallet_id=opened.wallet_id,
        activity="bike_engraving",
        fields={"subject": "SN-4471", "date": today().isoformat()},
    )
    award = s.wallet.RecordActivity(req, metadata=fed.staff("desk-7", "recorder"), timeout=5)
    assert award.awarded.units > 0
    events = s.wallet.ListMyEvents(
        wallet_pb2.ListMyEventsRequest(wallet_id=opened.wallet_id),
        metadata=bearer(opened.holder_token),
        timeout=5,
    ).events
    (credit,) = [e for e in events if e.type == "Wallet.Credited"]
    assert json.loads(credit.fields_json)["source"] == "staff:desk-7"
