"""Settings for one city node (`civfed serve`), from the environment.

A missing or invalid setting stops start-up with a message naming it.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, FilePath, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.settings.errors import ConfigError, describe


class PartnerNode(BaseModel):
    """Where a partner city's node listens, and the key its vouchers are signed with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str = Field(pattern=r"^[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$")
    public_key_file: FilePath


class NodeSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True)

    CIVFED_CITY: str = Field(pattern=r"^[a-z][a-z0-9_]{1,30}$")
    CIVFED_GRPC_HOST: str = "127.0.0.1"
    # 0 on either port binds one the kernel picks (tests, several nodes on one host):
    # `civfed serve --port-file` and its start-up line say which.
    CIVFED_GRPC_PORT: int = Field(default=50051, ge=0, le=65535)
    # TLS without client certificates, for residents' apps, shop tills and staff, who bring
    # bearer credentials; partner cities use CIVFED_GRPC_PORT with mutual TLS.
    CIVFED_PUBLIC_PORT: int = Field(default=50053, ge=0, le=65535)
    # Plaintext, health service only: Kubernetes `grpc:` probes cannot present a client
    # certificate.
    CIVFED_HEALTH_PORT: int = Field(default=50052, ge=0, le=65535)
    CIVFED_TLS_CERT_FILE: FilePath
    CIVFED_TLS_KEY_FILE: FilePath
    CIVFED_TLS_CA_FILE: FilePath
    CIVFED_SIGNING_KEY_FILE: FilePath
    # JSON: {"vienna": {"address": "10.0.0.5:50051", "public_key_file": "/etc/civfed/vienna.pub"}}
    CIVFED_PARTNERS: dict[str, PartnerNode] = {}
    # Staff sign in at the city's own OpenID Connect provider; the node checks their access
    # tokens against its published keys (a JWKS file, or its https URL). Without an issuer,
    # no staff call is possible.
    CIVFED_OIDC_ISSUER: str = ""
    CIVFED_OIDC_AUDIENCE: str = "civfed"
    CIVFED_OIDC_JWKS: str = ""
    # Where the roles are in the token: "roles" (Entra ID), "realm_access.roles" (Keycloak).
    CIVFED_OIDC_ROLES_CLAIM: str = "roles"
    CIVFED_OIDC_LEEWAY_SECONDS: int = Field(default=30, ge=0, le=300)
    # How long a holder's or till's credential lives before it must be rotated.
    CIVFED_CREDENTIAL_DAYS: int = Field(default=365, ge=1, le=3650)
    CIVFED_HOLD_SECONDS: float = Field(default=120, gt=0)
    CIVFED_VOUCHER_TTL_SECONDS: float = Field(default=900, gt=0)
    CIVFED_CALL_TIMEOUT_SECONDS: float = Field(default=5, gt=0)
    CIVFED_SWEEP_SECONDS: float = Field(default=2, gt=0)
    CIVFED_SHUTDOWN_GRACE_SECONDS: float = Field(default=10, ge=0)
    # Prometheus metrics at http://HOST:PORT/metrics. Unset: none are served; 0: a port the
    # kernel picks, as for the ports above (`civfed serve --port-file` says which).
    CIVFED_METRICS_HOST: str = "127.0.0.1"
    CIVFED_METRICS_PORT: int | None = Field(default=None, ge=0, le=65535)
    # Most commands saved in one transaction when calls queue up (1: one per save).
    CIVFED_WRITE_BATCH: int = Field(default=200, ge=1, le=10_000)
    # Tests and demos only: the node's clock runs this file's number of seconds ahead of
    # the wall clock (services/clock.py), so a hold can lapse without anyone waiting.
    CIVFED_CLOCK_OFFSET_FILE: Path | None = None

    @model_validator(mode="after")
    def _issuer_has_keys(self) -> NodeSettings:
        if self.CIVFED_OIDC_ISSUER and not self.CIVFED_OIDC_JWKS:
            raise ValueError("CIVFED_OIDC_JWKS: required with CIVFED_OIDC_ISSUER (a JWKS file or https URL)")
        source = self.CIVFED_OIDC_JWKS
        if source and not source.startswith(("https://", "http://")) and not Path(source).is_file():
            raise ValueError(f"CIVFED_OIDC_JWKS: no such file: {source}")
        return self

    @model_validator(mode="after")
    def _hold_outlasts_a_saga(self) -> NodeSettings:
        # A partner's reserve and its commit may each take a full call deadline;
        # a hold shorter than both would lapse under a sale that is going well.
        if self.CIVFED_HOLD_SECONDS < 2 * self.CIVFED_CALL_TIMEOUT_SECONDS:
            raise ValueError(
                "CIVFED_HOLD_SECONDS must be at least twice CIVFED_CALL_TIMEOUT_SECONDS "
                f"({self.CIVFED_HOLD_SECONDS} < 2 x {self.CIVFED_CALL_TIMEOUT_SECONDS})"
            )
        return self


def load_node_settings(env: dict[str, str] | None = None) -> NodeSettings:
    try:
        if env is None:
            return NodeSettings()
        wanted: dict[str, object] = {k: v for k, v in env.items() if k in NodeSettings.model_fields}
        if isinstance(wanted.get("CIVFED_PARTNERS"), str):
            try:
                wanted["CIVFED_PARTNERS"] = json.loads(str(wanted["CIVFED_PARTNERS"]))
            except json.JSONDecodeError as exc:
                raise ConfigError(f"invalid node settings: CIVFED_PARTNERS: not JSON ({exc})") from None
        return NodeSettings.model_validate(wanted)
    except ValidationError as exc:
        raise ConfigError(describe(exc, "node settings")) from None
