"""Import a move bundle (``manifest.json`` + clips + ``.npy`` keypoints) into the library.

Each manifest entry is checked, its clip copied to ``<storage root>/moves/<style>/<id>.mp4`` (and
an optional ``original``, the source a video import cut the clip from, to
``moves/<style>/<id>.original.<ext>``) and the move upserted in its own transaction, so one bad
entry is reported (file and field) and skipped while the rest of the batch still imports.
Re-importing a move id updates it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import psycopg

from choreography.moves.bundle import MANIFEST_NAME, MoveDraft, original_key, storage_key
from choreography.moves.library_store import upsert_move
from choreography.moves.model import MOVE_ID_PATTERN, Move
from choreography.search.embedding_store import save_embeddings
from choreography.search.spaces import Embedding
from schemas.errors import InvalidInput

log = logging.getLogger(__name__)

REQUIRED_FIELDS = ("move_id", "name", "style", "difficulty", "energy", "tempo_bpm", "counts",
                   "fps", "clip", "keypoints")  # fmt: skip
Status = Literal["imported", "updated", "skipped"]
# Computes a move's pose, rhythm and text embeddings (see choreography.search.embeddings).
MoveEmbedder = Callable[[Move], Mapping[str, Embedding]]


@dataclass(frozen=True)
class ImportOutcome:
    """What happened to one manifest entry."""

    entry: str  # e.g. "moves[3] (salsa-basic)"
    move_id: str | None
    status: Status
    detail: str = ""


@dataclass
class ImportReport:
    """Outcomes of one import, in manifest order."""

    manifest: Path
    outcomes: list[ImportOutcome] = field(default_factory=list)

    def with_status(self, status: Status) -> list[ImportOutcome]:
        """The outcomes that ended with ``status``."""
        return [outcome for outcome in self.outcomes if outcome.status == status]

    @property
    def all_imported(self) -> bool:
        """True when nothing was skipped."""
        return not self.with_status("skipped")


def manifest_path(path: Path) -> Path:
    """The manifest for ``path``: the file itself, or ``manifest.json`` inside a folder."""
    candidate = path / MANIFEST_NAME if path.is_dir() else path
    if not candidate.is_file():
        raise InvalidInput(f"{candidate}: manifest not found")
    return candidate


def read_manifest(path: Path) -> list[Any]:
    """The ``moves`` list of a manifest; an unreadable manifest raises ``InvalidInput``."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidInput(f"{path}: cannot read manifest: {error}") from None
    moves = document.get("moves") if isinstance(document, dict) else None
    if not isinstance(moves, list):
        raise InvalidInput(f"{path}: manifest must be an object with a 'moves' list")
    return moves


def import_bundle(
    path: Path,
    conn: psycopg.Connection[Any],
    storage_root: Path,
    embed: MoveEmbedder | None = None,
) -> ImportReport:
    """Import every entry of the manifest at ``path`` (a file or its folder).

    With ``embed``, each move's embeddings are written in the same transaction as the move, so
    the search index never sees a move without vectors (or vectors of an older version).
    """
    manifest = manifest_path(path)
    report = ImportReport(manifest)
    seen: dict[str, str] = {}
    for index, entry in enumerate(read_manifest(manifest)):
        raw_id = entry.get("move_id") if isinstance(entry, dict) else None
        label = f"moves[{index}]" + (f" ({raw_id})" if isinstance(raw_id, str) else "")
        move_id = raw_id if isinstance(raw_id, str) else None
        try:
            if move_id in seen:
                raise InvalidInput(f"move_id: {move_id!r} already appears in {seen[move_id]}")
            draft, clip = _draft_from_entry(entry, manifest.parent)
            move = draft.as_move(storage_key(draft.style, draft.move_id))
            _copy_clip(clip, storage_root / move.clip_uri)
            original = entry.get("original")
            if isinstance(original, str) and original:
                source = _existing_file(manifest.parent, original, "original")
                key = original_key(draft.style, draft.move_id, source.suffix)
                _copy_clip(source, storage_root / key)
            vectors = embed(move) if embed is not None else None
            with conn.transaction():
                inserted = upsert_move(conn, move)
                if vectors is not None:
                    save_embeddings(conn, move.move_id, vectors)
        except InvalidInput as error:
            report.outcomes.append(ImportOutcome(label, move_id, "skipped", str(error)))
            log.warning("skipped %s of %s: %s", label, manifest, error)
            continue
        except psycopg.Error as error:
            reason = f"database: {' '.join(str(error).split())}"
            report.outcomes.append(ImportOutcome(label, move_id, "skipped", reason))
            log.error("skipped %s of %s: %s", label, manifest, reason)
            continue
        seen[move.move_id] = label
        status: Status = "imported" if inserted else "updated"
        report.outcomes.append(ImportOutcome(label, move.move_id, status, move.clip_uri))
        log.debug("%s move %s from %s", status, move.move_id, manifest)
    return report


def _draft_from_entry(entry: object, base: Path) -> tuple[MoveDraft, Path]:
    if not isinstance(entry, dict):
        raise InvalidInput(f"entry: expected an object, got {type(entry).__name__}")
    missing = [name for name in REQUIRED_FIELDS if entry.get(name) in (None, "")]
    if missing:
        raise InvalidInput(f"{missing[0]}: missing field (missing: {', '.join(missing)})")
    move_id = entry["move_id"]
    if not isinstance(move_id, str) or not MOVE_ID_PATTERN.match(move_id):
        raise InvalidInput(f"move_id: {move_id!r} is not a slug matching {MOVE_ID_PATTERN.pattern}")
    for name in ("name", "style", "difficulty", "energy", "clip", "keypoints"):
        if not isinstance(entry[name], str):
            raise InvalidInput(f"{name}: expected a string, got {entry[name]!r}")
    tags = entry.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise InvalidInput(f"tags: expected a list of strings, got {tags!r}")
    clip = _existing_file(base, entry["clip"], "clip")
    keypoints_file = _existing_file(base, entry["keypoints"], "keypoints")
    try:
        keypoints = np.load(keypoints_file, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise InvalidInput(f"keypoints: cannot read {keypoints_file}: {error}") from None
    draft = MoveDraft(
        move_id=move_id,
        name=entry["name"],
        description=str(entry.get("description", "")),
        style=entry["style"],
        difficulty=entry["difficulty"],
        energy=entry["energy"],
        tempo_bpm=entry["tempo_bpm"],
        counts=entry["counts"],
        keypoints=keypoints,
        fps=entry["fps"],
        tags=tuple(tags),
    )
    return draft, clip


def _existing_file(base: Path, relative: str, field_name: str) -> Path:
    path = base / relative
    if not path.is_file():
        raise InvalidInput(f"{field_name}: file not found: {path}")
    if path.stat().st_size == 0:
        raise InvalidInput(f"{field_name}: file is empty: {path}")
    return path


def _copy_clip(source: Path, destination: Path) -> None:
    # Copy then rename, so a reader never sees half a clip under the final name.
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
    try:
        shutil.copyfile(source, partial)
        partial.replace(destination)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise InvalidInput(f"clip: cannot copy {source} to {destination}: {error}") from None
