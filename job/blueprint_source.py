"""Where the blueprint comes from: ``BLUEPRINT_JSON``, or the file or object ``BLUEPRINT_URI``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from job.errors import BlueprintRejected
from schemas.blueprint import (
    MAX_BLUEPRINT_BYTES,
    SAFE_ID_PATTERN,
    Blueprint,
    BlueprintInvalid,
    parse_blueprint,
)

GcsReader = Callable[[str, int], bytes]
"""Reads at most ``limit + 1`` bytes of a ``gs://`` object."""


def read_blueprint_text(json_text: str, uri: str, read_gcs: GcsReader | None) -> bytes | str:
    """The raw blueprint: the JSON itself when given, else the referenced file or object."""
    if json_text:
        return json_text
    if not uri:
        raise BlueprintRejected("no blueprint: set BLUEPRINT_JSON or BLUEPRINT_URI", step="intake")
    if uri.startswith("gs://"):
        if read_gcs is None:
            raise BlueprintRejected(f"BLUEPRINT_URI={uri}: no Cloud Storage client", step="intake")
        return read_gcs(uri, MAX_BLUEPRINT_BYTES)
    path = Path(uri.removeprefix("file://"))
    try:
        with path.open("rb") as file:
            # One byte past the limit, so an oversized file is reported rather than loaded.
            return file.read(MAX_BLUEPRINT_BYTES + 1)
    except OSError as exc:
        raise BlueprintRejected(
            f"BLUEPRINT_URI={uri}: cannot read: {exc.strerror or exc}", step="intake"
        ) from exc


def validate_blueprint(
    raw: bytes | str, *, storage_root: Path | None, allowed_buckets: frozenset[str] | None
) -> Blueprint:
    """Parse with the shared schema; ``BlueprintRejected`` listing every problem."""
    try:
        return parse_blueprint(raw, storage_root=storage_root, allowed_buckets=allowed_buckets)
    except BlueprintInvalid as exc:
        raise BlueprintRejected(f"invalid blueprint: {exc}", step="intake") from exc


def task_id_hint(raw: bytes | str | None, fallback: str = "") -> str:
    """The task id of a blueprint too broken to validate, when it still names a safe one."""
    try:
        # Numbers stay text: a 5,000-digit integer must not hide the task id it came with.
        document = (
            json.loads(raw, parse_int=str, parse_float=str, parse_constant=str) if raw else None
        )
    except (ValueError, RecursionError):
        document = None
    candidate = document.get("task_id") if isinstance(document, dict) else None
    if isinstance(candidate, str) and re.match(SAFE_ID_PATTERN, candidate):
        return candidate
    return fallback
