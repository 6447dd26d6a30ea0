"""The configured storage backend: a local root, or Cloud Storage (or its emulator).

Shared by the job and the consumers, so neither imports the other's composition root.
"""

from __future__ import annotations

from pathlib import Path

from blobstore.gcs import GcsStorage, gcs_client
from blobstore.storage import LocalStorage, Storage, StorageKind
from schemas.settings import StorageSettings


def build_storage(settings: StorageSettings, project_id: str) -> Storage:
    """The configured backend: a local root, or Cloud Storage (or its emulator)."""
    if settings.backend == "local":
        return LocalStorage(settings.local_root)
    return GcsStorage(gcs_client(settings.emulator_host, project_id), buckets(settings))


def storage_rules(settings: StorageSettings) -> tuple[Path | None, frozenset[str] | None]:
    """The storage root and allowed buckets the blueprint's URIs are validated against."""
    if settings.backend == "local":
        return settings.local_root, None
    return None, frozenset(buckets(settings).values())


def buckets(settings: StorageSettings) -> dict[StorageKind, str]:
    """The bucket each kind of object lives in."""
    return {
        "songs": settings.songs_bucket,
        "moves": settings.moves_bucket,
        "videos": settings.videos_bucket,
        "blueprints": settings.blueprints_bucket,
    }
