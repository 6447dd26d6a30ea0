"""Settings, each read from one environment variable with a documented default.

Every deployable composes the groups it needs in its composition root; nothing reads the
environment at import time. Every variable here is listed in ``.env.example`` (a test checks).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class _Group(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class CoreSettings(_Group):
    """Where choreo keeps local state, and how it logs."""

    data_dir: Path = Field(Path(".choreo"), validation_alias="CHOREO_DATA_DIR")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    log_json: bool = Field(True, validation_alias="LOG_JSON")


class DatabaseSettings(_Group):
    """PostgreSQL connection; empty ``DATABASE_URL`` means the embedded server (demo only)."""

    database_url: str = Field("", validation_alias="DATABASE_URL")
    pool_min_size: int = Field(1, ge=0, validation_alias="DB_POOL_MIN_SIZE")
    pool_max_size: int = Field(5, ge=1, validation_alias="DB_POOL_MAX_SIZE")
    connect_timeout_s: float = Field(10.0, gt=0, validation_alias="DB_CONNECT_TIMEOUT")


class PubSubSettings(_Group):
    """Google Cloud Pub/Sub (or its emulator, when ``PUBSUB_EMULATOR_HOST`` is set)."""

    project_id: str = Field(
        "choreo-local",
        validation_alias=AliasChoices("PUBSUB_PROJECT_ID", "GOOGLE_CLOUD_PROJECT"),
    )
    emulator_host: str = Field("", validation_alias="PUBSUB_EMULATOR_HOST")


class StorageSettings(_Group):
    """Object storage: a local directory, or Cloud Storage (or its emulator)."""

    backend: str = Field("local", pattern="^(local|gcs)$", validation_alias="STORAGE_BACKEND")
    local_root: Path = Field(Path(".choreo/storage"), validation_alias="STORAGE_ROOT")
    emulator_host: str = Field("", validation_alias="STORAGE_EMULATOR_HOST")
    songs_bucket: str = Field("choreo-songs", validation_alias="SONGS_BUCKET")
    moves_bucket: str = Field("choreo-moves", validation_alias="MOVES_BUCKET")
    videos_bucket: str = Field("choreo-videos", validation_alias="VIDEOS_BUCKET")
    blueprints_bucket: str = Field("choreo-blueprints", validation_alias="BLUEPRINTS_BUCKET")


class StackSettings(_Group):
    """Ports and data directory of the local stack started by ``choreo stack up``."""

    stack_dir: Path = Field(Path(".choreo/stack"), validation_alias="STACK_DIR")
    pg_port: int = Field(54329, validation_alias="STACK_PG_PORT")
    pubsub_port: int = Field(8085, validation_alias="STACK_PUBSUB_PORT")
    gcs_port: int = Field(9023, validation_alias="STACK_GCS_PORT")
