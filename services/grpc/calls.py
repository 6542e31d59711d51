"""What every servicer method does before its one application call: who is calling, whether
they may, what they asked (validated), and the idempotency key scoped to them.

Who may call is checked before the body is read, except for calls about one wallet: whether
the caller may make those depends on the wallet the body names, so the body is read first
and both checks follow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

import grpc
from google.protobuf.message import Message
from pydantic import BaseModel

from services.grpc import requests as rq
from services.grpc.auth import Credentials, Principal
from services.grpc.tls import partner_city

M = TypeVar("M", bound=BaseModel)

STAFF = ("staff",)
HOLDER = ("holder",)
MERCHANT = ("merchant",)
# A partner city's node, known by the city its client certificate names, not by a token.
PARTNER = ("partner",)


def scoped(role: str, subject: str, key: str) -> str:
    """Idempotency keys are per caller, so one caller cannot replay another's result."""
    return f"{role}:{subject}:{key}"


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
        return scoped(self.who.role, self.who.subject, key)


class Calls:
    """Authenticates, authorises and parses a call for any of the node's servicers."""

    def __init__(self, credentials: Credentials, partners: Iterable[str]) -> None:
        self.credentials = credentials
        self.partners = frozenset(partners)

    def __call__(
        self,
        context: grpc.ServicerContext,
        request: Message,
        model: type[M],
        roles: tuple[str, ...] | None = None,
        wallet: bool = False,
    ) -> Call[M]:
        """`roles`: who may call (None: any authenticated caller); `wallet`: only staff or
        the holder of the wallet the request names."""
        who = self.principal(context, roles)
        if not wallet:
            if roles is not None:
                who.require(*roles)
            return Call(who, rq.parse(model, request))
        parsed = rq.parse(model, request)
        if roles is not None:
            who.require(*roles)
        wallet_id = getattr(parsed, "wallet_id", None)
        if not isinstance(wallet_id, UUID):
            raise TypeError(f"{model.__name__} names no wallet")
        who.require_wallet(wallet_id)
        return Call(who, parsed)

    def caller(self, context: grpc.ServicerContext, roles: tuple[str, ...]) -> Principal:
        """For calls without a body to read: who is calling, if they may."""
        who = self.principal(context, roles)
        who.require(*roles)
        return who

    def principal(self, context: grpc.ServicerContext, roles: tuple[str, ...] | None) -> Principal:
        if roles == PARTNER:
            return Principal("partner", partner_city(context, self.partners))
        return self.credentials.principal(context)
