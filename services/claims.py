"""Activities attested by registered sources: signed claims, verified, then credited.

A claim is a compact JWS signed with the source's Ed25519 key (EdDSA; `alg` "Ed25519", or
the older "EdDSA"), its header naming the key (`kid`), its payload:

    {"source": "wien-mobility", "claim_id": "trip-2026-12-01-0001",
     "wallet": "<the wallet's pseudonymous id>", "activity": "trip",
     "fields": {"mode": "bike", "distance_m": 4200}, "date": "2026-12-01"}

The signature is the source's authentication: the node verifies it against the key the
source registered (an unknown, forged, retired or rotated-out key is refused) before the
claim becomes a command. The command then checks, inside the write, that the source may
attest the kind, the date (not ahead, not older than the city's window), the source's
bounds over the wallet's day, and the rule; its idempotency key is the source's claim id,
so the same claim again returns the stored result and another claim under that id is
refused. The award event names the source and the claim id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Annotated, Any, Protocol
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey
from joserfc.util import urlsafe_b64decode
from nacl.exceptions import CryptoError
from nacl.signing import VerifyKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aggregates.errors import (
    DomainError,
    IdempotencyConflict,
    InvalidInput,
    NotDeskActivity,
    NotFound,
    PreconditionFailed,
    SourceRetired,
)
from aggregates.rulebook import Rulebook
from aggregates.source import Bound, DailyTally, SourceRegistry, check_date
from services import commands as c
from services.cashback import check_not_purchase
from services.identity.principals import Unauthenticated
from services.settings.cities import City
from services.unit_of_work import Job, UnitOfWork

ALGORITHMS = ["Ed25519", "EdDSA"]
SIGNING_ALGORITHM = "Ed25519"
MAX_CLAIM_BYTES = 4096
# Built once: joserfc would build one for every claim from ALGORITHMS.
_REGISTRY = jws.JWSRegistry(algorithms=ALGORITHMS)


class ClaimNotAuthentic(Unauthenticated):
    """A claim whose signature does not verify under a live key of a registered source."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ClaimIdReused(PreconditionFailed):
    """A source's claim id already used for a different claim."""

    reason = "claim_id_reused"


Value = Annotated[str, Field(max_length=200)] | int


class ClaimPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)
    source: Annotated[str, Field(min_length=2, max_length=64)]
    claim_id: Annotated[str, Field(min_length=1, max_length=200)]
    wallet: UUID
    activity: Annotated[str, Field(min_length=1, max_length=64)]
    fields: Annotated[dict[str, Value], Field(max_length=20)] = {}
    date: dt.date


# -- the source's side: signing --------------------------------------------------------------


def new_source_key() -> OKPKey:
    return OKPKey.generate_key("Ed25519", private=True)


def public_pem(key: OKPKey) -> str:
    return key.as_pem(private=False).decode()


def sign_claim(
    key: OKPKey,
    key_id: str,
    source: str,
    claim_id: str,
    wallet: str | UUID,
    activity: str,
    fields: dict[str, Any],
    date: dt.date | str,
) -> str:
    """A claim as a source makes it: a compact JWS over its JSON payload."""
    payload = {
        "source": source,
        "claim_id": claim_id,
        "wallet": str(wallet),
        "activity": activity,
        "fields": fields,
        "date": date if isinstance(date, str) else date.isoformat(),
    }
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return jws.serialize_compact({"alg": SIGNING_ALGORITHM, "kid": key_id}, body, key, algorithms=ALGORITHMS)


# -- the node's side: verifying ---------------------------------------------------------------


def verify_claim(registry: SourceRegistry, token: str) -> c.SubmitClaim:
    """The claim as a command, once its signature verifies under the source's current key."""
    if len(token) > MAX_CLAIM_BYTES or token.count(".") != 2:
        raise InvalidInput("claim", "not a compact JWS")
    try:
        unverified = jws.extract_compact(token.encode())
        header = unverified.headers()
        payload = ClaimPayload.model_validate(json.loads(unverified.payload))
    except (JoseError, ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, ValidationError):
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "claim"
            raise InvalidInput(f"claim.{where}", err["msg"]) from None
        raise InvalidInput("claim", "not a compact JWS") from None
    if header.get("alg") not in ALGORITHMS:
        raise ClaimNotAuthentic("bad_signature", f"claims are signed with {SIGNING_ALGORITHM} (EdDSA)")
    key_id = str(header.get("kid") or "")
    try:
        pem = registry.key_for(payload.source, key_id)
    except NotFound as exc:
        reason = "unknown_source" if payload.source not in registry.sources else "unknown_key"
        raise ClaimNotAuthentic(reason, str(exc)) from None
    except SourceRetired as exc:
        raise ClaimNotAuthentic("retired_key", str(exc)) from None
    try:
        # The token parsed above is verified as it is, not parsed again.
        valid = _verify(unverified, pem)
    except (JoseError, ValueError):
        valid = False
    if not valid:
        raise ClaimNotAuthentic(
            "bad_signature", f"the signature does not verify under key {key_id!r} of {payload.source!r}"
        )
    if "date" in payload.fields:
        raise InvalidInput("claim.fields.date", "the date is the claim's own `date`")
    return c.SubmitClaim(
        claim_key(payload.source, payload.claim_id),
        payload.source,
        payload.claim_id,
        payload.wallet,
        payload.activity,
        dict(payload.fields),
        payload.date.isoformat(),
    )


