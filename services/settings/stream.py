"""Settings for the event path: Kafka (optional), the read-model store, the dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from projections.store import Store
from services.settings.cities import Settings
from services.settings.errors import ConfigError, describe

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class StreamSettings(BaseSettings):
    """Without CIVFED_KAFKA_BOOTSTRAP, projections read the notification logs directly."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True)

    CIVFED_KAFKA_BOOTSTRAP: str = ""
    # How the relay and the projector reach the brokers; every client is built
    # from these by kafka_client_kwargs().
    CIVFED_KAFKA_SECURITY_PROTOCOL: SecurityProtocol = "PLAINTEXT"
    CIVFED_KAFKA_SSL_CAFILE: Path | None = None
    # Optional client certificate and key (mutual TLS).
    CIVFED_KAFKA_SSL_CERTFILE: Path | None = None
    CIVFED_KAFKA_SSL_KEYFILE: Path | None = None
    CIVFED_KAFKA_SASL_MECHANISM: SaslMechanism | None = None
    CIVFED_KAFKA_SASL_USERNAME: str = ""
    # A file (a mounted Secret), so the password is never an environment value.
    CIVFED_KAFKA_SASL_PASSWORD_FILE: Path | None = None
    # The relay creates its topic with these when the topic is missing; an
    # existing topic is never altered. 1 replica suits a one-node broker; the
    # Kubernetes manifests set 3.
    CIVFED_KAFKA_TOPIC_PARTITIONS: int = Field(default=6, ge=1)
    CIVFED_KAFKA_REPLICATION_FACTOR: int = Field(default=1, ge=1)
    # How long a message stays on the city's topic. Finite, so what a message says
    # about a wallet leaves the broker too; a rebuild reads the city's own store, not
    # the topic (`civfed projections rebuild`). Set on the topic whenever the relay starts.
    CIVFED_KAFKA_TOPIC_RETENTION_DAYS: int = Field(default=14, ge=1, le=365)
    CIVFED_RELAY_TIMEOUT_MS: int = 10_000
    # sqlite:///path or postgresql://...; default: beside the event stores.
    CIVFED_READ_MODELS_URL: str = ""
    CIVFED_DASHBOARD_HOST: str = "127.0.0.1"
    CIVFED_DASHBOARD_PORT: int = 8470
    # The relay's and the projector's Prometheus metrics (lag), at http://HOST:PORT/metrics.
    # Unset: none are served; 0: a port the kernel picks.
    CIVFED_METRICS_HOST: str = "127.0.0.1"
    CIVFED_METRICS_PORT: int | None = Field(default=None, ge=0, le=65535)

    @model_validator(mode="after")
    def check_kafka_security(self) -> StreamSettings:
        """Every missing or unreadable piece at once, each naming its setting."""
        problems = kafka_security_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _file_problem(name: str, path: Path | None, why: str) -> list[str]:
    if path is None:
        return [f"{name}: required {why}"]
    if not path.is_file():
        return [f"{name}: no such file {path}"]
    return []


def kafka_security_problems(s: StreamSettings) -> list[str]:
    protocol = s.CIVFED_KAFKA_SECURITY_PROTOCOL
    problems: list[str] = []
    if protocol == "PLAINTEXT":
        return problems
    why = f"when CIVFED_KAFKA_SECURITY_PROTOCOL is {protocol}"
    problems += _file_problem("CIVFED_KAFKA_SSL_CAFILE", s.CIVFED_KAFKA_SSL_CAFILE, why)
    cert, key = s.CIVFED_KAFKA_SSL_CERTFILE, s.CIVFED_KAFKA_SSL_KEYFILE
    if cert is not None or key is not None:
        client = "for a client certificate (both or neither)"
        problems += _file_problem("CIVFED_KAFKA_SSL_CERTFILE", cert, client)
        problems += _file_problem("CIVFED_KAFKA_SSL_KEYFILE", key, client)
    if protocol == "SASL_SSL":
        if s.CIVFED_KAFKA_SASL_MECHANISM is None:
            problems.append(
                f"CIVFED_KAFKA_SASL_MECHANISM: required {why} (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"
            )
        if not s.CIVFED_KAFKA_SASL_USERNAME:
            problems.append(f"CIVFED_KAFKA_SASL_USERNAME: required {why}")
        password = s.CIVFED_KAFKA_SASL_PASSWORD_FILE
        problems += _file_problem("CIVFED_KAFKA_SASL_PASSWORD_FILE", password, why)
        if password is not None and password.is_file() and not password.read_text().strip():
            problems.append(f"CIVFED_KAFKA_SASL_PASSWORD_FILE: {password} is empty")
    return problems


