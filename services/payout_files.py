"""Bank details and SEPA credit transfer files (pain.001) for shop payouts.

IBANs are checked with schwifty (country, length and checksum); files are written by
sepaxml, which checks each one against the pain.001 schema it ships before handing it out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from sepaxml import SepaTransfer
from sepaxml.validation import ValidationError

from aggregates.errors import InvalidInput, PreconditionFailed

SCHEMA = "pain.001.001.03"


def check_iban(text: str) -> str:
    """The IBAN in its compact form, or InvalidInput (the refusal does not repeat it)."""
    try:
        return str(IBAN(text).compact)
    except (SchwiftyException, ValueError):
        raise InvalidInput("iban", "not a valid IBAN (country, length or check digits)") from None


def check_bic(text: str) -> str:
    try:
        return str(BIC(text).compact)
    except (SchwiftyException, ValueError):
        raise InvalidInput("bic", "not a valid BIC") from None


def valid_iban(text: str) -> bool:
    try:
        check_iban(text)
    except InvalidInput:
        return False
    return True


@dataclass(frozen=True)
class Transfer:
    """One credit transfer: a shop's payout, in euro cents."""

    name: str
    iban: str
    bic: str
    cents: int
    description: str
    end_to_end_id: str


def credit_transfer_file(
    debtor_name: str,
    debtor_iban: str,
    debtor_bic: str,
    execution_date: dt.date,
    transfers: list[Transfer],
) -> bytes:
    """A pain.001 file of `transfers` from the city's account, checked against the schema.
    The message id is sepaxml's own, new for every file, as banks expect. No transfers: no
    file (b""), as the schema has no empty one."""
    if not transfers:
        return b""
    config = {"name": debtor_name, "IBAN": debtor_iban, "batch": True, "currency": "EUR"}
    if debtor_bic:
        config["BIC"] = debtor_bic
    sepa = SepaTransfer(config, schema=SCHEMA, clean=True)
    for t in transfers:
        payment = {
            "name": t.name,
            "IBAN": t.iban,
            "amount": t.cents,
            "execution_date": execution_date,
            "description": t.description,
            "endtoend_id": t.end_to_end_id[:35],
        }
        if t.bic:
            payment["BIC"] = t.bic
        sepa.add_payment(payment)
    try:
        out: bytes = sepa.export(validate=True)
    except ValidationError as exc:
        cause = exc.__cause__ or exc
        raise PreconditionFailed(f"the payout file does not meet the {SCHEMA} schema: {cause}") from None
    return out