def _verify(unverified: jws.CompactSignature, pem: str) -> bool:
    """The claim's signature checked under the registered key. An Ed25519 key, as every
    source's is, is checked with libsodium, a few times faster than through joserfc,
    once the header has passed joserfc's checks as it would there; any other key goes
    through joserfc as it is."""
    fast = _sodium_key(pem)
    if fast is None:
        return jws.validate_compact(unverified, _public_key(pem), registry=_REGISTRY)
    _REGISTRY.check_header(unverified.headers())
    segments = unverified.segments
    try:
        fast.verify(segments["header"] + b"." + segments["payload"], urlsafe_b64decode(segments["signature"]))
    except (CryptoError, TypeError, ValueError):
        return False
    return True


@lru_cache(maxsize=256)
def _sodium_key(pem: str) -> VerifyKey | None:
    """A registered Ed25519 key, for libsodium; None for a key of any other kind."""
    raw = _public_key(pem).public_key
    if not isinstance(raw, Ed25519PublicKey):
        return None
    return VerifyKey(raw.public_bytes(Encoding.Raw, PublicFormat.Raw))


@lru_cache(maxsize=256)
def _public_key(pem: str) -> OKPKey:
    """A registered key, parsed once: a batch of claims is signed under one or two keys.
    Keyed by the PEM itself, so a rotated key is a new entry, never a stale one."""
    return OKPKey.import_key(pem)


