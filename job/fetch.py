"""Fetching the job's inputs: the song and every distinct clip, in parallel.

:func:`fetch_inputs` retries transient storage errors with exponential backoff
(:func:`blobstore.storage.with_retries`) and maps what is left to the job's failures: a permanent
error on an input is an :class:`AssetUnavailable`, retries running out a :class:`StorageFailed`.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from blobstore.storage import (
    PermanentStorageError,
    Storage,
    StorageKind,
    TransientStorageError,
    file_sha256,
    local_name,
    with_retries,
)
from job.errors import AssetUnavailable, StorageFailed
from job.timeline import ClipFile
from schemas.blueprint import Blueprint

log = logging.getLogger(__name__)


def fetch_inputs(
    storage: Storage,
    blueprint: Blueprint,
    dest_dir: Path,
    *,
    workers: int = 8,
    retries: int = 3,
    base_delay_s: float = 0.5,
) -> tuple[ClipFile, dict[str, ClipFile]]:
    """Download the song and every distinct clip in parallel; the song and clips by URI."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    wanted: dict[str, tuple[StorageKind, str]] = {
        blueprint.song.audio_uri: ("songs", "song.audio_uri")
    }
    for index, move in enumerate(blueprint.moves_used):
        wanted.setdefault(move.clip_uri, ("moves", f"moves_used[{index}].clip_uri"))
    started = time.monotonic()

    def fetch(uri: str) -> ClipFile:
        kind, field = wanted[uri]
        dest = dest_dir / local_name(uri, kind)
        try:
            with_retries(
                lambda: storage.download(uri, kind, dest),
                what=uri, retries=retries, base_delay_s=base_delay_s,
            )  # fmt: skip
        except PermanentStorageError as exc:
            raise AssetUnavailable(f"{field}: {exc}", step="fetch") from exc
        except TransientStorageError as exc:
            raise StorageFailed(
                f"{field}: still failing after {retries} retries: {exc}", step="fetch"
            ) from exc
        return ClipFile(dest.resolve(), file_sha256(dest))

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch") as pool:
        fetched = dict(zip(wanted, pool.map(fetch, wanted), strict=True))
    log.info(
        "inputs fetched",
        extra={"step": "fetch", "objects": len(fetched),
               "duration_ms": round((time.monotonic() - started) * 1000)},
    )  # fmt: skip
    clips = {move.clip_uri: fetched[move.clip_uri] for move in blueprint.moves_used}
    return fetched[blueprint.song.audio_uri], clips