def kafka_client_kwargs(s: StreamSettings) -> dict[str, Any]:
    """The connection and security arguments of every kafka-python client civfed creates."""
    kwargs: dict[str, Any] = {
        "bootstrap_servers": s.CIVFED_KAFKA_BOOTSTRAP,
        "security_protocol": s.CIVFED_KAFKA_SECURITY_PROTOCOL,
    }
    if s.CIVFED_KAFKA_SECURITY_PROTOCOL == "PLAINTEXT":
        return kwargs
    kwargs["ssl_cafile"] = str(s.CIVFED_KAFKA_SSL_CAFILE)
    kwargs["ssl_check_hostname"] = True
    if s.CIVFED_KAFKA_SSL_CERTFILE is not None and s.CIVFED_KAFKA_SSL_KEYFILE is not None:
        kwargs["ssl_certfile"] = str(s.CIVFED_KAFKA_SSL_CERTFILE)
        kwargs["ssl_keyfile"] = str(s.CIVFED_KAFKA_SSL_KEYFILE)
    if s.CIVFED_KAFKA_SECURITY_PROTOCOL == "SASL_SSL" and s.CIVFED_KAFKA_SASL_PASSWORD_FILE is not None:
        kwargs["sasl_mechanism"] = s.CIVFED_KAFKA_SASL_MECHANISM
        kwargs["sasl_plain_username"] = s.CIVFED_KAFKA_SASL_USERNAME
        # Read when a client is built, so a rotated Secret is picked up on reconnect.
        kwargs["sasl_plain_password"] = s.CIVFED_KAFKA_SASL_PASSWORD_FILE.read_text().strip()
    return kwargs


def retention_ms(s: StreamSettings) -> int:
    """The topic's `retention.ms`, from CIVFED_KAFKA_TOPIC_RETENTION_DAYS."""
    return s.CIVFED_KAFKA_TOPIC_RETENTION_DAYS * 86_400_000


def kafka_settings(kafka: StreamSettings | str) -> StreamSettings:
    """Settings as given, or a bare bootstrap address (PLAINTEXT, the defaults)."""
    if isinstance(kafka, StreamSettings):
        return kafka
    return load_stream_settings({"CIVFED_KAFKA_BOOTSTRAP": kafka})


def load_stream_settings(env: dict[str, str] | None = None) -> StreamSettings:
    try:
        if env is None:
            return StreamSettings()
        return StreamSettings.model_validate(
            {k: v for k, v in env.items() if k in StreamSettings.model_fields}
        )
    except ValidationError as exc:
        raise ConfigError(describe(exc, "stream settings")) from None


def read_model_store(settings: Settings, stream: StreamSettings) -> Store:
    """The read models live with the event stores unless configured elsewhere."""
    if stream.CIVFED_READ_MODELS_URL:
        return Store(stream.CIVFED_READ_MODELS_URL, settings.POSTGRES_SCHEMA)
    if settings.PERSISTENCE_MODULE == "eventsourcing.postgres":
        auth = quote(settings.POSTGRES_USER)
        if settings.POSTGRES_PASSWORD:
            auth += ":" + quote(settings.POSTGRES_PASSWORD)
        url = f"postgresql://{auth}@{settings.POSTGRES_HOST}:{settings.POSTGRES_PORT}/{settings.POSTGRES_DBNAME}"
        return Store(url, settings.POSTGRES_SCHEMA)
    return Store(f"sqlite:///{settings.CIVFED_DATA_DIR / 'read_models.sqlite'}")
