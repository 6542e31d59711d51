"""What every servicer method does before its one application call: who is calling (as the
access interceptor authenticated them), what they asked (validated), and the idempotency
key scoped to them. Whether they may call the method at all is the policy table's
business (services/identity/policy.py), checked before the servicer runs.

Calls about one wallet are checked once more here, after the body is read: a holder acts
only on the wallet their credential belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

import grpc
from google.protobuf.message import Message
from pydantic import BaseModel

from services.grpc import requests as rq
from services.grpc.access import caller
from services.identity.principals import Holder, PartnerCity, PermissionDenied, Principal, Staff, Till

M = TypeVar("M", bound=BaseModel)


def scoped(kind: str, subject: str, key: str) -> str:
    """Idempotency keys are per caller, so one caller cannot replay another's result."""
    return f"{kind}:{subject}:{key}"


@dataclass(frozen=True)
class Call(Generic[M]):
    who: Principal
    request: M

    @property
    def key(self) -> str:
        """The request's idempotency key, scoped to the caller."""
        key: Any = getattr(self.request, "idempotency_key", None)
        if not isinstance(key, str):
            raise TypeError(f"{type(self.request).__name__} carries no idempotency key")
        return scoped(self.who.kind, self.who.subject, key)


def require_wallet(who: Principal, wallet_id: UUID) -> None:
    """Staff whose role the policy admitted, or the holder of exactly this wallet."""
    if isinstance(who, Staff):
        return
    if not isinstance(who, Holder) or who.wallet_id != wallet_id:
        raise PermissionDenied("a holder may act only on their own wallet")


class Calls:
    """Parses a call for any of the node's servicers, for the caller the interceptor found."""

    def __call__(
        self, context: grpc.ServicerContext, request: Message, model: type[M], wallet: bool = False
    ) -> Call[M]:
        """`wallet`: only staff or the holder of the wallet the request names."""
        who = caller()
        parsed = rq.parse(model, request)
        if wallet:
            wallet_id = getattr(parsed, "wallet_id", None)
            if not isinstance(wallet_id, UUID):
                raise TypeError(f"{model.__name__} names no wallet")
            require_wallet(who, wallet_id)
        return Call(who, parsed)


def as_till(who: Principal) -> Till:
    if not isinstance(who, Till):
        raise PermissionDenied("only a merchant's till may make this call")
    return who


def as_partner(who: Principal) -> PartnerCity:
    if not isinstance(who, PartnerCity):
        raise PermissionDenied("only a partner city's node may make this call")
    return who


def as_staff(who: Principal) -> Staff:
    if not isinstance(who, Staff):
        raise PermissionDenied("only staff may make this call")
    return who
