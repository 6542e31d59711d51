"""Domain exceptions. Services map each family to a transport status."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every rule a command can break."""


class InvalidInput(DomainError):
    """Input that no rule accepts; names the offending field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class NotFound(DomainError):
    """A wallet, merchant, prize, voucher or rule that does not exist."""


def not_found(what: str, aggregate_id: object) -> NotFound:
    """The one answer for an id that does not exist, or that the caller may not know of."""
    return NotFound(f"{what} {aggregate_id} not found")


class PreconditionFailed(DomainError):
    """The command is well formed but the current state refuses it."""


class InsufficientBalance(PreconditionFailed):
    pass


class WalletClosed(PreconditionFailed):
    pass


class WalletExpired(PreconditionFailed):
    pass


class ParticipantNotAllowed(PreconditionFailed):
    pass


class MerchantNotAccepted(PreconditionFailed):
    pass


class OutOfStock(PreconditionFailed):
    pass


class PrizeWithdrawn(PreconditionFailed):
    """The partner withdrew the prize: no new claims."""


class ClaimNotOpen(PreconditionFailed):
    """A prize claim already handed over, cancelled or expired."""


class AlreadyAwarded(PreconditionFailed):
    pass


class VoucherAlreadyRedeemed(PreconditionFailed):
    pass


class VoucherExpired(PreconditionFailed):
    pass


class HoldNotActive(PreconditionFailed):
    pass


class HoldsNotOffered(PreconditionFailed):
    """A hold asked of a wallet whose currency depreciates: such tokens are spent directly."""


class SelfApproval(PreconditionFailed):
    """Four eyes: nobody approves their own hours."""


class WorkNotOpen(PreconditionFailed):
    """A retired work category, a task that is full or closed, or a log already decided."""


class WorkDayFull(PreconditionFailed):
    """Approving these minutes would credit one person more minutes on one day than a day
    holds; the refusal is recorded on the work log and can be appealed (`work_log`)."""


class AssessmentPaid(PreconditionFailed):
    """A tax assessment reference already paid, in a city that takes no instalments."""


class NoAgreement(PreconditionFailed):
    """Two cities that have not both opted in to redeeming each other's tokens."""


class OverCap(PreconditionFailed):
    """A redemption above the per-redemption or daily cap of the agreement."""


class BuysNothing(PreconditionFailed):
    """A cross-city redemption whose credit would round down to zero."""


class RedemptionClosed(PreconditionFailed):
    """A redemption already committed, cancelled or expired."""


class SelfDecision(PreconditionFailed):
    """The person who filed an appeal may not decide it (four eyes)."""


class AppealAlreadyDecided(PreconditionFailed):
    """An appeal is decided once; a further decision would rewrite the outcome."""


class SelfErasureApproval(PreconditionFailed):
    """Four eyes: the officer who requested an erasure may not approve it."""


class ErasureNotPending(PreconditionFailed):
    """An erasure request already carried out or withdrawn, or withdrawn by another officer."""


class AlreadyErased(PreconditionFailed):
    """A wallet whose personal data is already erased: there is nothing left to erase."""


class IdempotencyConflict(PreconditionFailed):
    """An idempotency key reused with different parameters."""


class RuleRejected(DomainError):
    """A rule that may not be published; names the rule and the problem."""

    def __init__(self, rule_id: str, problem: str) -> None:
        super().__init__(f"rule {rule_id!r} rejected: {problem}")
        self.rule_id = rule_id
        self.problem = problem


class NegativeAward(RuleRejected):
    pass


class ProtectedAttribute(RuleRejected):
    pass


def refusal(exc: DomainError) -> dict[str, str]:
    """A refusal as stored in an idempotency receipt."""
    return {"refused": type(exc).__name__, "message": str(exc)}


def rebuild(result: dict[str, str]) -> DomainError:
    """The refusal a retried command gets back, as the same exception type."""
    known = {cls.__name__: cls for cls in _subclasses(DomainError)}
    cls = known.get(result["refused"], PreconditionFailed)
    err = Exception.__new__(cls)
    Exception.__init__(err, result["message"])
    return err


def _subclasses(cls: type[DomainError]) -> list[type[DomainError]]:
    return [cls] + [s for sub in cls.__subclasses__() for s in _subclasses(sub)]


class AwardRefused(PreconditionFailed):
    """An award a rule's caps or dates refuse; the refusal is recorded on the wallet and
    can be appealed like any other."""


class ProposalNotOpen(PreconditionFailed):
    """A rule change proposal already approved or rejected is decided once."""


# -- claims from registered sources (aggregates/source.py) ---------------------------------


class KindNotAttested(PreconditionFailed):
    """A source claiming an activity kind it was not registered to attest."""


class SourceRetired(PreconditionFailed):
    """A retired source, or a key of a source that has since been rotated out."""


class StaleClaim(PreconditionFailed):
    """A claim dated further back than the city accepts."""


class OverBound(PreconditionFailed):
    """A claim beyond a source's plausibility bound for one person and day."""


class NotDeskActivity(PreconditionFailed):
    """An activity staff may not record at a desk: it reaches the ledger only as a signed claim."""


# -- funds and budgets (aggregates/fund.py) --------------------------------------------------


class FundExhausted(AwardRefused):
    """An award beyond the budget its rule's fund has left; recorded on the wallet like a
    cap's refusal, and appealable like one."""


class TopUpNotOpen(PreconditionFailed):
    """A fund top-up proposal already decided is decided once."""


class DecisionReused(PreconditionFailed):
    """A decision reference that already approved one top-up of a fund, given for another."""
