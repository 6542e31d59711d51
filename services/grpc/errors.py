"""One place that turns exceptions into gRPC statuses, and never leaks a trace."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.message import DecodeError
from pydantic import ValidationError

from aggregates.errors import DomainError, InvalidInput, NotFound, PreconditionFailed
from services.federation.partner import PartnerUnreachable
from services.grpc.auth import PermissionDenied, Unauthenticated

log = logging.getLogger("civfed.grpc")


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "request"
        return grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {err['msg']}"
    if isinstance(exc, InvalidInput):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    if isinstance(exc, NotFound):
        return grpc.StatusCode.NOT_FOUND, str(exc)
    if isinstance(exc, PreconditionFailed | DomainError):
        return grpc.StatusCode.FAILED_PRECONDITION, str(exc)
    if isinstance(exc, Unauthenticated):
        return grpc.StatusCode.UNAUTHENTICATED, str(exc)
    if isinstance(exc, PermissionDenied):
        return grpc.StatusCode.PERMISSION_DENIED, str(exc)
    if isinstance(exc, PartnerUnreachable):
        return grpc.StatusCode.UNAVAILABLE, str(exc)
    ref = uuid.uuid4().hex[:12]
    # The trace stays in the node's log; the caller gets a reference to quote.
    log.error("unexpected error (ref %s)", ref, exc_info=exc)
    return grpc.StatusCode.INTERNAL, f"internal error (ref {ref})"


class _Undecodable:
    """What the wrapped deserializer hands on for bytes that are not the method's message."""


UNDECODABLE = _Undecodable()


class ErrorInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Statuses for the exceptions of unary calls, and INVALID_ARGUMENT for undecodable bodies.

    grpc deserializes a request before calling the method, and answers a body that does
    not decode with INTERNAL. So the deserializer is wrapped to hand on a sentinel
    instead, and the wrapped method refuses it before the servicer sees it.
    """

    def intercept_service(self, continuation: Callable[[Any], Any], handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        refusal = f"request: not a valid {request_type(handler_call_details.method)} message"
        # grpc's method handlers are namedtuples: replace the deserializer and the behaviour.
        handler = handler._replace(request_deserializer=_tolerant(handler.request_deserializer))
        if handler.unary_unary is not None:
            return handler._replace(unary_unary=_guarded(handler.unary_unary, refusal))
        if handler.unary_stream is not None:
            return handler._replace(unary_stream=_decoded(handler.unary_stream, refusal))
        if handler.stream_unary is not None:
            return handler._replace(stream_unary=_each_decoded(handler.stream_unary, refusal))
        return handler._replace(stream_stream=_each_decoded(handler.stream_stream, refusal))


@functools.lru_cache(maxsize=256)
def request_type(method: str) -> str:
    """'/civfed.v1.FederationService/Reserve' -> 'civfed.v1.ReserveRequest'."""
    try:
        found = descriptor_pool.Default().FindMethodByName(method.lstrip("/").replace("/", "."))
    except KeyError:
        return "request"
    return str(found.input_type.full_name)


def _tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def tolerant(body: bytes) -> Any:
        try:
            return deserialize(body)
        except DecodeError:
            return UNDECODABLE

    return tolerant


def _guarded(inner: Callable[[Any, Any], Any], refusal: str) -> Callable[[Any, Any], Any]:
    def guarded(request: Any, context: grpc.ServicerContext) -> Any:
        if request is UNDECODABLE:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, refusal)
        try:
            return inner(request, context)
        except Exception as exc:
            code, message = status_for(exc)
            context.abort(code, message)

    return guarded


def _decoded(inner: Callable[[Any, Any], Any], refusal: str) -> Callable[[Any, Any], Any]:
    def decoded(request: Any, context: grpc.ServicerContext) -> Any:
        if request is UNDECODABLE:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, refusal)
        return inner(request, context)

    return decoded


def _each_decoded(inner: Callable[[Any, Any], Any], refusal: str) -> Callable[[Any, Any], Any]:
    """For streamed requests (server reflection): the first undecodable one ends the call."""

    def checked(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        for request in requests:
            if request is UNDECODABLE:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, refusal)
            yield request

    def each_decoded(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
        return inner(checked(requests, context), context)

    return each_decoded
