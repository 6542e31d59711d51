"""Home side of cross-city redemption: issue, reserve, commit, cancel, expire.

Commands are built on a city's application and run through its idempotent
executor like every other command. Whatever the partner asks, the answer holds
only "accepted" or "refused" and the amount: never identity, balance or history.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID, uuid4

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aggregates.redemption import Redemption, Terms, check_agreement, check_spendable_at
from aggregates.wallet import Wallet
from services.city import CityApplication
from services.federation.vouchers import RedemptionVoucher, sign
from services.unit_of_work import Command, UnitOfWork


class HomeRedemptions:
    def __init__(
        self,
        app: CityApplication,
        signing_key: Ed25519PrivateKey,
        voucher_ttl: dt.timedelta,
        hold_ttl: dt.timedelta,
    ) -> None:
        self.app = app
        self.key = app.key
        self.signing_key = signing_key
        self.voucher_ttl = voucher_ttl
        self.hold_ttl = hold_ttl

    def issue(
        self, key: str, wallet_id: UUID, amount: int, redeem_at: str = "", terms: Terms | None = None
    ) -> Command:
        """A signed voucher for `amount`; no tokens move until a partner reserves.

        With `redeem_at`, `terms` are that partner's published terms for this city's
        tokens (None if it takes none): a voucher that could buy nothing there is refused.
        """

        def handle(uow: UnitOfWork) -> dict[str, Any]:
            if redeem_at:
                check_agreement(
                    redeem_at in self.app.city.config.federation.redeemable_at, self.key, redeem_at
                )
                check_spendable_at(amount, terms, self.key, redeem_at)
            now = self.app.clock()
            wallet = uow.get(wallet_id, Wallet, "wallet")
            wallet.check_active(now)
            wallet.check_available(amount)
            # Whole seconds, because the signed payload carries whole seconds.
            expires = (now + self.voucher_ttl).replace(microsecond=0)
            voucher = RedemptionVoucher(self.key, uuid4(), amount, expires)
            uow.add(Redemption(self.key, voucher.voucher_id, wallet.id, amount, expires))
            return {"token": sign(voucher, self.signing_key), "expires_at": expires.isoformat()}

        # "at" only when given, so receipts stored before it existed still replay.
        params: dict[str, Any] = {"wallet": wallet_id, "amount": amount} | (
            {"at": redeem_at} if redeem_at else {}
        )
        return Command("issue_redemption_voucher", key, params, handle)

    def reserve(self, key: str, acceptor: str, voucher: RedemptionVoucher) -> Command:
        def handle(uow: UnitOfWork) -> dict[str, Any]:
            check_agreement(acceptor in self.app.city.config.federation.redeemable_at, self.key, acceptor)
            now = self.app.clock()
            redemption = uow.get(Redemption.create_id(self.key, voucher.voucher_id), Redemption, "voucher")
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

        return Command("reserve", key, {"acceptor": acceptor, "voucher": voucher.voucher_id}, handle)

    def commit(self, key: str, acceptor: str, redemption_id: UUID) -> Command:
        """Burn the held tokens, or refuse if the hold lapsed; a repeat burns nothing."""

        def handle(uow: UnitOfWork) -> dict[str, Any]:
            redemption = uow.get(redemption_id, Redemption, "redemption")
            redemption.check_acceptor(acceptor)
            if redemption.state == "committed":
                return {"decision": "accepted", "amount": redemption.amount}
            redemption.check_committable(acceptor)
            assert redemption.hold_id is not None and redemption.hold_expires_at is not None
            wallet = uow.get(redemption.wallet_id, Wallet, "wallet")
            now = self.app.clock()
            if now >= redemption.hold_expires_at or redemption.hold_id not in wallet.holds:
                self._expire(wallet, redemption)
                return {"decision": "refused", "amount": redemption.amount}
            wallet.burn_hold(redemption.hold_id, acceptor, redemption.id, now)
            redemption.commit(acceptor, redemption.amount)
            return {"decision": "accepted", "amount": redemption.amount}

        return Command("commit", key, {"acceptor": acceptor, "redemption": redemption_id}, handle)

    def cancel(self, key: str, acceptor: str, redemption_id: UUID, reason: str) -> Command:
        def handle(uow: UnitOfWork) -> dict[str, Any]:
            redemption = uow.get(redemption_id, Redemption, "redemption")
            redemption.check_acceptor(acceptor)
            if redemption.state in ("cancelled", "expired"):
                return {"released": True}
            redemption.check_committable(acceptor)
            assert redemption.hold_id is not None
            wallet = uow.get(redemption.wallet_id, Wallet, "wallet")
            if redemption.hold_id in wallet.holds:
                wallet.release_hold(redemption.hold_id, "cancelled by " + acceptor)
            redemption.cancel(reason)
            return {"released": True}

        return Command("cancel", key, {"acceptor": acceptor, "redemption": redemption_id}, handle)

    def expire(self, redemption_id: UUID) -> Command:
        """Release a lapsed hold; does nothing if the redemption moved on or has time left."""

        def handle(uow: UnitOfWork) -> dict[str, Any]:
            redemption = uow.get(redemption_id, Redemption, "redemption")
            lapsed = redemption.hold_expires_at is not None and self.app.clock() >= redemption.hold_expires_at
            if redemption.state != "reserved" or not lapsed:
                return {"expired": False}
            self._expire(uow.get(redemption.wallet_id, Wallet, "wallet"), redemption)
            return {"expired": True}

        # A fresh key per attempt: "not yet" must not be remembered as the answer.
        return Command("expire", f"expire:{redemption_id}:{uuid4()}", {"redemption": redemption_id}, handle)

    @staticmethod
    def _expire(wallet: Wallet, redemption: Redemption) -> None:
        assert redemption.hold_id is not None
        if redemption.hold_id in wallet.holds:
            wallet.release_hold(redemption.hold_id, "expired")
        redemption.expire()
