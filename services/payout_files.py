"""Bank details and SEPA credit transfer files (pain.001) for shop payouts.

IBANs are checked with schwifty (country, length and checksum); files are written by
sepaxml, which checks each one against the pain.001 schema it ships before handing it out.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from sepaxml import SepaTransfer
from sepaxml.validation import ValidationError, try_valid_xml
from text_unidecode import unidecode

from aggregates.errors import InvalidInput, PreconditionFailed

SCHEMA = "pain.001.001.03"


def check_iban(text: str) -> str:
    """The IBAN in its compact form, or InvalidInput (the refusal does not repeat it). Only
    an account in the SEPA zone: a SEPA credit transfer reaches no other."""
    try:
        iban = IBAN(text)
    except (SchwiftyException, ValueError):
        raise InvalidInput("iban", "not a valid IBAN (country, length or check digits)") from None
    if not iban.in_sepa_zone:
        raise InvalidInput("iban", "outside the SEPA zone, where a SEPA credit transfer cannot pay")
    return str(iban.compact)


def check_bic(text: str) -> str:
    try:
        return str(BIC(text).compact)
    except (SchwiftyException, ValueError):
        raise InvalidInput("bic", "not a valid BIC") from None


def check_account_holder(text: str) -> str:
    """The account holder's name, trimmed, or InvalidInput if a transfer could not carry it:
    sepaxml writes names in plain Latin letters, and a name of symbols alone (an emoji)
    would leave the file's name empty, which the schema refuses, stopping every shop's
    payout in the run."""
    name = text.strip()
    if not writable_name(name):
        raise InvalidInput(
            "account_holder", "the name of the account's holder, in letters a bank transfer carries"
        )
    return name


def writable_name(name: str) -> bool:
    return bool(unidecode(name).strip())


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
    message_id: str = "",
    created_at: dt.datetime | None = None,
) -> bytes:
    """A pain.001 file of `transfers` from the city's account, checked against the schema.
    With `message_id` (at most 35 characters) and `created_at`, the file's message id, its
    payment information id and creation time are those, so the same run's file is the same
    bytes every time it is written, and a bank refuses a second copy as a duplicate; without
    them, sepaxml's own, new for every file. No transfers: no file (b""), as the schema has
    no empty one."""
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
        out: bytes = sepa.export(validate=not message_id)
        if message_id:
            out = _fixed_ids(out, message_id, created_at or dt.datetime.now(dt.UTC))
            try_valid_xml(out, SCHEMA)
    except ValidationError as exc:
        cause = exc.__cause__ or exc
        raise PreconditionFailed(f"the payout file does not meet the {SCHEMA} schema: {cause}") from None
    return out


def _fixed_ids(out: bytes, message_id: str, created_at: dt.datetime) -> bytes:
    """sepaxml's random ids and clock time replaced by the given ones."""
    if not _ID.fullmatch(message_id):
        raise ValueError(f"a message id is 1 to 35 letters, digits or dashes, not {message_id!r}")
    ids = iter(range(1, 1_000_000))
    out = re.sub(rb"<MsgId>[^<]*</MsgId>", b"<MsgId>" + message_id.encode() + b"</MsgId>", out, count=1)
    created = created_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S").encode()
    out = re.sub(rb"<CreDtTm>[^<]*</CreDtTm>", b"<CreDtTm>" + created + b"</CreDtTm>", out, count=1)
    # One payment information block per execution date: numbered within the message.
    return re.sub(
        rb"<PmtInfId>[^<]*</PmtInfId>",
        lambda _: f"<PmtInfId>{message_id[:28]}-{next(ids)}</PmtInfId>".encode(),
        out,
    )


_ID = re.compile(r"[A-Za-z0-9-]{1,35}")
