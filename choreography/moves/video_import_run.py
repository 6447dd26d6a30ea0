"""One ``choreo moves import-video`` run: clips in, one report line per clip out.

Each clip is hashed first: its move id is the name plus the hash, so a file already in the
library (with the same values asked for) is reported ``unchanged`` without extracting it again.
The others are extracted, estimated and normalised one at a time (a bad clip fails alone, with
one line naming it), then imported together by :func:`~choreography.moves.ingest.import_bundle`
(embeddings, storage copy, one transaction per move), exactly as a bundle is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from blobstore.storage import file_sha256
from choreography.moves.clip_manifest import clip_values, read_clip_manifest, values_for
from choreography.moves.ingest import MoveEmbedder, import_bundle
from choreography.moves.library_store import get_move
from choreography.moves.model import Move
from choreography.moves.video_import import (
    ClipValues,
    ExtractOptions,
    PreparedClip,
    find_clips,
    move_id_for,
    prepare_clip,
    require_extractor,
    scratch_dir,
    write_video_bundle,
)
from schemas.errors import InvalidInput, NotFound
from schemas.settings import IngestSettings

log = logging.getLogger(__name__)


@dataclass
class VideoImport:
    """The clips to import, what the user said about them, and where clips are stored."""

    clips: list[Path]
    manifest: dict[str, ClipValues]
    command_line: ClipValues
    options: ExtractOptions
    storage_root: Path
    lines: list[str] = field(default_factory=list)

    @classmethod
    def from_settings(
        cls,
        settings: IngestSettings,
        paths: list[Path],
        *,
        manifest: Path | None,
        storage_root: Path,
        given: Mapping[str, Any],
        on_multiple: str = "warn",
    ) -> VideoImport:
        """A run from the command line and ``IngestSettings``; ``InvalidInput`` on bad input."""
        options = ExtractOptions(
            python=settings.python,
            max_gap_frames=settings.max_gap_frames,
            min_presence=settings.min_presence,
            min_cutoff=settings.one_euro_min_cutoff,
            beta=settings.one_euro_beta,
            people_every=settings.people_every,
            max_fps=settings.max_fps,
            on_multiple=on_multiple,
            timeout_s=settings.timeout_s,
        )
        require_extractor(options)  # once, before any clip
        clips = find_clips(paths)
        if not clips:
            raise InvalidInput(f"no video clips in {', '.join(str(p) for p in paths)}")
        rows = read_clip_manifest(manifest) if manifest is not None else {}
        command_line = clip_values(dict(given), "")
        return cls(clips, rows, command_line, options, storage_root)

    def execute(
        self,
        conn: psycopg.Connection[Any],
        embed: MoveEmbedder | None = None,
        *,
        on_clip: Callable[[int, Path], None] | None = None,
        on_frames: Callable[[int, int], None] | None = None,
    ) -> list[str]:
        """Import every clip; one report line per clip, in order (``failed ...`` for a bad one)."""
        lines: dict[Path, str] = {}
        prepared: list[PreparedClip] = []
        with scratch_dir() as scratch:
            for number, clip in enumerate(self.clips, start=1):
                if on_clip is not None:
                    on_clip(number, clip)
                values = values_for(self.manifest, clip).over(self.command_line)
                try:
                    digest = file_sha256(clip)
                    move_id = move_id_for(values.name or clip.stem, digest)
                    twin = next((p.source for p in prepared if p.draft.move_id == move_id), None)
                    if twin is not None:
                        lines[clip] = f"unchanged {clip.name} -> {move_id}: same as {twin.name}"
                        continue
                    stored = _stored(conn, move_id)
                    if stored is not None and _matches(stored, values):
                        lines[clip] = f"unchanged {clip.name} -> {move_id}: already in the library"
                        continue
                    ready = prepare_clip(clip, values, self.options, Path(scratch),
                                         digest=digest, on_progress=on_frames)  # fmt: skip
                except (InvalidInput, OSError) as error:
                    lines[clip] = _failed(clip, str(error))
                    log.info("import-video: %s failed: %s", clip, error)
                    continue
                prepared.append(ready)
            if prepared:
                manifest = write_video_bundle(Path(scratch) / "bundle", prepared)
                report = import_bundle(manifest, conn, self.storage_root, embed=embed)
                for ready, outcome in zip(prepared, report.outcomes, strict=True):
                    lines[ready.source] = _line(ready, outcome.status, outcome.detail)
        return [lines[clip] for clip in self.clips]


def _line(ready: PreparedClip, status: str, detail: str) -> str:
    clip = ready.source.name
    if status == "skipped":
        return _failed(ready.source, detail)
    draft = ready.draft
    warnings = "".join(f"; warning: {w}" for w in ready.warnings)
    return f"{status:<9} {clip} -> {draft.style}/{draft.move_id}: {ready.summary()}{warnings}"


def _failed(clip: Path, reason: str) -> str:
    # Errors from the extraction already start with the clip's name.
    return f"failed    {reason if reason.startswith(clip.name) else f'{clip.name}: {reason}'}"


def _stored(conn: psycopg.Connection[Any], move_id: str) -> Move | None:
    try:
        with conn.transaction():
            return get_move(conn, move_id)
    except NotFound:
        return None


def _matches(move: Move, values: ClipValues) -> bool:
    """Whether the stored move already has every value the user gives now."""
    wanted = {
        "name": values.name, "style": values.style, "difficulty": values.difficulty,
        "energy": values.energy, "tempo_bpm": values.bpm, "counts": values.counts,
    }  # fmt: skip
    return all(value is None or getattr(move, key) == value for key, value in wanted.items())
