"""Calls with a deadline where only UNAVAILABLE is retried (services/grpc/partner_client.py).

Retrying is safe because every mutating call carries an idempotency key.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import grpc

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
