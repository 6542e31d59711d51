"""Federation settlement: what each home city owes each acceptor city, and net positions.

Two public events make a cross-city redemption's claim:

- the home city's `Wallet.HoldBurned(hold_id, partner_city, redemption_id)`:
  the held tokens left the wallet for a partner's shop. Its amount is the hold's
  (looked up from `HoldPlaced`), in the home city's units. This is the claim
  "home owes acceptor", counted once, with the wallet behind it for k-anonymity.
- the accepting city's `ForeignRedemption.Committed(home_city, home_amount,
  credit)`: what its shop was credited for those tokens, in its own units.

A pair's net position is kept in each city's own currency, as the city node's
settlement call reports it: what its shops were credited for the partner's
tokens, minus its own tokens redeemed at the partner's shops.
"""

from __future__ import annotations

from collections.abc import Callable

from civfed.v1 import events_pb2
from projections.batch import Batch
from projections.erasure import ERASED, rename
from projections.lookups import hold
from projections.model import is_hold_consumed, partner_city
from projections.store import Tx


class Settlement:
    name = "settlement"
    tables = ("rm_settlement", "rm_settlement_people", "rm_settlement_credits")
    ddl = (
        "CREATE TABLE IF NOT EXISTS rm_settlement (debtor TEXT NOT NULL, creditor TEXT NOT NULL, "
        "amount BIGINT NOT NULL, redemptions BIGINT NOT NULL, PRIMARY KEY (debtor, creditor))",
        "CREATE TABLE IF NOT EXISTS rm_settlement_people (debtor TEXT NOT NULL, creditor TEXT NOT NULL, "
        "wallet_id TEXT NOT NULL, PRIMARY KEY (debtor, creditor, wallet_id))",
        # Credited by the creditor (acceptor) to its shops, in the creditor's units.
        "CREATE TABLE IF NOT EXISTS rm_settlement_credits (debtor TEXT NOT NULL, creditor TEXT NOT NULL, "
        "credited BIGINT NOT NULL, redemptions BIGINT NOT NULL, PRIMARY KEY (debtor, creditor))",
    )

    def apply(self, tx: Tx, e: events_pb2.Event) -> None:
        if e.type == ERASED:
            rename(tx, "rm_settlement_people", "debtor", e)  # the debtor is the wallet's city
            return
        credit, claim = _settles(e, lambda city, hold_id: hold(tx, city, hold_id))
        if credit is not None:
            tx.execute(_CREDIT, (*credit[:2], credit[2], 1))
        if claim is not None:
            debtor, creditor, wallet, amount = claim
            tx.execute(_CLAIM, (debtor, creditor, amount, 1))
            tx.execute(_PERSON, (debtor, creditor, wallet))

    def apply_batch(self, tx: Tx, batch: Batch) -> None:
        credits: dict[tuple[str, str], list[int]] = {}
        claims: dict[tuple[str, str], list[int]] = {}
        people: dict[tuple[str, str, str], None] = {}
        for e in batch.events:
            credit, claim = _settles(e, batch.hold)
            if credit is not None:
                total = credits.setdefault(credit[:2], [0, 0])
                total[0] += credit[2]
                total[1] += 1
            if claim is not None:
                debtor, creditor, wallet, amount = claim
                total = claims.setdefault((debtor, creditor), [0, 0])
                total[0] += amount
                total[1] += 1
                people[(debtor, creditor, wallet)] = None
        tx.many(_CREDIT, [(*pair, value, n) for pair, (value, n) in credits.items()])
        tx.many(_CLAIM, [(*pair, value, n) for pair, (value, n) in claims.items()])
        tx.many(_PERSON, list(people))


_CREDIT = (
    "INSERT INTO rm_settlement_credits VALUES (?, ?, ?, ?) ON CONFLICT (debtor, creditor) "
    "DO UPDATE SET credited = rm_settlement_credits.credited + excluded.credited, "
    "redemptions = rm_settlement_credits.redemptions + excluded.redemptions"
)
_CLAIM = (
    "INSERT INTO rm_settlement VALUES (?, ?, ?, ?) ON CONFLICT (debtor, creditor) DO UPDATE SET "
    "amount = rm_settlement.amount + excluded.amount, "
    "redemptions = rm_settlement.redemptions + excluded.redemptions"
)
_PERSON = "INSERT INTO rm_settlement_people VALUES (?, ?, ?) ON CONFLICT DO NOTHING"


def _settles(
    e: events_pb2.Event, held_by: Callable[[str, str], tuple[str, int]]
) -> tuple[tuple[str, str, int] | None, tuple[str, str, str, int] | None]:
    """What the event adds: the acceptor's credit (debtor, creditor, credited), and the home
    city's claim (debtor, creditor, wallet, amount); `held_by` finds a hold."""
    committed = e.type == "ForeignRedemption.Committed"
    if not committed and not is_hold_consumed(e.type):
        return None, None  # before partner_city: most events are neither
    partner = partner_city(e)
    if partner is None:
        return None, None
    if committed:
        return (partner, e.city, e.payload.amounts["credit"]), None
    wallet, amount = held_by(e.city, e.payload.refs["hold_id"])
    return None, (e.city, partner, wallet, amount)


def pairs(tx: Tx) -> list[tuple[str, str, int, int, int]]:
    """(debtor, creditor, amount in the debtor's units, redemptions, distinct people) for every
    pair with redemptions."""
    rows = tx.all(
        "SELECT s.debtor, s.creditor, s.amount, s.redemptions, COUNT(p.wallet_id) FROM rm_settlement s "
        "LEFT JOIN rm_settlement_people p ON p.debtor = s.debtor AND p.creditor = s.creditor "
        "GROUP BY s.debtor, s.creditor, s.amount, s.redemptions ORDER BY s.debtor, s.creditor"
    )
    return [(str(d), str(c), int(a), int(r), int(n)) for d, c, a, r, n in rows]


def matrix(tx: Tx) -> list[tuple[str, str, int, int]]:
    """(debtor, creditor, amount in the debtor's units, distinct people) for every pair with redemptions."""
    return [(d, c, a, n) for d, c, a, _, n in pairs(tx)]


def net_positions(tx: Tx) -> dict[tuple[str, str], tuple[int, int]]:
    """(city, partner) -> (net in the city's units, fewest people behind either direction).

    Net = what the city's shops were credited for the partner's tokens minus the
    city's own tokens redeemed at the partner's shops; above zero the partner owes.
    """
    owes = {(d, c): (a, n) for d, c, a, n in matrix(tx)}
    credited = {
        (str(d), str(c)): int(v)
        for d, c, v in tx.all("SELECT debtor, creditor, credited FROM rm_settlement_credits")
    }
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for debtor, creditor in {*owes, *credited}:
        for city, partner in ((debtor, creditor), (creditor, debtor)):
            if (city, partner) in out:
                continue
            payable, payers = owes.get((city, partner), (0, 0))
            value = credited.get((partner, city), 0)
            # The people behind the partner's claim are the partner's wallets.
            redeemers = owes.get((partner, city), (0, 0))[1]
            directions = [payers] if (city, partner) in owes else []
            if (partner, city) in owes or (partner, city) in credited:
                directions.append(redeemers)
            out[(city, partner)] = (value - payable, min(directions))
    return out
