"""Request validation for the cashback service (pydantic, like services/grpc/requests.py)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from services.grpc.requests import Key


class ReportPurchase(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    idempotency_key: Key
    merchant_id: UUID
    # A shop's receipt number: printable, no spaces, as short as a till prints it.
    receipt_id: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:/#-]+$")]
    wallet_id: UUID
    amount_cents: Annotated[int, Field(gt=0, le=100_000_000)]
    date: dt.date
