"""One place that turns exceptions into gRPC statuses, and never leaks a trace."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

import grpc
from pydantic import ValidationError

from aggregates.errors import DomainError, InvalidInput, NotFound, PreconditionFailed
from services.grpc.auth import PermissionDenied, Unauthenticated

log = logging.getLogger("civfed.grpc")


class PartnerRefused(PreconditionFailed):
    """A partner city answered with a refusal status."""


class PartnerUnavailable(Exception):
    """A partner city could not be reached in time; retrying with the same key is safe."""


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
    if isinstance(exc, PartnerUnavailable):
        return grpc.StatusCode.UNAVAILABLE, str(exc)
    ref = uuid.uuid4().hex[:12]
    # The trace stays in the node's log; the caller gets a reference to quote.
    log.error("unexpected error (ref %s)", ref, exc_info=exc)
    return grpc.StatusCode.INTERNAL, f"internal error (ref {ref})"


class ErrorInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    def intercept_service(self, continuation: Callable[[Any], Any], handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary

        def guarded(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                return inner(request, context)
            except Exception as exc:
                code, message = status_for(exc)
                context.abort(code, message)

        return grpc.unary_unary_rpc_method_handler(
            guarded,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