def claim_key(source: str, claim_id: str) -> str:
    """Claims are keyed by their source's claim id, never by who delivered them. The key is
    stored in the clear with its receipt, so it holds a digest of the claim id: the id itself
    (a trip's reference at the source) is kept only in sealed fields, erased with the person."""
    digest = hashlib.sha256(claim_id.encode()).hexdigest()[:40]
    return f"claim:{source}:{digest}"


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def reason_code(exc: BaseException) -> str:
    """A short, stable code for a refusal: the reason a claim error names, else the error's
    type in snake case (`over_bound`, `stale_claim`, `wallet_closed`, ...)."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str):
        return reason
    if isinstance(exc, InvalidInput):
        return "invalid_" + re.sub(r"[^a-z0-9]+", "_", exc.field.split(".")[-1].lower())
    if isinstance(exc, ValidationError):
        return "invalid_claim"
    return _CAMEL.sub("_", type(exc).__name__).lower()


# -- the city's side: commands ----------------------------------------------------------------


class CityLike(Protocol):
    city: City
    key: str
    rulebook: Rulebook

    def clock(self) -> dt.datetime: ...

    def credit_activity(
        self,
        uow: UnitOfWork,
        wallet_id: UUID,
        activity: str,
        fields: dict[str, Any],
        activity_id: str,
        waive_limits: bool = False,
        source: str = "",
        claim_id: str = "",
    ) -> dict[str, Any]: ...

    def job(self, command: c.Command | Job) -> Job: ...

    @property
    def repository(self) -> Any: ...


@dataclass(frozen=True)
class SourceView:
    source_id: str
    name: str
    key_id: str
    public_key: str
    kinds: list[str]
    bounds: list[Bound]
    active: bool
    retired_key_ids: list[str]


class ClaimCommands:
    """Mixed into the city application: sources' registration and the claims they sign."""

    def claim_handlers(self: CityLike) -> dict[type[c.Command], Any]:
        return {
            c.RegisterSource: partial(ClaimCommands._register_source, self),
            c.RotateSourceKey: partial(ClaimCommands._rotate_source_key, self),
            c.RetireSource: partial(ClaimCommands._retire_source, self),
            c.SubmitClaim: partial(ClaimCommands._submit_claim, self),
        }

    # -- reads --------------------------------------------------------------------------
    def source_registry(self: CityLike) -> SourceRegistry:
        found = UnitOfWork(self).find(SourceRegistry.create_id(self.key), SourceRegistry)
        return found if found is not None else SourceRegistry(self.key)

    def sources(self: CityLike) -> list[SourceView]:
        registry = ClaimCommands.source_registry(self)
        return [
            SourceView(
                s.source_id,
                s.name,
                s.key_id,
                s.public_key,
                list(s.kinds),
                list(s.bounds),
                s.active,
                sorted(s.retired_keys),
            )
            for s in registry.sources.values()
        ]

    def verify_claim(self: CityLike, token: str) -> c.SubmitClaim:
        return verify_claim(ClaimCommands.source_registry(self), token)

    def verify_claim_with(self, registry: SourceRegistry, token: str) -> c.SubmitClaim:
        """For a batch: the registry read once, every claim verified against it."""
        return verify_claim(registry, token)

    # -- handlers -------------------------------------------------------------------------
    def _registry(self: CityLike, uow: UnitOfWork) -> SourceRegistry:
        registry = uow.find(SourceRegistry.create_id(self.key), SourceRegistry)
        if registry is None:
            registry = SourceRegistry(self.key)
            uow.add(registry)
        return registry

    def _register_source(self: CityLike, cmd: c.RegisterSource, uow: UnitOfWork) -> dict[str, Any]:
        try:
            OKPKey.import_key(cmd.public_key)
        except (JoseError, ValueError, TypeError):
            raise InvalidInput("public_key", "an Ed25519 public key in PEM form") from None
        known = {spec.activity for spec in self.city.rules}
        for kind in cmd.kinds:
            if kind not in known:
                raise InvalidInput("kinds", f"no {self.city.config.name} rule rewards {kind!r}")
            check_not_purchase(self.rulebook, kind, "kinds")
        try:
            bounds = [Bound.of(b) for b in cmd.bounds]
        except (AttributeError, KeyError, TypeError, ValueError):
            raise InvalidInput("bounds", "each bound names an activity and a max_per_day") from None
        registry = ClaimCommands._registry(self, uow)
        registry.register(
            cmd.source_id,
            cmd.source_name,
            cmd.key_id,
            cmd.public_key,
            cmd.kinds,
            bounds,
            cmd.registered_by,
            cmd.reason,
        )
        return {"source_id": cmd.source_id, "key_id": cmd.key_id}

    def _rotate_source_key(self: CityLike, cmd: c.RotateSourceKey, uow: UnitOfWork) -> dict[str, Any]:
        try:
            OKPKey.import_key(cmd.public_key)
        except (JoseError, ValueError, TypeError):
            raise InvalidInput("public_key", "an Ed25519 public key in PEM form") from None
        registry = ClaimCommands._registry(self, uow)
        registry.rotate_key(cmd.source_id, cmd.key_id, cmd.public_key, cmd.rotated_by, cmd.reason)
        return {"source_id": cmd.source_id, "key_id": cmd.key_id}

    def _retire_source(self: CityLike, cmd: c.RetireSource, uow: UnitOfWork) -> dict[str, Any]:
        registry = ClaimCommands._registry(self, uow)
        registry.retire(cmd.source_id, cmd.retired_by, cmd.reason)
        return {"source_id": cmd.source_id, "retired": True}

    def _submit_claim(self: CityLike, cmd: c.SubmitClaim, uow: UnitOfWork) -> dict[str, Any]:
        registry = ClaimCommands._registry(self, uow)
        source = registry.check_attests(cmd.source_id, cmd.activity)
        check_not_purchase(self.rulebook, cmd.activity, "claim.activity")
        try:
            date = dt.date.fromisoformat(cmd.date)
        except ValueError:
            raise InvalidInput("date", "a calendar date, e.g. 2026-12-01") from None
        check_date(date, self.clock().date(), self.city.config.claims.max_age_days)
        fields = {**cmd.fields, "date": cmd.date}
        tally_id = DailyTally.create_id(self.key, cmd.wallet_id, date.isoformat(), cmd.activity)
        tally = uow.find(tally_id, DailyTally)
        fresh = tally is None
        if tally is None:
            tally = DailyTally(self.key, cmd.wallet_id, date.isoformat(), cmd.activity)
        adds = tally.check_within(source.bounds_for(cmd.activity), cmd.fields)
        award = self.credit_activity(
            uow,
            cmd.wallet_id,
            cmd.activity,
            fields,
            f"{cmd.source_id}:{cmd.claim_id}",
            source=f"source:{cmd.source_id}",
            claim_id=cmd.claim_id,
        )
        tally.add(adds)
        if fresh:
            uow.add(tally)
        return {**award, "source": cmd.source_id, "claim_id": cmd.claim_id}


def desk_check(city: City, activity: str) -> None:
    """Staff at a desk record only the kinds the city file lists as desk activities."""
    desk = city.config.claims.desk_activities
    if desk is not None and activity not in desk:
        raise NotDeskActivity(
            f"{activity!r} is not recorded at a desk in {city.config.name}; "
            "it reaches the ledger only as a claim signed by a registered source"
        )


def refused_claim(exc: BaseException) -> DomainError | BaseException:
    """A reused claim id reads as such, not as a reused idempotency key."""
    if isinstance(exc, IdempotencyConflict):
        return ClaimIdReused("this source already used the claim id for a different claim")
    return exc
