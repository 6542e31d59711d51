"""How domain values that live in aggregate state are written into snapshots."""

from __future__ import annotations

import datetime as dt
from typing import Any

from eventsourcing.persistence import Transcoding

from aggregates.depreciation import Lot


class LotAsDict(Transcoding):
    """A depreciating wallet's lot (value and the days it is worth something), so a
    snapshot of a Zwolle wallet can be stored like any other."""

    type = Lot
    name = "civfed_lot"

    def encode(self, obj: Lot) -> dict[str, Any]:
        return {"value": obj.value, "base_on": obj.base_on.isoformat(), "ends_on": obj.ends_on.isoformat()}

    def decode(self, data: dict[str, Any]) -> Lot:
        return Lot(
            int(data["value"]),
            dt.date.fromisoformat(data["base_on"]),
            dt.date.fromisoformat(data["ends_on"]),
        )
