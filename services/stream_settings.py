"""Settings for the event path: Kafka (optional), the read-model store, the dashboard."""

from __future__ import annotations

from urllib.parse import quote

from pydantic_settings import BaseSettings, SettingsConfigDict

from projections.store import Store
from services.config import Settings


class StreamSettings(BaseSettings):
    """Without CIVFED_KAFKA_BOOTSTRAP, projections read the notification logs directly."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True)

    CIVFED_KAFKA_BOOTSTRAP: str = ""
    CIVFED_KAFKA_PARTITIONS: int = 3
    CIVFED_RELAY_TIMEOUT_MS: int = 10_000
    # sqlite:///path or postgresql://...; default: beside the event stores.
    CIVFED_READ_MODELS_URL: str = ""
    CIVFED_DASHBOARD_HOST: str = "127.0.0.1"
    CIVFED_DASHBOARD_PORT: int = 8470


def load_stream_settings(env: dict[str, str] | None = None) -> StreamSettings:
    if env is None:
        return StreamSettings()
    return StreamSettings.model_validate({k: v for k, v in env.items() if k in StreamSettings.model_fields})


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
