"""Who is calling, and whether the policy lets them: one interceptor for every method.

The principal comes from the call itself: a staff access token (verified against the
city's identity provider), a holder's or till's credential (checked against its stored
hash), or, with no bearer token, the partner city a client certificate names. The servicer
reads it from `current_principal`; nothing in a request body can change it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import grpc

from services.grpc.auth import bearer_token
from services.grpc.tls import peer_identities
from services.identity.oidc import StaffTokens, looks_like_jwt
from services.identity.policy import POLICY, Allowed, check
from services.identity.principals import (
    Anonymous,
    Holder,
    PartnerCity,
    Principal,
    Till,
    Unauthenticated,
)

current_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("current_principal")


class CredentialCheck(Protocol):
    """Holder and till credentials: the principal a presented secret belongs to, if live."""

    def principal(self, token: str) -> Holder | Till | None: ...


class Authenticator:
    def __init__(
        self, staff: StaffTokens | None, credentials: CredentialCheck, partners: Iterable[str]
    ) -> None:
        self.staff = staff
        self.credentials = credentials
        self.partners = frozenset(partners)

    def principal(self, context: grpc.ServicerContext) -> Principal:
        token = bearer_token(context.invocation_metadata())
        if token:
            if looks_like_jwt(token):
                if self.staff is None:
                    raise Unauthenticated("this node accepts no staff tokens (no identity provider set)")
                return self.staff.verify(token)
            found = self.credentials.principal(token)
            if found is None:
                raise Unauthenticated("credentials not recognised, expired or revoked")
            return found
        cities = peer_identities(context) & self.partners
        if len(cities) == 1:
            return PartnerCity(cities.pop())
        return Anonymous()


class AccessInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Authenticates every call and checks it against the policy table before the servicer
    runs. Sits inside ErrorInterceptor, which turns the refusals into statuses."""

    def __init__(
        self, authenticator: Authenticator | None = None, policy: Mapping[str, Allowed] = POLICY
    ) -> None:
        self.authenticator = authenticator
        self.policy = policy

    def intercept_service(self, continuation: Callable[[Any], Any], handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        for kind in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
            behaviour = getattr(handler, kind)
            if behaviour is not None:
                return handler._replace(**{kind: self._guard(method, behaviour)})
        return handler

    def _guard(self, method: str, inner: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        def guarded(request: Any, context: grpc.ServicerContext) -> Any:
            if self.authenticator is None:
                raise Unauthenticated("the node is not ready to authenticate callers")
            principal = self.authenticator.principal(context)
            check(method, principal, self.policy)
            token = current_principal.set(principal)
            try:
                return inner(request, context)
            finally:
                current_principal.reset(token)

        return guarded


def caller() -> Principal:
    """The principal of the call being served (set by AccessInterceptor)."""
    try:
        return current_principal.get()
    except LookupError:
        raise Unauthenticated("no authenticated caller") from None
