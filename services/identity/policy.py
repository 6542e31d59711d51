"""One table: which principal may call which RPC. docs/ACCESS.md shows it, and a test fails
for any RPC of any service that has no entry here, so nothing ships unprotected.

"holder" lets a wallet's holder call, for their own wallet only (the servicer checks the
wallet the request names); "till" a merchant's till, for its own merchant; "partner" a
partner city's node by its certificate; "anyone" even an unauthenticated caller. Any other
word is a staff role.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.identity.principals import ROLES, Anonymous, PermissionDenied, Principal, Staff, Unauthenticated

KINDS = ("holder", "till", "partner", "anyone")


@dataclass(frozen=True)
class Allowed:
    who: frozenset[str]

    def __post_init__(self) -> None:
        unknown = self.who - set(KINDS) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown principal kinds or roles: {sorted(unknown)}")

    def admits(self, principal: Principal) -> bool:
        if "anyone" in self.who:
            return True
        if isinstance(principal, Staff):
            return bool(self.who & principal.roles)
        return principal.kind in self.who


def allow(*who: str) -> Allowed:
    return Allowed(frozenset(who))


W, M, F, R, G, C = (
    "/civfed.v1.WalletService/",
    "/civfed.v1.MerchantService/",
    "/civfed.v1.FederationService/",
    "/civfed.v1.RulebookService/",
    "/civfed.v1.RightsService/",
    "/civfed.v1.CredentialService/",
)
CB = "/civfed.v1.CashbackService/"
SRC, CLM = "/civfed.v1.SourceService/", "/civfed.v1.ClaimService/"
WF = "/civfed.v1.WorkflowService/"
P = "/civfed.v1.PrizeService/"
PO = "/civfed.v1.PayoutService/"
CL, CLA = "/civfed.v1.ClearingService/", "/civfed.v1.ClearingAdminService/"
FUND = "/civfed.v1.FundService/"

POLICY: Mapping[str, Allowed] = {
    # Wallets. Staff reads of a person's data are allowed to the roles that need them and
    # each one is written to that person's access log with the purpose given.
    W + "OpenWallet": allow("recorder"),
    W + "GetBalance": allow("holder", "recorder", "appeals_officer"),
    W + "RecordActivity": allow("recorder"),
    W + "Spend": allow("holder"),
    W + "IssueVoucher": allow("holder"),
    W + "IssueRedemptionVoucher": allow("holder"),
    W + "CloseWallet": allow("holder"),
    W + "ListMyEvents": allow("holder", "appeals_officer"),
    W + "FileAppeal": allow("holder", "recorder"),
    W + "DecideAppeal": allow("appeals_officer"),
    W + "ListMyAppeals": allow("holder", "appeals_officer"),
    # Merchants: registered by a merchant administrator; a till accepts and reads its statement.
    M + "RegisterMerchant": allow("merchant_admin"),
    M + "AcceptVoucher": allow("till"),
    M + "GetStatement": allow("till"),
    # Cashback: a shop's till, by its own till credential, for its own shop only (the
    # servicer checks the merchant the request names).
    CB + "ReportPurchase": allow("till"),
    # Federation: partner nodes only.
    F + "GetTerms": allow("partner"),
    F + "Reserve": allow("partner"),
    F + "Commit": allow("partner"),
    F + "Cancel": allow("partner"),
    F + "GetSettlement": allow("partner"),
    R + "GetRulebook": allow("anyone"),
    # Rule changes: one person proposes, a council approver who is someone else decides
    # (the rulebook checks the subjects differ); proposals are public like the rules.
    R + "ProposeRuleChange": allow("rule_publisher"),
    R + "ApproveRuleChange": allow("council_approver"),
    R + "RejectRuleChange": allow("council_approver"),
    R + "ListRuleProposals": allow("anyone"),
    # A person's rights: their own access log and erasure; staff erase only with two
    # erasure officers (four eyes by subject); auditors read access logs, each read logged.
    G + "ListMyAccessLog": allow("holder"),
    G + "ListAccessLog": allow("auditor"),
    G + "EraseMyWallet": allow("holder"),
    G + "RequestErasure": allow("erasure_officer"),
    G + "ApproveErasure": allow("erasure_officer"),
    G + "WithdrawErasure": allow("erasure_officer"),
    # Credentials: a holder's are the holder's alone (no staff role lists, rotates or revokes
    # them); recovery is requested by one recorder and approved by another person; tills'
    # are the merchant administrators'.
    C + "ListMyCredentials": allow("holder"),
    C + "RotateMyCredential": allow("holder"),
    C + "RevokeMyCredential": allow("holder"),
    C + "RequestRecovery": allow("recorder"),
    C + "ApproveRecovery": allow("recorder"),
    C + "IssueTillCredential": allow("merchant_admin"),
    C + "ListTillCredentials": allow("merchant_admin"),
    C + "RevokeTillCredential": allow("merchant_admin"),
    # Sources that attest activities: registered, rotated and retired by whoever publishes
    # the rules they feed; which systems may attest what is public.
    SRC + "RegisterSource": allow("rule_publisher"),
    SRC + "RotateSourceKey": allow("rule_publisher"),
    SRC + "RetireSource": allow("rule_publisher"),
    SRC + "ListSources": allow("anyone"),
    # Claims: the source's signature on each claim is its authentication (services/claims.py),
    # so any caller may deliver them; an unsigned or wrongly signed claim credits nothing.
    CLM + "SubmitClaim": allow("anyone"),
    CLM + "SubmitClaims": allow("anyone"),
    # A social-workflow city. The catalogue and the k-anonymous equilibrium report are public
    # like the rules; the treasury's totals are for auditors (no references: those are the
    # payers' data). A coordinator who logged minutes on someone's behalf may not decide on
    # them, and nobody decides on their own: four eyes by authenticated subject.
    WF + "ListCategories": allow("anyone"),
    WF + "PublishCategory": allow("council_approver"),
    WF + "RetireCategory": allow("council_approver"),
    WF + "PostTask": allow("work_coordinator"),
    WF + "ListTasks": allow("holder", "work_coordinator"),
    WF + "CloseTask": allow("work_coordinator"),
    WF + "ClaimTask": allow("holder"),
    WF + "LogMinutes": allow("holder", "work_coordinator"),
    WF + "ApproveLog": allow("work_coordinator"),
    WF + "RejectLog": allow("work_coordinator"),
    WF + "ListWorkLogs": allow("holder", "work_coordinator"),
    WF + "PayTax": allow("holder"),
    WF + "GetTreasuryStatement": allow("auditor"),
    WF + "GetEquilibriumReport": allow("anyone"),
    # Partner prizes: a partner business, by its till credential, offers, changes and hands
    # over its own prizes; holders list them and claim for their own wallet.
    P + "OfferPrize": allow("till"),
    P + "UpdatePrize": allow("till"),
    P + "WithdrawPrize": allow("till"),
    P + "ListPrizes": allow("holder", "till"),
    P + "ClaimPrize": allow("holder"),
    P + "ConfirmHandover": allow("till"),
    P + "CancelClaim": allow("till"),
    P + "ListMyPrizeClaims": allow("holder"),
    P + "ListPartnerClaims": allow("till"),
    # Shop payouts, four eyes by subject: one finance officer proposes a period's run, another
    # runs it (the run checks the subjects differ); auditors list the runs too. A shop's bank
    # account is set by a merchant administrator, as at registration.
    PO + "ProposePayoutRun": allow("finance_officer"),
    PO + "RunPayouts": allow("finance_officer"),
    PO + "ListPayoutRuns": allow("finance_officer", "auditor"),
    PO + "SetBankAccount": allow("merchant_admin"),
    # Clearing between cities: a partner node proposes its signed figures; the city's
    # council approver runs the clearing (it signs for the city), auditors read statements.
    CL + "ProposeClearing": allow("partner"),
    CLA + "RunClearing": allow("council_approver"),
    CLA + "ListClearings": allow("council_approver", "auditor"),
    # Funds and budgets: a top-up is proposed by whoever publishes the rules that draw on the
    # fund (or a council approver) and approved by a council approver who is someone else (the
    # fund checks the subjects differ); the funds' figures (never a person's) are for auditors
    # and the council.
    FUND + "ProposeFundTopUp": allow("rule_publisher", "council_approver"),
    FUND + "ApproveFundTopUp": allow("council_approver"),
    FUND + "GetFundReport": allow("auditor", "council_approver", "rule_publisher"),
    # The finance department's report (funds, payout and clearing totals; never a person's
    # or a single shop's figures).
    FUND + "GetFinanceReport": allow("auditor", "council_approver", "finance_officer"),
    # Probes and tooling.
    "/grpc.health.v1.Health/Check": allow("anyone"),
    "/grpc.health.v1.Health/Watch": allow("anyone"),
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": allow("anyone"),
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": allow("anyone"),
}


def check(method: str, principal: Principal, policy: Mapping[str, Allowed] = POLICY) -> None:
    """Refuse unless the table lets `principal` call `method`; a method missing from the
    table is refused to everyone."""
    allowed = policy.get(method)
    if allowed is None:
        raise PermissionDenied(f"{method} has no entry in the access policy")
    if allowed.admits(principal):
        return
    if isinstance(principal, Anonymous):
        raise Unauthenticated(f"{_name(method)} needs credentials")
    raise PermissionDenied(f"{describe(principal)} may not call {_name(method)}")


def describe(principal: Principal) -> str:
    if isinstance(principal, Staff):
        roles = ", ".join(sorted(principal.roles)) or "no roles"
        return f"staff member {principal.subject} ({roles})"
    return f"a {principal.kind}"


def _name(method: str) -> str:
    return method.rsplit("/", 1)[-1]


def table(policy: Mapping[str, Allowed] = POLICY) -> str:
    """The policy as the Markdown table docs/ACCESS.md shows (a test keeps the two equal)."""
    rows = ["| Service | RPC | Who may call |", "|---|---|---|"]
    for method, allowed in policy.items():
        service, rpc = method.strip("/").rsplit("/", 1)
        who = ", ".join(f"`{w}`" for w in sorted(allowed.who, key=_order))
        rows.append(f"| {service.rsplit('.', 1)[-1]} | {rpc} | {who} |")
    return "\n".join(rows)


def _order(who: str) -> tuple[int, str]:
    return (0 if who in KINDS else 1, who)
