"""After a restore: erase again every wallet the erasure journal names.

A backup of the key store taken before an erasure still holds that person's key;
restored, it would make their history readable again. The journal, kept apart
(services/privacy/journal.py), remembers the erasure. `civfed erasures reapply`
destroys those keys again and records the erasure on a restored wallet that lacks it;
run twice, it changes nothing the second time. Until it has run, a node refuses to serve.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from aggregates.wallet import Wallet
from services.city import CityApplication
from services.commands import EraseWallet
from services.settings.errors import ConfigError

COMMAND = "civfed erasures reapply"


class ErasedKeysRestored(ConfigError):
    """The key store holds a key the erasure journal says was destroyed."""


def restored_keys(app: CityApplication) -> list[UUID]:
    """Journalled wallets whose key the key store holds again."""
    keys = app.keys
    if keys is None or keys.journal is None:
        return []
    return keys.holding_keys_of(keys.journal.erased())


def refuse_restored_keys(app: CityApplication) -> None:
    """Stop start-up, naming the command, while an erased person's key is back."""
    found = restored_keys(app)
    if found:
        raise ErasedKeysRestored(
            f"the key store of {app.key} holds the keys of {len(found)} wallet(s) that the erasure "
            "journal says were erased (a key store restored from an older backup?); "
            f"run `{COMMAND} --city {app.key}` before serving"
        )


def _marked_erased(app: CityApplication, wallet_id: UUID) -> bool | None:
    """Whether the store records the wallet as erased; None if the store lacks the wallet."""
    try:
        found = app.repository.get(wallet_id)
    except AggregateNotFoundError:
        return None
    return bool(isinstance(found, Wallet) and found.erased)


def reapply(app: CityApplication) -> dict[str, Any]:
    """Erase again every journalled wallet: record the erasure where the restored store lacks
    it, then destroy the key (again, harmlessly, if it is gone)."""
    keys = app.keys
    if keys is None or keys.journal is None:
        return {"city": app.key, "journalled": 0, "keys_destroyed": 0, "erasures_recorded": 0}
    journalled = keys.journal.erased()
    recorded = 0
    for wallet_id in journalled:
        if _marked_erased(app, wallet_id) is False:
            reason = "erasure re-applied after a restore"
            app.execute(EraseWallet(f"erasure-reapply:{wallet_id}", wallet_id, reason))
            recorded += 1
    destroyed = keys.erase(journalled)
    return {
        "city": app.key,
        "journalled": len(journalled),
        "keys_destroyed": destroyed,
        "erasures_recorded": recorded,
    }
