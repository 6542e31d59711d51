"""Steps shared by the end-to-end tests: citizens, shops, vouchers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from civfed.v1 import claims_pb2, merchant_pb2, sources_pb2, wallet_pb2
from services.claims import new_source_key, public_pem, sign_claim
from services.demo.local_federation import CityStubs
from services.grpc.auth import bearer
from services.grpc.client import call_with_retry

CONSENT = {"vienna": "wien-2026-01", "rome": "roma-2026-03", "sint_niklaas": "sengzen-2026-02"}


@dataclass
class Citizen:
    city: CityStubs
    wallet_id: str
    token: str

    @property
    def auth(self) -> Any:
        return bearer(self.token)

    def balance(self) -> Any:
        return self.city.wallet.GetBalance(
            wallet_pb2.GetBalanceRequest(wallet_id=self.wallet_id), metadata=self.auth, timeout=5
        )

    def voucher(self, amount: int, key: str) -> str:
        req = wallet_pb2.IssueRedemptionVoucherRequest(
            idempotency_key=key, wallet_id=self.wallet_id, amount=amount
        )
        return str(self.city.wallet.IssueRedemptionVoucher(req, metadata=self.auth, timeout=5).token)


def open_wallet(city: CityStubs, key: str, consent: str = CONSENT["vienna"]) -> Any:
    """A resident's wallet, opened by staff; the response carries its id and holder token."""
    return city.wallet.OpenWallet(
        wallet_pb2.OpenWalletRequest(
            idempotency_key=key, participant_kind="resident", consent_version=consent
        ),
        metadata=city.staff,
        timeout=5,
    )


def record_activity(
    city: CityStubs, key: str, wallet_id: str, activity: str, fields: dict[str, str], activity_id: str = ""
) -> Any:
    """An activity recorded by staff."""
    req = wallet_pb2.RecordActivityRequest(
        idempotency_key=key, wallet_id=wallet_id, activity=activity, fields=fields, activity_id=activity_id
    )
    return city.wallet.RecordActivity(req, metadata=city.staff, timeout=5)


# The tests' own registered source: one key per test process, registered in a city on
# first use (the same registration again replays). It declares no bounds, so a test can
# fund a wallet in one go; the bounds themselves are tested in tests/grpc/test_claims.py.
TEST_SOURCE = "test-attestor"
TEST_KEY = new_source_key()


def register_test_source(city: CityStubs, kinds: tuple[str, ...] = ("trip",)) -> None:
    req = sources_pb2.RegisterSourceRequest(
        idempotency_key=f"{TEST_SOURCE}:{','.join(kinds)}",
        source_id=TEST_SOURCE,
        name="The tests' attesting system",
        key_id="t1",
        public_key_pem=public_pem(TEST_KEY),
        kinds=list(kinds),
        reason="activities for the tests",
    )
    city.sources.RegisterSource(req, metadata=city.staff, timeout=5)


def attest(
    city: CityStubs, claim_id: str, wallet_id: str, activity: str, fields: dict[str, str], language: str = ""
) -> Any:
    """An activity as a registered source attests it: a signed claim, dated today (any
    `date` in `fields` is dropped: a claim must be recent). The award's explanation comes in
    `language`, by default the city's."""
    register_test_source(city, (activity,))
    body = {k: v for k, v in fields.items() if k != "date"}
    today = dt.datetime.now(dt.UTC).date()
    token = sign_claim(TEST_KEY, "t1", TEST_SOURCE, claim_id, wallet_id, activity, body, today)
    request = claims_pb2.SubmitClaimRequest(claim=token, language=language)
    return city.claims.SubmitClaim(request, timeout=5)


def vienna_citizen(v: CityStubs, name: str, km_by_bike: int) -> Citizen:
    """A Vienna resident with km_by_bike // 100 tokens (20 kg CO2 per token at 200 g/km)."""
    w = open_wallet(v, f"open:{name}")
    for i, start in enumerate(range(0, km_by_bike, 1000)):  # at most 1,000 km per trip
        km = min(1000, km_by_bike - start)
        trip = {"mode": "bike", "distance_m": str(km * 1000)}
        attest(v, f"trip:{name}:{i}", w.wallet_id, "trip", trip)
    return Citizen(v, w.wallet_id, w.holder_token)


def shop(city: CityStubs, name: str) -> tuple[str, Any]:
    m = city.merchant.RegisterMerchant(
        merchant_pb2.RegisterMerchantRequest(
            idempotency_key=f"shop:{name}", name=name, category="food", local=True
        ),
        metadata=city.staff,
        timeout=5,
    )
    return m.merchant_id, bearer(m.merchant_token)


def accept(city: CityStubs, merchant_auth: Any, token: str, key: str) -> Any:
    """A shop's till: a deadline on every call, and a retry with the same key only on UNAVAILABLE."""
    req = merchant_pb2.AcceptVoucherRequest(idempotency_key=key, redemption_token=token)
    return call_with_retry(city.merchant.AcceptVoucher, req, timeout=20, metadata=merchant_auth)


def rome_citizen(r: CityStubs, name: str, drop_offs: int) -> Citizen:
    """A Rome resident with 10 points per recycling drop-off."""
    w = open_wallet(r, f"open:{name}", CONSENT["rome"])
    for i in range(drop_offs):
        drop = {"action": "recycling_drop_off", "date": "2026-05-04"}
        record_activity(
            r, f"drop:{name}:{i}", w.wallet_id, "eco_action", drop, activity_id=f"drop:{name}:{i}"
        )
    return Citizen(r, w.wallet_id, w.holder_token)
