"""Calls to a partner city: every call has a deadline, and only UNAVAILABLE is retried.

Retrying is safe because every mutating call carries an idempotency key.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from civfed.v1 import federation_pb2, federation_pb2_grpc
from services.grpc.errors import PartnerRefused, PartnerUnavailable

R = TypeVar("R")


def call_with_retry(
    fn: Callable[..., R], request: Any, timeout: float, attempts: int = 4, backoff: float = 0.05, **kw: Any
) -> R:
    for attempt in range(attempts):
        try:
            return fn(request, timeout=timeout, **kw)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE or attempt == attempts - 1:
                raise
            time.sleep(backoff * 2**attempt)
    raise AssertionError("unreachable")


class PartnerClient:
    """The federation service of one partner city, verified by its certificate name."""

    def __init__(
        self, city: str, address: str, credentials: grpc.ChannelCredentials, timeout: float = 5.0
    ) -> None:
        self.city = city
        self.timeout = timeout
        # The server must present a certificate naming the partner city itself.
        options = [("grpc.ssl_target_name_override", city)]
        self.channel = grpc.secure_channel(address, credentials, options=options)
        self.stub = federation_pb2_grpc.FederationServiceStub(self.channel)
        self._terms: tuple[float, federation_pb2.GetTermsResponse] | None = None

    def _call(self, fn: Callable[..., R], request: Any) -> R:
        try:
            return call_with_retry(fn, request, self.timeout)
        except grpc.RpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise PartnerUnavailable(f"{self.city} did not answer in time; retry later") from None
            raise PartnerRefused(f"{self.city} refused: {exc.details()}") from None

    def reserve(self, key: str, token: str) -> federation_pb2.ReserveResponse:
        req = federation_pb2.ReserveRequest(idempotency_key=key, redemption_token=token)
        reply: federation_pb2.ReserveResponse = self._call(self.stub.Reserve, req)
        return reply

    def commit(self, key: str, redemption_id: str) -> federation_pb2.CommitResponse:
        req = federation_pb2.CommitRequest(idempotency_key=key, redemption_id=redemption_id)
        reply: federation_pb2.CommitResponse = self._call(self.stub.Commit, req)
        return reply

    def cancel(self, key: str, redemption_id: str, reason: str) -> federation_pb2.CancelResponse:
        req = federation_pb2.CancelRequest(idempotency_key=key, redemption_id=redemption_id, reason=reason)
        reply: federation_pb2.CancelResponse = self._call(self.stub.Cancel, req)
        return reply

    def terms(self) -> federation_pb2.GetTermsResponse:
        reply: federation_pb2.GetTermsResponse = self._call(
            self.stub.GetTerms, federation_pb2.GetTermsRequest()
        )
        return reply

    def published_terms(self, max_age: float = 60.0) -> federation_pb2.GetTermsResponse:
        """The partner's terms, asked again at most every `max_age` seconds: they change
        only when its city file does, and a sale should not wait on them."""
        now = time.monotonic()
        if self._terms is None or now - self._terms[0] > max_age:
            self._terms = (now, self.terms())
        return self._terms[1]

    def close(self) -> None:
        self.channel.close()
