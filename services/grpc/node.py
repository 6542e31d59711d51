"""One city node's state: its application, credentials, and both sides of redemption."""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from aggregates.credential import OwnerKind
from aggregates.redemption import Terms
from civfed.v1 import common_pb2
from projections.store import Store
from services.city import CityApplication
from services.federation.acceptor import Acceptor
from services.federation.clearing import Clearing
from services.federation.home import HomeRedemptions
from services.federation.ledger import RedemptionLedger
from services.federation.outcomes import count_outcomes
from services.federation.partner import Partner
from services.federation.sweep import sweep
from services.federation.vouchers import load_private_key, load_public_key
from services.finance import Rate, published_rates
from services.group_writer import GroupWriter
from services.grpc.access import Authenticator
from services.grpc.clearing_client import GrpcClearingPartner
from services.grpc.partner_client import GrpcPartner
from services.grpc.tls import channel_credentials
from services.identity.credentials import CredentialCheck, NewCredential
from services.identity.oidc import Jwks, StaffTokens
from services.metrics import NodeMetrics
from services.prizes import PrizeBook, sweep_claims
from services.settings.disclosure import policy_for
from services.settings.node import NodeSettings
from services.unit_of_work import Job

log = logging.getLogger("civfed.node")


def staff_tokens(settings: NodeSettings) -> StaffTokens | None:
    if not settings.CIVFED_OIDC_ISSUER:
        return None
    return StaffTokens(
        settings.CIVFED_OIDC_ISSUER,
        settings.CIVFED_OIDC_AUDIENCE,
        Jwks(settings.CIVFED_OIDC_JWKS),
        settings.CIVFED_OIDC_ROLES_CLAIM,
        settings.CIVFED_OIDC_LEEWAY_SECONDS,
    )


class CityNode:
    def __init__(
        self, app: CityApplication, settings: NodeSettings, metrics: NodeMetrics | None = None
    ) -> None:
        self.app = app
        self.settings = settings
        # Its own registry: several nodes in one process (tests) count separately.
        self.metrics = metrics if metrics is not None else NodeMetrics()
        self.metrics.batch_limit.set(settings.CIVFED_WRITE_BATCH)
        sagas = self.metrics.sagas
        app.saved_listeners.append(count_outcomes(lambda side, outcome: sagas.labels(side, outcome).inc()))
        # One writer at a time in this node: SQLite serialises writes anyway, and
        # contention retries would only burn CPU. Commands that queue up behind
        # the writer are saved together (group commit).
        self.lock = threading.Lock()
        self.writer = GroupWriter(
            app, self.lock, settings.CIVFED_WRITE_BATCH, on_batch=self.metrics.batch_size.observe
        )
        self.authenticator = Authenticator(
            staff_tokens(settings), CredentialCheck(app), settings.CIVFED_PARTNERS.keys()
        )
        self.home = HomeRedemptions(
            app,
            load_private_key(settings.CIVFED_SIGNING_KEY_FILE),
            dt.timedelta(seconds=settings.CIVFED_VOUCHER_TTL_SECONDS),
            dt.timedelta(seconds=settings.CIVFED_HOLD_SECONDS),
        )
        creds = channel_credentials(
            settings.CIVFED_TLS_CERT_FILE, settings.CIVFED_TLS_KEY_FILE, settings.CIVFED_TLS_CA_FILE
        )
        # The saga reaches each partner through the Partner port; here, over gRPC.
        self.partners: dict[str, Partner] = {
            city: GrpcPartner(city, p.address, creds, settings.CIVFED_CALL_TIMEOUT_SECONDS)
            for city, p in settings.CIVFED_PARTNERS.items()
        }
        keys = {city: load_public_key(p.public_key_file) for city, p in settings.CIVFED_PARTNERS.items()}
        # A sale is answered once the home commits; the saga's last step is saved after.
        self.acceptor = Acceptor(app, self.partners, keys, self.writer.execute, submit=self.writer.submit)
        self.ledger = RedemptionLedger()
        # Clearing with each partner: statements signed with the voucher key, the partner's
        # signature checked with the key its vouchers are checked with.
        self.clearing_partners = {
            city: GrpcClearingPartner(city, p.address, creds, max(30.0, settings.CIVFED_CALL_TIMEOUT_SECONDS))
            for city, p in settings.CIVFED_PARTNERS.items()
        }
        self.clearing = Clearing(
            app, self.home.signing_key, keys, self.clearing_partners, self.writer.execute
        )
        self.prizes = PrizeBook()
        # Where published figures (the equilibrium report) are drawn once and kept, and under
        # which terms: a new connection per call, as calls come on any worker thread.
        # `start_node` gives the read-model store the dashboard shares, so both show one
        # draw; a node built without it keeps its draws in a private file.
        self.private_figures = Path(tempfile.mkdtemp(prefix="civfed-figures-"))
        self.figures: Callable[[], Store] = lambda: Store(
            f"sqlite:///{self.private_figures / 'figures.sqlite'}"
        )
        self.disclosure = policy_for(app.city.config, [app.city.config])
        # City -> its published euro value, for the finance report's partner positions
        # (`start_node` gives every city in the cities folder).
        self.euro_rates: dict[str, Rate] = published_rates([app.city.config])

    def execute(self, cmd: Job) -> dict[str, Any]:
        return self.writer.execute(cmd)

    def first_credential(self, kind: OwnerKind, owner_id: UUID, issued_by: str) -> str:
        """The first credential of a new wallet or merchant, or "" if it already has one."""
        new = NewCredential.make(kind, owner_id)
        label = "first credential" if kind == "holder" else "first till"
        cmd = self.app.issue_credential(
            f"first-credential:{new.credential_id}",
            new,
            label,
            self.settings.CIVFED_CREDENTIAL_DAYS,
            issued_by,
            first_only=True,
        )
        return new.token if self.execute(cmd)["issued"] else ""

    def partner_terms(self, acceptor: str) -> Terms | None:
        """What `acceptor`'s shops give for this city's tokens, from its own published terms."""
        partner = self.partners.get(acceptor)
        # No call to a city this one has no agreement with: the command refuses it anyway.
        if partner is None or acceptor not in self.app.city.config.federation.redeemable_at:
            return None
        return partner.published_terms().accepts.get(self.app.key)

    def amount(self, units: int) -> common_pb2.Amount:
        return common_pb2.Amount(units=units, currency=self.app.city.config.currency.name)

    def sweep(self) -> None:
        """Release lapsed holds (home side), move unfinished sagas on (accepting side), and
        release prize claims that expired."""
        # A rule change approved at another replica of this city reaches this one here.
        self.app.refresh_rulebook()
        # A saga just started may still be waiting on its shop's call: leave it be.
        settle = dt.timedelta(seconds=4 * self.settings.CIVFED_CALL_TIMEOUT_SECONDS)
        sweep(self.home, self.acceptor, self.ledger, self.execute, settle)
        # Prize claims not handed over in time give their hold and their unit back.
        sweep_claims(self.app, self.prizes, self.app.clock(), lambda cmd: self.execute(self.app.job(cmd)))

    def close(self) -> None:
        self.writer.close()  # what it queued is saved before the store closes
        for partner in self.partners.values():
            partner.close()
        for clearing in self.clearing_partners.values():
            clearing.close()
        shutil.rmtree(self.private_figures, ignore_errors=True)
        self.app.close()
