"""Who may call what, through gRPC against a real node: every RPC of every service, called by
every kind of caller and every staff role on its own, answers exactly as the policy table says.

A caller the table admits gets OK for a request made to succeed (or, for the few calls whose
success needs a partner's saga, at least no refusal of the caller); any other caller gets
UNAUTHENTICATED without credentials and PERMISSION_DENIED with them.
"""

from __future__ import annotations

import datetime as dt
import importlib
import pkgutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from joserfc import jwt

import civfed.v1
from civfed.v1 import (
    cashback_pb2,
    claims_pb2,
    clearing_pb2,
    credentials_pb2,
    federation_pb2,
    funds_pb2,
    funds_pb2_grpc,
    merchant_pb2,
    payouts_pb2,
    prizes_pb2,
    rights_pb2,
    rights_pb2_grpc,
    rulebook_pb2,
    sources_pb2,
    wallet_pb2,
    workflow_pb2,
)
from services.claims import new_source_key, public_pem, sign_claim
from services.demo.local_federation import LocalFederation
from services.grpc.auth import bearer
from services.identity.policy import POLICY, Allowed, table
from services.identity.principals import ROLES, Anonymous, Holder, PartnerCity, Principal, Staff, Till
from tests.e2e.flows import TEST_KEY, TEST_SOURCE, attest, open_wallet
from tests.grpc.conftest import in_process_federation

HEALTH_AND_REFLECTION = {m for m in POLICY if m.startswith(("/grpc.health.", "/grpc.reflection."))}
TRIP = {"mode": "bike", "distance_m": "400000", "date": "2026-05-04"}  # 80 kg CO2: 4 tokens


def our_methods() -> list[MethodDescriptor]:
    """Every RPC of every service in the civfed.v1 contract, read from the descriptors."""
    for module in pkgutil.iter_modules(civfed.v1.__path__):
        if module.name.endswith("_pb2"):
            importlib.import_module(f"civfed.v1.{module.name}")
    pool = descriptor_pool.Default()
    found = []
    for module in pkgutil.iter_modules(civfed.v1.__path__):
        if not module.name.endswith("_pb2"):
            continue
        file = pool.FindFileByName(f"civfed/v1/{module.name.removesuffix('_pb2')}.proto")
        for service in file.services_by_name.values():
            found.extend(service.methods)
    return found


