"""Request validation for the clearing services (pydantic, like services/grpc/requests.py)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aggregates.clearing import Figures as DomainFigures
from aggregates.clearing import Line as DomainLine

CityKey = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,30}$")]
Period = Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
Count = Annotated[int, Field(ge=0, le=10**15)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Figures(_Request):
    city_a: CityKey
    city_b: CityKey
    period: Period
    owed_by_a: Count
    owed_by_b: Count
    redemptions: Count
    digest: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]

    def domain(self) -> DomainFigures:
        owed = (self.owed_by_a, self.owed_by_b)
        return DomainFigures(self.city_a, self.city_b, self.period, *owed, self.redemptions, self.digest)


class Line(_Request):
    redemption_id: UUID
    home_city: CityKey
    amount: Annotated[int, Field(gt=0, le=10**12)]
    recorded_at: dt.datetime | None = None

    @field_validator("recorded_at", mode="before")
    @classmethod
    def _datetime_or_none(cls, value: Any) -> Any:
        return None if value == "" else value

    def domain(self) -> DomainLine:
        return DomainLine(str(self.redemption_id), self.home_city, self.amount, self.recorded_at)


class ProposeClearing(_Request):
    figures: Figures
    # Base64 on the way in (JSON form of proto bytes): an Ed25519 signature is 64 bytes.
    signature: bytes
    lines: list[Line] = []

    @field_validator("signature", mode="before")
    @classmethod
    def _signature(cls, value: Any) -> bytes:
        try:
            raw = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 64:
            raise ValueError("an Ed25519 signature (64 bytes) is needed")
        return raw


class RunClearing(_Request):
    partner_city: CityKey
    period: Period
