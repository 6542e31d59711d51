"""RightsService: the access log and erasure on request (thin translation only)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import grpc

from civfed.v1 import rights_pb2, rights_pb2_grpc
from services import commands as cmds
from services.access_log import access_log
from services.erasure import shred
from services.grpc import requests as rq
from services.grpc.audit import Audit, acting_roles
from services.grpc.calls import Calls, as_staff
from services.grpc.node import CityNode
from services.identity.principals import Holder, PermissionDenied

S = "/civfed.v1.RightsService/"


class RightsService(rights_pb2_grpc.RightsServiceServicer):
    def __init__(self, node: CityNode) -> None:
        self.node = node
        self.app = node.app
        self.call = Calls()
        self.audit = Audit(node)

    def ListMyAccessLog(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.WalletRef, wallet=True)
        self.app.wallet(c.request.wallet_id)  # an unknown wallet is NOT_FOUND, not an empty log
        return self._log(c.request.wallet_id)

    def ListAccessLog(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.PersonRead)
        wallet = c.request.wallet_id
        self.audit.read(context, c.who, S + "ListAccessLog", wallet, "read access log", c.request.purpose)
        return self._log(wallet)

    def EraseMyWallet(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.EraseMyWallet, wallet=True)
        if not isinstance(c.who, Holder):
            raise PermissionDenied("only the holder erases a wallet by themselves")
        out = self.node.execute(self.app.job(cmds.EraseOwnWallet(c.key, c.request.wallet_id)))
        shred(self.app, out)
        return rights_pb2.ErasureStatus(**out)

    def RequestErasure(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.RequestErasure)
        staff = as_staff(c.who)
        r = c.request
        roles = acting_roles(S + "RequestErasure", staff)
        cmd = cmds.RequestErasure(c.key, r.wallet_id, r.legal_basis, r.reference, staff.ref, roles)
        return rights_pb2.ErasureStatus(**self.node.execute(self.app.job(cmd)))

    def ApproveErasure(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.ApproveErasure)
        staff = as_staff(c.who)
        roles = acting_roles(S + "ApproveErasure", staff)
        cmd = cmds.ApproveErasure(c.key, c.request.request_id, staff.ref, roles)
        out = self.node.execute(self.app.job(cmd))
        shred(self.app, out)
        return rights_pb2.ErasureStatus(**out)

    def WithdrawErasure(self, request: Any, context: grpc.ServicerContext) -> Any:
        c = self.call(context, request, rq.WithdrawErasure)
        staff = as_staff(c.who)
        roles = acting_roles(S + "WithdrawErasure", staff)
        cmd = cmds.WithdrawErasure(c.key, c.request.request_id, staff.ref, roles, c.request.reason)
        return rights_pb2.ErasureStatus(**self.node.execute(self.app.job(cmd)))

    def _log(self, wallet_id: UUID) -> Any:
        entries = [
            rights_pb2.AccessEntry(
                at=e.at, subject=e.subject, roles=list(e.roles), action=e.action, purpose=e.purpose
            )
            for e in access_log(self.app, wallet_id)
        ]
        return rights_pb2.AccessLogResponse(wallet_id=str(wallet_id), entries=entries)