def path(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def test_every_rpc_of_every_service_has_an_entry_in_the_policy() -> None:
    methods = {path(m) for m in our_methods()}
    assert len(methods) >= 20
    missing = sorted(methods - set(POLICY))
    assert not missing, f"RPCs with no access policy entry: {missing}"
    # And no entry for an RPC that does not exist (a renamed call would leave its rule behind).
    assert set(POLICY) - methods == HEALTH_AND_REFLECTION


def test_every_role_allows_only_its_own_calls() -> None:
    """No entry lets every staff role in: each role is named for the calls it needs."""
    for method, allowed in POLICY.items():
        if "anyone" not in allowed.who:
            assert not set(ROLES) <= allowed.who, method


def test_auditors_read_no_persons_data() -> None:
    personal = [m for m in POLICY if m.rsplit("/", 1)[1] in ("GetBalance", "ListMyEvents", "ListMyAppeals")]
    assert personal and all("auditor" not in POLICY[m].who for m in personal)


# -- the matrix, against a real node ---------------------------------------------------------


@dataclass
class World:
    fed: LocalFederation
    wallet_id: str
    holder: Any
    merchant_id: str
    till: Any
    recovered: str = ""
    # Zwolle, for WorkflowService: a holder with approved minutes, and a basic-economy shop's till.
    zw_wallet: str = ""
    zw_holder: Any = ()
    zw_till: Any = ()

    def zw_task(self, key: str) -> str:
        """An open task of Zwolle's, posted by a coordinator the matrix does not call as."""
        now = dt.datetime.now(dt.UTC)
        req = workflow_pb2.PostTaskRequest(
            idempotency_key=key,
            category="litter-picking",
            place="Park",
            starts_at=(now - dt.timedelta(hours=2)).isoformat(),
            ends_at=(now + dt.timedelta(days=2)).isoformat(),
            slots=1000,
        )
        z = self.fed.stubs("zwolle")
        return str(z.workflow.PostTask(req, metadata=self.fed.staff("coord-a", "work_coordinator")).task_id)

    def zw_log(self, key: str) -> str:
        """Minutes another Zwolle resident logged on a task they claimed."""
        z = self.fed.stubs("zwolle")
        worker = open_wallet(z, f"{key}:w", "zwolle-werkt-2026-09")
        task, meta = self.zw_task(f"{key}:t"), bearer(worker.holder_token)
        claim = workflow_pb2.ClaimTaskRequest(
            idempotency_key=f"{key}:c", task_id=task, wallet_id=worker.wallet_id
        )
        z.workflow.ClaimTask(claim, metadata=meta)
        log = workflow_pb2.LogMinutesRequest(
            idempotency_key=key, task_id=task, wallet_id=worker.wallet_id, minutes=60
        )
        return str(z.workflow.LogMinutes(log, metadata=meta).log_id)

    def zw_claimed(self, key: str) -> str:
        """A task the Zwolle holder claimed, to log minutes on."""
        task = self.zw_task(key)
        claim = workflow_pb2.ClaimTaskRequest(
            idempotency_key=f"{key}:c", task_id=task, wallet_id=self.zw_wallet
        )
        self.fed.stubs("zwolle").workflow.ClaimTask(claim, metadata=self.zw_holder)
        return task

    def zw_category(self, code: str) -> str:
        req = workflow_pb2.PublishCategoryRequest(
            idempotency_key=code, code=code, title="Repair café", sector="civic", decision_ref="RB-1"
        )
        self.fed.stubs("zwolle").workflow.PublishCategory(
            req, metadata=self.fed.staff("raad", "council_approver")
        )
        return code

    def holder_voucher(self, key: str) -> str:
        v = self.fed.stubs("vienna")
        req = wallet_pb2.IssueVoucherRequest(idempotency_key=key, wallet_id=self.wallet_id, amount=1)
        return str(v.wallet.IssueVoucher(req, metadata=self.holder, timeout=5).voucher_id)

    def source(self, source_id: str) -> str:
        """A source registered by staff holding every role, for the calls that change one."""
        v = self.fed.stubs("vienna")
        v.sources.RegisterSource(register_source(source_id), metadata=v.staff, timeout=5)
        return source_id

    def claim(self, n: int) -> str:
        today = dt.datetime.now(dt.UTC).date()
        fields = {"mode": "bike", "distance_m": 1000}
        return sign_claim(
            TEST_KEY, "t1", TEST_SOURCE, f"policy-claim{n}", self.wallet_id, "trip", fields, today
        )

    def erasure_request(self, key: str, officer: str) -> str:
        """A pending erasure request of a fresh wallet, made by erasure officer `officer`."""
        v = self.fed.stubs("vienna")
        wallet = open_wallet(v, f"{key}:wallet").wallet_id
        req = rights_pb2.RequestErasureRequest(
            idempotency_key=key, wallet_id=wallet, legal_basis="art17_1b_consent_withdrawn", reference="C-1"
        )
        meta = self.fed.staff(officer, "erasure_officer")
        return str(
            rights_pb2_grpc.RightsServiceStub(v.channel)
            .RequestErasure(req, metadata=meta, timeout=5)
            .request_id
        )

    def recovery(self, key: str) -> str:
        """A recovery requested by another recorder, for a recorder to approve."""
        v = self.fed.stubs("vienna")
        wallet = open_wallet(v, f"{key}:wallet").wallet_id
        req = credentials_pb2.RequestRecoveryRequest(
            idempotency_key=key, wallet_id=wallet, reason="lost phone"
        )
        self.recovered = wallet
        return str(
            v.credentials.RequestRecovery(req, metadata=self.fed.staff("desk-a", "recorder")).recovery_id
        )

    def spare(self, key: str) -> str:
        """A second credential of the holder's (a second phone), for the holder to revoke."""
        v = self.fed.stubs("vienna")
        req = credentials_pb2.RotateMyCredentialRequest(
            idempotency_key=key, wallet_id=self.wallet_id, keep_current=True
        )
        return str(v.credentials.RotateMyCredential(req, metadata=self.holder).credential_id)

    def till_credential(self, key: str) -> str:
        """A till credential of the world's merchant, for an administrator to revoke."""
        v = self.fed.stubs("vienna")
        req = credentials_pb2.IssueTillCredentialRequest(idempotency_key=key, merchant_id=self.merchant_id)
        issued = v.credentials.IssueTillCredential(req, metadata=self.fed.staff("mia", "merchant_admin"))
        return str(issued.credential_id)

    def prize(self, key: str) -> str:
        """A prize the world's merchant put up, for its till to change or a holder to claim."""
        v = self.fed.stubs("vienna")
        req = prizes_pb2.OfferPrizeRequest(idempotency_key=key, name="Cake", cost=1, stock=5)
        return str(v.prizes.OfferPrize(req, metadata=self.till, timeout=5).prize_id)

    def prize_claim(self, key: str) -> str:
        """A claim on one of the merchant's prizes by a fresh holder, for the till to settle."""
        v = self.fed.stubs("vienna")
        opened = open_wallet(v, f"{key}:wallet")
        attest(v, f"{key}:trip", opened.wallet_id, "trip", TRIP)
        req = prizes_pb2.ClaimPrizeRequest(
            idempotency_key=key, wallet_id=opened.wallet_id, prize_id=self.prize(f"{key}:prize")
        )
        return str(v.prizes.ClaimPrize(req, metadata=bearer(opened.holder_token), timeout=5).claim_id)

    def top_up(self, key: str) -> str:
        """A top-up of Vienna's fund proposed by a rule publisher the matrix does not call as."""
        v = self.fed.stubs("vienna")
        req = funds_pb2.ProposeFundTopUpRequest(
            idempotency_key=key, fund_id="city", amount=1000, reason="more trips than planned"
        )
        meta = self.fed.staff("fin-a", "rule_publisher")
        return str(funds_pb2_grpc.FundServiceStub(v.channel).ProposeFundTopUp(req, metadata=meta).proposal_id)

    def appeal(self, key: str) -> str:
        v = self.fed.stubs("vienna")
        req = wallet_pb2.FileAppealRequest(
            idempotency_key=key, wallet_id=self.wallet_id, subject_kind="missing_award", reason="a trip"
        )
        return str(v.wallet.FileAppeal(req, metadata=self.holder, timeout=5).appeal_id)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    cities = ["vienna", "sint_niklaas", "zwolle"]
    with in_process_federation(Path(tmp_path_factory.mktemp("policy")), cities) as fed:
        v = fed.stubs("vienna")
        opened = open_wallet(v, "policy:wallet")
        for i in range(10):
            attest(v, f"policy:trip{i}", opened.wallet_id, "trip", TRIP)
        shop = v.merchant.RegisterMerchant(
            merchant_pb2.RegisterMerchantRequest(
                idempotency_key="policy:shop", name="Corner shop", category="food", local=True
            ),
            metadata=v.staff,
            timeout=5,
        )
        world = World(
            fed, opened.wallet_id, bearer(opened.holder_token), shop.merchant_id, bearer(shop.merchant_token)
        )
        z = fed.stubs("zwolle")
        zw = open_wallet(z, "policy:zw", "zwolle-werkt-2026-09")
        world.zw_wallet, world.zw_holder = zw.wallet_id, bearer(zw.holder_token)
        bakery = z.merchant.RegisterMerchant(
            merchant_pb2.RegisterMerchantRequest(
                idempotency_key="policy:zw-shop",
                name="Bakker",
                category="food",
                local=True,
                basic_economy=True,
            ),
            metadata=z.staff,
            timeout=5,
        )
        world.zw_till = bearer(bakery.merchant_token)
        task = world.zw_claimed("policy:zw-task")
        logged = z.workflow.LogMinutes(
            workflow_pb2.LogMinutesRequest(
                idempotency_key="policy:zw-log", task_id=task, wallet_id=zw.wallet_id, minutes=600
            ),
            metadata=world.zw_holder,
        )
        approve = workflow_pb2.ApproveLogRequest(idempotency_key="policy:zw-ok", log_id=logged.log_id)
        z.workflow.ApproveLog(approve, metadata=fed.staff("coord-a", "work_coordinator"))
        yield world


def register_source(source_id: str) -> Message:
    return sources_pb2.RegisterSourceRequest(
        idempotency_key=source_id,
        source_id=source_id,
        name="Bike share",
        key_id="k1",
        public_key_pem=public_pem(new_source_key()),
        kinds=["trip"],
        reason="bike-share trips",
    )


# Requests that succeed for a caller the policy admits. `n` makes each call's key its own.
Example = Callable[[World, int], Message]
EXAMPLES: dict[str, Example] = {
    "WalletService/OpenWallet": lambda w, n: wallet_pb2.OpenWalletRequest(
        idempotency_key=f"open{n}", participant_kind="resident", consent_version="wien-2026-01"
    ),
    "WalletService/GetBalance": lambda w, n: wallet_pb2.GetBalanceRequest(wallet_id=w.wallet_id),
    "WalletService/RecordActivity": lambda w, n: wallet_pb2.RecordActivityRequest(
        idempotency_key=f"rec{n}", wallet_id=w.wallet_id, activity="trip", fields=TRIP, activity_id=f"m{n}"
    ),
    "WalletService/Spend": lambda w, n: wallet_pb2.SpendRequest(
        idempotency_key=f"spend{n}",
        wallet_id=w.wallet_id,
        merchant_id=w.merchant_id,
        amount=1,
        purchase_ref=f"p{n}",
    ),
    "WalletService/IssueVoucher": lambda w, n: wallet_pb2.IssueVoucherRequest(
        idempotency_key=f"voucher{n}", wallet_id=w.wallet_id, amount=1
    ),
    "WalletService/IssueRedemptionVoucher": lambda w, n: wallet_pb2.IssueRedemptionVoucherRequest(
        idempotency_key=f"rv{n}", wallet_id=w.wallet_id, amount=1
    ),
    "WalletService/ListMyEvents": lambda w, n: wallet_pb2.ListMyEventsRequest(wallet_id=w.wallet_id),
    "WalletService/FileAppeal": lambda w, n: wallet_pb2.FileAppealRequest(
        idempotency_key=f"appeal{n}", wallet_id=w.wallet_id, subject_kind="missing_award", reason="missing"
    ),
    "WalletService/DecideAppeal": lambda w, n: wallet_pb2.DecideAppealRequest(
        idempotency_key=f"decide{n}", appeal_id=w.appeal(f"to-decide{n}"), upheld=False, reason="was right"
    ),
    "WalletService/ListMyAppeals": lambda w, n: wallet_pb2.ListMyAppealsRequest(wallet_id=w.wallet_id),
    "MerchantService/RegisterMerchant": lambda w, n: merchant_pb2.RegisterMerchantRequest(
        idempotency_key=f"shop{n}", name="Bakery", category="food", local=True
    ),
    "MerchantService/AcceptVoucher": lambda w, n: merchant_pb2.AcceptVoucherRequest(
        idempotency_key=f"accept{n}", local_voucher_id=w.holder_voucher(f"for-accept{n}")
    ),
    "MerchantService/GetStatement": lambda w, n: merchant_pb2.GetStatementRequest(),
    "FederationService/GetTerms": lambda w, n: federation_pb2.GetTermsRequest(),
    "FederationService/GetSettlement": lambda w, n: federation_pb2.GetSettlementRequest(),
    "RulebookService/GetRulebook": lambda w, n: rulebook_pb2.GetRulebookRequest(),
    "SourceService/RegisterSource": lambda w, n: register_source(f"src{n}"),
    "SourceService/RotateSourceKey": lambda w, n: sources_pb2.RotateSourceKeyRequest(
        idempotency_key=f"rotate{n}",
        source_id=w.source(f"rot{n}"),
        key_id="k2",
        public_key_pem=public_pem(new_source_key()),
        reason="rotation",
    ),
    "SourceService/RetireSource": lambda w, n: sources_pb2.RetireSourceRequest(
        idempotency_key=f"retire{n}", source_id=w.source(f"ret{n}"), reason="contract ended"
    ),
    "SourceService/ListSources": lambda w, n: sources_pb2.ListSourcesRequest(),
    "ClaimService/SubmitClaim": lambda w, n: claims_pb2.SubmitClaimRequest(claim=w.claim(n)),
    "ClaimService/SubmitClaims": lambda w, n: claims_pb2.SubmitClaimsRequest(claims=[w.claim(n)]),
    "CashbackService/ReportPurchase": lambda w, n: cashback_pb2.ReportPurchaseRequest(
        idempotency_key=f"purchase{n}",
        merchant_id=w.merchant_id,
        receipt_id=f"R-{n}",
        wallet_id=w.wallet_id,
        amount_cents=1000,
        date=dt.datetime.now(dt.UTC).date().isoformat(),
    ),
    "RightsService/ListMyAccessLog": lambda w, n: rights_pb2.ListMyAccessLogRequest(wallet_id=w.wallet_id),
    "RightsService/ListAccessLog": lambda w, n: rights_pb2.ListAccessLogRequest(wallet_id=w.wallet_id),
    "RightsService/RequestErasure": lambda w, n: rights_pb2.RequestErasureRequest(
        idempotency_key=f"erase{n}",
        wallet_id=open_wallet(w.fed.stubs("vienna"), f"to-erase{n}").wallet_id,
        legal_basis="art17_1a_no_longer_necessary",
        reference=f"case-{n}",
    ),
    # Approved by the matrix's own officer, requested by another: four eyes by subject.
    "RightsService/ApproveErasure": lambda w, n: rights_pb2.ApproveErasureRequest(
        idempotency_key=f"approve{n}", request_id=w.erasure_request(f"to-approve{n}", "another-officer")
    ),
    # Withdrawn by the officer who requested it (the matrix calls as `only-erasure_officer`).
    "RightsService/WithdrawErasure": lambda w, n: rights_pb2.WithdrawErasureRequest(
        idempotency_key=f"withdraw{n}",
        request_id=w.erasure_request(f"to-withdraw{n}", "only-erasure_officer"),
        reason="asked in error",
    ),
    "CredentialService/ListMyCredentials": lambda w, n: credentials_pb2.ListMyCredentialsRequest(
        wallet_id=w.wallet_id
    ),
    # Keeping the current credential: the matrix goes on calling with it.
    "CredentialService/RotateMyCredential": lambda w, n: credentials_pb2.RotateMyCredentialRequest(
        idempotency_key=f"rotate{n}", wallet_id=w.wallet_id, keep_current=True
    ),
    "CredentialService/RevokeMyCredential": lambda w, n: credentials_pb2.RevokeMyCredentialRequest(
        idempotency_key=f"revoke{n}", wallet_id=w.wallet_id, credential_id=w.spare(f"spare{n}")
    ),
    "CredentialService/RequestRecovery": lambda w, n: credentials_pb2.RequestRecoveryRequest(
        idempotency_key=f"recover{n}",
        wallet_id=open_wallet(w.fed.stubs("vienna"), f"lost{n}").wallet_id,
        reason="lost",
    ),
    "CredentialService/ApproveRecovery": lambda w, n: credentials_pb2.ApproveRecoveryRequest(
        idempotency_key=f"approve{n}", recovery_id=w.recovery(f"to-approve{n}"), wallet_id=w.recovered
    ),
    "CredentialService/IssueTillCredential": lambda w, n: credentials_pb2.IssueTillCredentialRequest(
        idempotency_key=f"till{n}", merchant_id=w.merchant_id
    ),
    "CredentialService/ListTillCredentials": lambda w, n: credentials_pb2.ListTillCredentialsRequest(
        merchant_id=w.merchant_id
    ),
    "CredentialService/RevokeTillCredential": lambda w, n: credentials_pb2.RevokeTillCredentialRequest(
        idempotency_key=f"untill{n}",
        merchant_id=w.merchant_id,
        credential_id=w.till_credential(f"to-revoke{n}"),
    ),
    "WorkflowService/ListCategories": lambda w, n: workflow_pb2.ListCategoriesRequest(),
    "WorkflowService/PublishCategory": lambda w, n: workflow_pb2.PublishCategoryRequest(
        idempotency_key=f"cat{n}", code=f"cat{n}", title="Repair café", sector="civic", decision_ref="RB-2"
    ),
    "WorkflowService/RetireCategory": lambda w, n: workflow_pb2.RetireCategoryRequest(
        idempotency_key=f"retire{n}", code=w.zw_category(f"old{n}"), decision_ref="RB-3"
    ),
    "WorkflowService/PostTask": lambda w, n: workflow_pb2.PostTaskRequest(
        idempotency_key=f"task{n}",
        category="food-bank",
        place="Voedselbank",
        starts_at="2026-09-01T09:00:00+02:00",
        ends_at="2026-09-01T13:00:00+02:00",
        slots=4,
    ),
    "WorkflowService/ListTasks": lambda w, n: workflow_pb2.ListTasksRequest(),
    "WorkflowService/CloseTask": lambda w, n: workflow_pb2.CloseTaskRequest(
        idempotency_key=f"close{n}", task_id=w.zw_task(f"to-close{n}"), reason="enough hands"
    ),
    "WorkflowService/ClaimTask": lambda w, n: workflow_pb2.ClaimTaskRequest(
        idempotency_key=f"claim{n}", task_id=w.zw_task(f"to-claim{n}"), wallet_id=w.zw_wallet
    ),
    "WorkflowService/LogMinutes": lambda w, n: workflow_pb2.LogMinutesRequest(
        idempotency_key=f"log{n}", task_id=w.zw_claimed(f"to-log{n}"), wallet_id=w.zw_wallet, minutes=1
    ),
    "WorkflowService/ApproveLog": lambda w, n: workflow_pb2.ApproveLogRequest(
        idempotency_key=f"approve{n}", log_id=w.zw_log(f"to-approve{n}")
    ),
    "WorkflowService/RejectLog": lambda w, n: workflow_pb2.RejectLogRequest(
        idempotency_key=f"reject{n}", log_id=w.zw_log(f"to-reject{n}"), reason="no sign-in sheet"
    ),
    "WorkflowService/ListWorkLogs": lambda w, n: workflow_pb2.ListWorkLogsRequest(wallet_id=w.zw_wallet),
    "WorkflowService/PayTax": lambda w, n: workflow_pb2.PayTaxRequest(
        idempotency_key=f"tax{n}", wallet_id=w.zw_wallet, amount=1, assessment_ref=f"AANSLAG-2026-{n:04d}"
    ),
    "WorkflowService/GetTreasuryStatement": lambda w, n: workflow_pb2.GetTreasuryStatementRequest(),
    "WorkflowService/GetEquilibriumReport": lambda w, n: workflow_pb2.GetEquilibriumReportRequest(),
    "PrizeService/OfferPrize": lambda w, n: prizes_pb2.OfferPrizeRequest(
        idempotency_key=f"offer{n}", name="Gelato", cost=1, stock=3
    ),
    "PrizeService/UpdatePrize": lambda w, n: prizes_pb2.UpdatePrizeRequest(
        idempotency_key=f"update{n}", prize_id=w.prize(f"to-update{n}"), name="Gelato", cost=2, stock=4
    ),
    "PrizeService/WithdrawPrize": lambda w, n: prizes_pb2.WithdrawPrizeRequest(
        idempotency_key=f"withdraw{n}", prize_id=w.prize(f"to-withdraw{n}")
    ),
    "PrizeService/ListPrizes": lambda w, n: prizes_pb2.ListPrizesRequest(),
    "PrizeService/ClaimPrize": lambda w, n: prizes_pb2.ClaimPrizeRequest(
        idempotency_key=f"claim{n}", wallet_id=w.wallet_id, prize_id=w.prize(f"to-claim{n}")
    ),
    "PrizeService/ConfirmHandover": lambda w, n: prizes_pb2.ConfirmHandoverRequest(
        idempotency_key=f"handover{n}", claim_id=w.prize_claim(f"to-hand-over{n}")
    ),
    "PrizeService/CancelClaim": lambda w, n: prizes_pb2.CancelClaimRequest(
        idempotency_key=f"cancel{n}", claim_id=w.prize_claim(f"to-cancel{n}"), reason="sold out at the till"
    ),
    "PrizeService/ListMyPrizeClaims": lambda w, n: prizes_pb2.ListMyPrizeClaimsRequest(wallet_id=w.wallet_id),
    "PrizeService/ListPartnerClaims": lambda w, n: prizes_pb2.ListPartnerClaimsRequest(),
    "PayoutService/ProposePayoutRun": lambda w, n: payouts_pb2.ProposePayoutRunRequest(
        idempotency_key=f"propose{n}", period="2026-W22"
    ),
    "PayoutService/RunPayouts": lambda w, n: payouts_pb2.RunPayoutsRequest(
        idempotency_key=f"payout{n}", period="2026-W22"
    ),
    "PayoutService/ListPayoutRuns": lambda w, n: payouts_pb2.ListPayoutRunsRequest(),
    "PayoutService/SetBankAccount": lambda w, n: payouts_pb2.SetBankAccountRequest(
        idempotency_key=f"bank{n}",
        merchant_id=w.merchant_id,
        iban="BE71 0961 2345 6769",
        account_holder="Corner shop BV",
    ),
    # A month long over, with no redemptions between Vienna and Sint-Niklaas: cleared at zero.
    "ClearingAdminService/RunClearing": lambda w, n: clearing_pb2.RunClearingRequest(
        partner_city="sint_niklaas", period="2020-01"
    ),
    "ClearingAdminService/ListClearings": lambda w, n: clearing_pb2.ListClearingsRequest(),
    "FundService/ProposeFundTopUp": lambda w, n: funds_pb2.ProposeFundTopUpRequest(
        idempotency_key=f"top-up{n}", fund_id="city", amount=500, reason="a busy summer"
    ),
    "FundService/ApproveFundTopUp": lambda w, n: funds_pb2.ApproveFundTopUpRequest(
        idempotency_key=f"approve-top-up{n}",
        fund_id="city",
        proposal_id=w.top_up(f"to-approve-top-up{n}"),
        decision_ref="Gemeinderat 2026/17",
    ),
    "FundService/GetFundReport": lambda w, n: funds_pb2.GetFundReportRequest(),
    "FundService/GetFinanceReport": lambda w, n: funds_pb2.GetFinanceReportRequest(period="2026-05"),
}
# Calls whose success needs more than a caller (a partner's saga, or the end of the wallet):
# for them, an admitted caller must simply not be refused as a caller.
NOT_REFUSED_ONLY = {"FederationService/Reserve", "FederationService/Commit", "FederationService/Cancel"}
NOT_REFUSED_ONLY |= {"WalletService/CloseWallet", "RightsService/EraseMyWallet"}
# Vienna records no activity at a desk (its trips come as sources' signed claims): a recorder
# is admitted as a caller, and the trip is then refused for what it is.
NOT_REFUSED_ONLY |= {"WalletService/RecordActivity"}
# Vienna has no cashback rule: its till is admitted as a caller, and the purchase is then
# refused for that (tests/grpc/test_cashback.py credits one in Sint-Niklaas).
NOT_REFUSED_ONLY |= {"CashbackService/ReportPurchase"}
# Vienna publishes no euro value for its token: a finance officer is admitted as a caller, and
# the run is then refused for that (tests/grpc/test_payouts.py runs Sint-Niklaas's payouts).
NOT_REFUSED_ONLY |= {"PayoutService/ProposePayoutRun", "PayoutService/RunPayouts"}


def callers(world: World, city: str = "vienna") -> dict[str, tuple[Principal, Any, str]]:
    """Name -> (principal, call metadata, which certificate): every kind, each role alone;
    the holder and the till are `city`'s."""
    idp = world.fed.idp
    zwolle = city == "zwolle"
    holder = (
        (Holder(uuid.UUID(world.zw_wallet)), world.zw_holder) if zwolle else (_holder(world), world.holder)
    )
    found: dict[str, tuple[Principal, Any, str]] = {
        "anonymous": (Anonymous(), (), "client"),
        "holder": (*holder, "client"),
        "till": (_till(world), world.zw_till if zwolle else world.till, "client"),
        "partner": (PartnerCity("sint_niklaas"), (), "partner"),
        "staff without roles": (Staff("nobody"), bearer(idp.token("nobody", [])), "client"),
    }
    for role in ROLES:
        subject = f"only-{role}"
        found[role] = (Staff(subject, frozenset({role})), bearer(idp.token(subject, [role])), "client")
    return found


def _holder(world: World) -> Principal:
    return Holder(uuid.UUID(world.wallet_id))


def _till(world: World) -> Principal:
    return Till(uuid.UUID(world.merchant_id))


def stub_call(channel: grpc.Channel, method: MethodDescriptor) -> Any:
    response = GetMessageClass(method.output_type)
    return channel.unary_unary(
        path(method),
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response.FromString,
    )


def admitted(allowed: Allowed, principal: Principal) -> bool:
    return allowed.admits(principal)


def test_every_rpc_called_by_every_caller_answers_as_the_policy_says(world: World) -> None:
    fed = world.fed
    partner_files = fed.files["sint_niklaas"]
    # WorkflowService is Zwolle's: its calls go to Zwolle's node, every other call to Vienna's.
    channels = {
        city: {
            "client": fed.channel(city),
            "partner": fed.channel(city, partner_files.cert, partner_files.key),
        }
        for city in ("vienna", "zwolle")
    }
    outcomes: list[str] = []
    n = 0
    # Closing the holder's wallet would end every later holder call: it goes last.
    methods = sorted(our_methods(), key=lambda m: m.name in ("CloseWallet", "EraseMyWallet"))
    try:
        for method in methods:
            name = f"{method.containing_service.name}/{method.name}"
            allowed = POLICY[path(method)]
            city = "zwolle" if method.containing_service.name == "WorkflowService" else "vienna"
            for who, (principal, metadata, cert) in callers(world, city).items():
                n += 1
                call = stub_call(channels[city][cert], method)
                example = EXAMPLES.get(name)
                request = example(world, n) if example else GetMessageClass(method.input_type)()
                if "purpose" in request.DESCRIPTOR.fields_by_name and isinstance(principal, Staff):
                    request.purpose = "policy matrix check"
                try:
                    call(request, metadata=metadata, timeout=10)
                    code = grpc.StatusCode.OK
                except grpc.RpcError as exc:
                    code = exc.code()
                if not admitted(allowed, principal):
                    want = (
                        grpc.StatusCode.UNAUTHENTICATED
                        if isinstance(principal, Anonymous)
                        else grpc.StatusCode.PERMISSION_DENIED
                    )
                    if code != want:
                        outcomes.append(f"{name} by {who}: {code.name}, policy refuses ({want.name})")
                elif name in EXAMPLES and name not in NOT_REFUSED_ONLY:
                    if code != grpc.StatusCode.OK:
                        outcomes.append(f"{name} by {who}: {code.name}, policy admits (OK)")
                elif code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
                    outcomes.append(f"{name} by {who}: {code.name}, policy admits")
    finally:
        for by_cert in channels.values():
            for channel in by_cert.values():
                channel.close()
    assert not outcomes, "\n".join(outcomes)


def test_a_holder_cannot_reach_another_wallet_the_policy_lets_holders_call(world: World) -> None:
    v = world.fed.stubs("vienna")
    other = open_wallet(v, "policy:other")
    req = wallet_pb2.GetBalanceRequest(wallet_id=other.wallet_id)
    with pytest.raises(grpc.RpcError) as err:
        v.wallet.GetBalance(req, metadata=world.holder, timeout=5)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


# -- staff tokens that must be refused ------------------------------------------------------


def opened_with(world: World, token: str) -> grpc.StatusCode:
    v = world.fed.stubs("vienna")
    req = wallet_pb2.OpenWalletRequest(idempotency_key=f"t{uuid.uuid4()}", participant_kind="resident")
    req.consent_version = "wien-2026-01"
    try:
        v.wallet.OpenWallet(req, metadata=bearer(token), timeout=5)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def test_a_staff_token_is_refused_unless_issuer_audience_signature_and_expiry_all_hold(world: World) -> None:
    idp = world.fed.idp
    assert opened_with(world, idp.token("eva", ["recorder"])) == grpc.StatusCode.OK
    stranger = idp.stranger_key()
    forged = idp.token("eva", ["recorder"], key=stranger)
    # The stranger's key, under the provider's own key id: the signature does not verify.
    now_claims = jwt.decode(idp.token("eva", ["recorder"]), idp.key).claims
    same_kid = jwt.encode({"alg": "ES256", "kid": idp.kid}, now_claims, stranger)
    refused = {
        "wrong issuer": idp.token("eva", ["recorder"], issuer="https://id.elsewhere.example/realms/city"),
        "wrong audience": idp.token("eva", ["recorder"], audience="another-app"),
        "unknown key": forged,
        "bad signature": same_kid,
        "expired": idp.token("eva", ["recorder"], ttl=-3600),
        "no subject": jwt.encode(
            {"alg": "ES256", "kid": idp.kid}, {k: v for k, v in now_claims.items() if k != "sub"}, idp.key
        ),
        "not a token": "eyJhbGciOiJub25lIn0.e30.",
        "unsigned": "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
        + jwt.encode({"alg": "ES256", "kid": idp.kid}, now_claims, idp.key).split(".")[1]
        + ".",
    }
    for what, token in refused.items():
        assert opened_with(world, token) == grpc.StatusCode.UNAUTHENTICATED, what


def test_roles_only_from_the_configured_claim_and_only_known_ones(world: World) -> None:
    idp = world.fed.idp
    # A role under another claim, or a role the node does not know, grants nothing.
    elsewhere = idp.token("eva", [], groups=["recorder"])
    invented = idp.token("eva", ["superuser", "admin"])
    for token in (elsewhere, invented):
        assert opened_with(world, token) == grpc.StatusCode.PERMISSION_DENIED


def test_the_documented_table_is_the_policy() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "ACCESS.md").read_text()
    shown = doc.split("<!-- policy-table -->\n", 1)[1].split("\n<!-- /policy-table -->", 1)[0]
    assert shown == table()
