"""Counts and times every unary call a node answers, by method and status code.

The outermost interceptor, so the code it records is the one the caller receives: a domain
refusal reaches it as the status ErrorInterceptor chose (FAILED_PRECONDITION, NOT_FOUND,
INVALID_ARGUMENT...), an access refusal as UNAUTHENTICATED or PERMISSION_DENIED. Only
registered methods reach it, so the method label cannot grow with what callers send.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc

from services.metrics import NodeMetrics


class MetricsInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Records nothing until `metrics` is set, once the node's registry exists."""

    def __init__(self) -> None:
        self.metrics: NodeMetrics | None = None

    def intercept_service(self, continuation: Callable[[Any], Any], handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler  # streams (health watch, reflection) are not commands
        return handler._replace(unary_unary=self._timed(handler.unary_unary, handler_call_details.method))

    def _timed(self, inner: Callable[[Any, Any], Any], method: str) -> Callable[[Any, Any], Any]:
        def timed(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.perf_counter()
            failed = False
            try:
                return inner(request, context)
            except BaseException:
                failed = True
                raise
            finally:
                metrics = self.metrics
                if metrics is not None:
                    code = context.code()
                    # An exception that set no status reaches the caller as UNKNOWN.
                    name = code.name if code is not None else ("UNKNOWN" if failed else "OK")
                    metrics.calls.labels(method, name).inc()
                    metrics.latency.labels(method).observe(time.perf_counter() - started)

        return timed
