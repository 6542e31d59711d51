"""Request validation for the source and claim services (pydantic, like services/grpc/requests.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from services.grpc.requests import Key, Text


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


SourceId = Annotated[str, Field(min_length=2, max_length=64)]
KeyId = Annotated[str, Field(min_length=1, max_length=64)]
Pem = Annotated[str, Field(min_length=1, max_length=2000)]
Reason = Annotated[str, Field(min_length=1, max_length=500)]
Kind = Annotated[str, Field(min_length=1, max_length=64)]

# A source delivers a day of claims in one call; more than this is refused whole.
MAX_CLAIMS_PER_CALL = 1000


class Bound(_Request):
    activity: Kind
    field: Annotated[str, Field(max_length=64)] = ""
    max_per_day: Annotated[int, Field(gt=0, le=10**12)]
    where: dict[Annotated[str, Field(max_length=64)], Text] = Field(default_factory=dict)


class RegisterSource(_Request):
    idempotency_key: Key
    source_id: SourceId
    name: Annotated[str, Field(min_length=1, max_length=200)]
    key_id: KeyId
    public_key_pem: Pem
    kinds: Annotated[list[Kind], Field(min_length=1, max_length=50)]
    bounds: Annotated[list[Bound], Field(max_length=100, default_factory=list)]
    reason: Reason


class RotateSourceKey(_Request):
    idempotency_key: Key
    source_id: SourceId
    key_id: KeyId
    public_key_pem: Pem
    reason: Reason


class RetireSource(_Request):
    idempotency_key: Key
    source_id: SourceId
    reason: Reason


class SubmitClaim(_Request):
    claim: Annotated[str, Field(min_length=1, max_length=4096)]


class SubmitClaims(_Request):
    # Each claim is checked on its own (services/claims.py), so one bad claim, an oversized
    # one included, is refused in its own result and never blocks the others.
    claims: Annotated[list[str], Field(max_length=MAX_CLAIMS_PER_CALL)]
