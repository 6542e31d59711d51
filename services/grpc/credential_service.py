"""CredentialService: holders manage their own credentials, the desk recovers a lost wallet
with four eyes, merchant administrators issue and revoke till credentials.

Every issued secret is made here, handed to the command only as its hash, and returned
once: a retry with the same key replays the stored result, which names the credential but
cannot show it (the `credential` field is then empty).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

import grpc

from aggregates.credential import KeyEntry, OwnerKind
from civfed.v1 import credentials_pb2, credentials_pb2_grpc
from services import commands as c
from services.grpc import requests as rq
from services.grpc.auth import bearer_token
from services.grpc.calls import Calls, as_staff
from services.grpc.node import CityNode
from services.identity.credentials import NewCredential, listing, parse
from services.identity.principals import Holder, Principal, Unauthenticated


def as_holder(who: Principal) -> Holder:
    if not isinstance(who, Holder) or who.credential_id is None:
        raise Unauthenticated("only a holder's own credential may make this call")
    return who


class CredentialService(credentials_pb2_grpc.CredentialServiceServicer):
    def __init__(self, node: CityNode) -> None:
        self.node = node
        self.app = node.app
        self.call = Calls()
        self.days = node.settings.CIVFED_CREDENTIAL_DAYS

    # -- the holder's own ---------------------------------------------------------------
    def ListMyCredentials(self, request: Any, context: grpc.ServicerContext) -> Any:
        c_ = self.call(context, request, rq.WalletRef, wallet=True)
        holder = as_holder(c_.who)
        return self._listing("holder", c_.request.wallet_id, holder.credential_id)

    def RotateMyCredential(self, request: Any, context: grpc.ServicerContext) -> Any:
        c_ = self.call(context, request, rq.RotateMyCredential, wallet=True)
        holder = as_holder(c_.who)
        presented = parse(bearer_token(context.invocation_metadata()))
        if presented is None or holder.credential_id is None or presented[2] != holder.credential_id:
            raise Unauthenticated("rotation needs the holder's own credential")
        new = NewCredential.make("holder", c_.request.wallet_id)
        cmd = c.RotateCredential(
            c_.key,
            c_.request.wallet_id,
            c_.request.label or "rotated",
            self.days,
            c_.request.keep_current,
            holder.credential_id,
            presented[3],
            new.credential_id,
            new.hash,
        )
        out = self.node.execute(self.app.job(cmd))
        return self._issued(new, out, [out["replaced"]] if out["replaced"] else [])

    def RevokeMyCredential(self, request: Any, context: grpc.ServicerContext) -> Any:
        c_ = self.call(context, request, rq.RevokeMyCredential, wallet=True)
        holder = as_holder(c_.who)
        r = c_.request
        cmd = self.app.revoke_credential(
            c_.key, "holder", r.wallet_id, r.credential_id, holder.ref, "revoked by the holder"
        )
        return self._revoked(self.node.execute(self.app.job(cmd)))

    # -- recovery at the desk, four eyes by authenticated subject ------------------------
    def RequestRecovery(self, request: Any, context: grpc.ServicerContext) -> Any:
        c_ = self.call(context, request, rq.RequestRecovery)
        r = c_.request
        cmd = c.RequestRecovery(c_.key, r.wallet_id, r.reason, as_staff(c_.who).ref)
        out = self.node.execute(self.app.job(cmd))
        return credentials_pb2.RequestRecoveryResponse(
            recovery_id=out["recovery_id"], requested_at=out["requested_at"]
        )

    def ApproveRecovery(self, request: Any, context: grpc.ServicerContext) -> Any:
        c_ = self.call(context, request, rq.ApproveRecovery)
        r = c_.request
        new = NewCredential.make("holder", r.wallet_id)
        cmd = c.ApproveRecovery(
            c_.key, r.wallet_id, r.recovery_id, as_staff(c_.who).ref, self.days, new.credential_id, new.hash
        )
        out = self.node.execute(self.app.job(cmd))
        return self._issued(new, out, out["revoked"])

    # -- tills ---------------------------------------------------------------------------
    def IssueTillCredential(self, request: Any, context: grpc.ServicerContext) -> Any:
        c_ = self.call(context, request, rq.IssueTillCredential)
        r = c_.request
        new = NewCredential.make("till", r.merchant_id)
        cmd = c.IssueTillCredential(
            c_.key,
            r.merchant_id,
            r.label or "till",
            self.days,
            as_staff(c_.who).ref,
            new.credential_id,
            new.hash,
        )
        return self._issued(new, self.node.execute(self.app.job(cmd)), [])

    def ListTillCredentials(self, request: Any, context: grpc.ServicerContext) -> Any:
        c_ = self.call(context, request, rq.MerchantRef)
        as_staff(c_.who)
        return self._listing("till", c_.request.merchant_id, None)

    def RevokeTillCredential(self, request: Any, context: grpc.ServicerContext) -> Any:
        c_ = self.call(context, request, rq.RevokeTillCredential)
        r = c_.request
        cmd = self.app.revoke_credential(
            c_.key,
            "till",
            r.merchant_id,
            r.credential_id,
            as_staff(c_.who).ref,
            "revoked by a merchant administrator",
        )
        return self._revoked(self.node.execute(self.app.job(cmd)))

    # -- answers -------------------------------------------------------------------------
    def _issued(self, new: NewCredential, out: dict[str, Any], revoked: list[str]) -> Any:
        # Only the attempt that made the credential shows it; a replay names it and no more.
        shown = new.token if out["credential_id"] == str(new.credential_id) else ""
        return credentials_pb2.IssuedCredential(
            credential_id=out["credential_id"],
            credential=shown,
            expires_at=out["expires_at"],
            revoked=revoked,
        )

    @staticmethod
    def _revoked(out: dict[str, Any]) -> Any:
        return credentials_pb2.RevokeCredentialResponse(
            credential_id=out["credential_id"], revoked=out["revoked"]
        )

    def _listing(self, kind: OwnerKind, owner: UUID, current: UUID | None) -> Any:
        now = self.app.clock()
        return credentials_pb2.ListCredentialsResponse(
            credentials=[self._info(e, now, current) for e in listing(self.app.keyring(kind, owner))]
        )

    @staticmethod
    def _info(e: KeyEntry, now: dt.datetime, current: UUID | None) -> Any:
        return credentials_pb2.CredentialInfo(
            credential_id=str(e.credential_id),
            label=e.label,
            issued_at=e.issued_at.isoformat(),
            expires_at=e.expires_at.isoformat(),
            revoked_at=e.revoked_at.isoformat() if e.revoked_at else "",
            live=e.live(now),
            current=e.credential_id == current,
        )
