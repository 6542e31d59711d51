"""Home side of cross-city redemption: issue, reserve, commit, cancel, expire.

Commands are built on a city's application and run through its idempotent
executor like every other command. Whatever the partner asks, the answer holds
only "accepted" or "refused" and the amount: never identity, balance or history.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import partial
from typing import Any
from uuid import UUID, uuid4

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aggregates.errors import (
    HoldsNotOffered,
    InsufficientBalance,
    InvalidInput,
    NotFound,
    VoucherAlreadyRedeemed,
    VoucherExpired,
    WalletClosed,
    WalletExpired,
)
from aggregates.redemption import Redemption, Terms, check_agreement, check_spendable_at
from aggregates.wallet import Wallet
from services import commands as c
from services.city import CityApplication
from services.federation.vouchers import RedemptionVoucher, sign, verify
from services.unit_of_work import Job, UnitOfWork

# What the voucher or its holder decided: answered to a partner only as "refused" and the
# amount, never why. Anything else (no agreement, a reused idempotency key, a busy writer)
# is about the partner's own call and keeps its own status, as on every other command.
HOLDER_REFUSALS = (
    NotFound,
    VoucherAlreadyRedeemed,
    VoucherExpired,
    WalletClosed,
    WalletExpired,
    InsufficientBalance,
    HoldsNotOffered,
)


class HomeRedemptions:
    def __init__(
        self,
        app: CityApplication,
        signing_key: Ed25519PrivateKey,
        voucher_ttl: dt.timedelta,
        hold_ttl: dt.timedelta,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        """`clock` is the time holds and vouchers are dated by; by default the application's."""
        self.app = app
        self.clock = clock or app.clock
        self.key = app.key
        self.signing_key = signing_key
        self.voucher_ttl = voucher_ttl
        self.hold_ttl = hold_ttl
        # Run directly (`app.execute`), a voucher meant for a partner meets no partner's
        # terms, and is refused; `issue` brings the terms the partner published.
        app.add_handlers(
            {
                c.IssueRedemptionVoucher: partial(self._issue, None),
                c.ReserveRedemption: self._reserve,
                c.CommitRedemption: self._commit,
                c.CancelRedemption: self._cancel,
                c.ExpireRedemption: self._expire_lapsed,
            }
        )

    def issue(
        self, key: str, wallet_id: UUID, amount: int, redeem_at: str = "", terms: Terms | None = None
    ) -> Job:
        """A signed voucher for `amount`; no tokens move until a partner reserves.

        With `redeem_at`, `terms` are that partner's published terms for this city's
        tokens (None if it takes none): a voucher that could buy nothing there is refused.
        """
        return Job.of(
            c.IssueRedemptionVoucher(key, wallet_id, amount, redeem_at), partial(self._issue, terms)
        )

    def _issue(self, terms: Terms | None, cmd: c.IssueRedemptionVoucher, uow: UnitOfWork) -> dict[str, Any]:
        if cmd.redeem_at:
            check_agreement(
                cmd.redeem_at in self.app.city.config.federation.redeemable_at, self.key, cmd.redeem_at
            )
            check_spendable_at(cmd.amount, terms, self.key, cmd.redeem_at)
        now = self.clock()
        wallet = uow.get(cmd.wallet_id, Wallet, "wallet")
        wallet.check_active(now)
        wallet.check_available(cmd.amount)
        # Whole seconds, because the signed payload carries whole seconds.
        expires = (now + self.voucher_ttl).replace(microsecond=0)
        voucher = RedemptionVoucher(self.key, uuid4(), cmd.amount, expires)
        uow.add(Redemption(self.key, voucher.voucher_id, wallet.id, cmd.amount, expires))
        return {"token": sign(voucher, self.signing_key), "expires_at": expires.isoformat()}

    def voucher(self, token: str) -> RedemptionVoucher:
        """A token a partner presents: signed by this city, and one of this city's vouchers."""
        voucher = verify(token, self.signing_key.public_key())
        if voucher.home != self.key:
            raise InvalidInput("redemption_token", "not a voucher of this city")
        return voucher

    def reserve(self, key: str, acceptor: str, voucher: RedemptionVoucher) -> Job:
        return Job.of(c.ReserveRedemption(key, acceptor, voucher.voucher_id), self._reserve)

    def _reserve(self, cmd: c.ReserveRedemption, uow: UnitOfWork) -> dict[str, Any]:
        acceptor = cmd.acceptor
        check_agreement(acceptor in self.app.city.config.federation.redeemable_at, self.key, acceptor)
        now = self.clock()
        redemption = uow.get(Redemption.create_id(self.key, cmd.voucher_id), Redemption, "voucher")
        wallet = uow.get(redemption.wallet_id, Wallet, "wallet")
        wallet.check_active(now)  # a closed wallet is refused before anything else
        redemption.check_reservable(now)
        # Random, not derived from the redemption id the partner holds: the hold id is
        # on the city's event stream beside the wallet, the redemption id is not.
        hold_id = f"redemption:{uuid4()}"
        expires = now + self.hold_ttl
        wallet.place_hold(hold_id, redemption.amount, expires, f"redemption at {acceptor}", now)
        redemption.reserve(acceptor, hold_id, expires)
        return {
            "redemption_id": str(redemption.id),
            "amount": redemption.amount,
            "hold_expires_at": expires.isoformat(),
        }

    def commit(self, key: str, acceptor: str, redemption_id: UUID) -> Job:
        """Burn the held tokens, or refuse if the hold lapsed; a repeat burns nothing."""
        return Job.of(c.CommitRedemption(key, acceptor, redemption_id), self._commit)

    def _commit(self, cmd: c.CommitRedemption, uow: UnitOfWork) -> dict[str, Any]:
        redemption = uow.get(cmd.redemption_id, Redemption, "redemption")
        redemption.check_acceptor(cmd.acceptor)
        if redemption.state == "committed":
            return {"decision": "accepted", "amount": redemption.amount}
        redemption.check_committable(cmd.acceptor)
        assert redemption.hold_id is not None and redemption.hold_expires_at is not None
        wallet = uow.get(redemption.wallet_id, Wallet, "wallet")
        now = self.clock()
        if now >= redemption.hold_expires_at or redemption.hold_id not in wallet.holds:
            self._expire(wallet, redemption)
            return {"decision": "refused", "amount": redemption.amount}
        wallet.burn_hold(redemption.hold_id, cmd.acceptor, redemption.id, now)
        redemption.commit(cmd.acceptor, redemption.amount)
        return {"decision": "accepted", "amount": redemption.amount}

    def cancel(self, key: str, acceptor: str, redemption_id: UUID, reason: str) -> Job:
        return Job.of(c.CancelRedemption(key, acceptor, redemption_id, reason), self._cancel)

    def _cancel(self, cmd: c.CancelRedemption, uow: UnitOfWork) -> dict[str, Any]:
        redemption = uow.get(cmd.redemption_id, Redemption, "redemption")
        redemption.check_acceptor(cmd.acceptor)
        if redemption.state in ("cancelled", "expired"):
            return {"released": True}
        redemption.check_committable(cmd.acceptor)
        assert redemption.hold_id is not None
        wallet = uow.get(redemption.wallet_id, Wallet, "wallet")
        if redemption.hold_id in wallet.holds:
            wallet.release_hold(redemption.hold_id, "cancelled by " + cmd.acceptor)
        redemption.cancel(cmd.reason)
        return {"released": True}

    def expire(self, redemption_id: UUID) -> Job:
        """Release a lapsed hold; does nothing if the redemption moved on or has time left."""
        # A fresh key per attempt: "not yet" must not be remembered as the answer.
        return Job.of(
            c.ExpireRedemption(f"expire:{redemption_id}:{uuid4()}", redemption_id), self._expire_lapsed
        )

    def _expire_lapsed(self, cmd: c.ExpireRedemption, uow: UnitOfWork) -> dict[str, Any]:
        redemption = uow.get(cmd.redemption_id, Redemption, "redemption")
        lapsed = redemption.hold_expires_at is not None and self.clock() >= redemption.hold_expires_at
        if redemption.state != "reserved" or not lapsed:
            return {"expired": False}
        self._expire(uow.get(redemption.wallet_id, Wallet, "wallet"), redemption)
        return {"expired": True}

    @staticmethod
    def _expire(wallet: Wallet, redemption: Redemption) -> None:
        assert redemption.hold_id is not None
        if redemption.hold_id in wallet.holds:
            wallet.release_hold(redemption.hold_id, "expired")
        redemption.expire()
