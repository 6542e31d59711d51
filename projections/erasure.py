"""What the read models do when a wallet is erased: forget its pseudonym, keep its amounts.

`Wallet.Erased` names the wallet by the pseudonym its erasure recorded. Every read
model replaces that pseudonym, wherever it holds it, with one fresh random token for
this erasure (drawn by the projector, `with_token`), in the same transaction as the
position: distinct-people counts and every total stay exact, and no row carries the
pseudonym any longer. The token is random, so nothing maps it back, not even a
rebuild (which draws another).
"""

from __future__ import annotations

import secrets

from civfed.v1 import events_pb2
from projections.store import Tx

ERASED = "Wallet.Erased"
# The ref the projector adds to an erasure before the read models see it. Never published.
TOKEN = "erasure_token"


def with_token(event: events_pb2.Event) -> events_pb2.Event:
    """A copy of an erasure carrying its fresh random token."""
    out = events_pb2.Event()
    out.CopyFrom(event)
    out.payload.refs[TOKEN] = secrets.token_hex(32)
    return out


def rekey(tx: Tx, table: str, id_column: str, e: events_pb2.Event) -> None:
    """Give each of the erased wallet's rows in `table` a random `id_column` (a hold's or an
    appeal's id, which its earlier messages carry), before `rename` replaces the wallet.

    Nothing refers to those ids after the erasure: a wallet's events are ordered, its
    erasure comes last, and its holds were settled and its appeals closed by then."""
    if not e.aggregate_id:
        return
    where = f"FROM {table} WHERE city = ? AND wallet_id = ?"
    for (old,) in tx.all(f"SELECT {id_column} {where}", (e.city, e.aggregate_id)):
        tx.execute(
            f"UPDATE {table} SET {id_column} = ? WHERE city = ? AND {id_column} = ?",
            (secrets.token_hex(16), e.city, old),
        )


def rename(tx: Tx, table: str, city_column: str, e: events_pb2.Event) -> None:
    """Replace the erased pseudonym in `table`'s wallet_id column with the erasure's token."""
    if not e.aggregate_id:
        return  # an erasure with no recorded name has nothing to find
    tx.execute(
        f"UPDATE {table} SET wallet_id = ? WHERE {city_column} = ? AND wallet_id = ?",
        (e.payload.refs[TOKEN], e.city, e.aggregate_id),
    )
