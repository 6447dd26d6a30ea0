"""Move bundles: a folder with ``manifest.json``, rendered clips and ``.npy`` keypoints.

It is what ``choreo moves demo-library`` and ``choreo moves import-bvh`` write and what
``choreo moves import`` reads, so every source of moves enters the library the same way.
Paths in the manifest are relative to the manifest's folder.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from choreography.moves.model import Move
from choreography.moves.render import ClipFormat, render_clip
from choreography.moves.skeleton import Keypoints

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


@dataclass(frozen=True, eq=False)
class MoveDraft:
    """A move before it has a clip in storage: metadata and keypoints."""

    move_id: str
    name: str
    style: str
    difficulty: str
    energy: str
    tempo_bpm: float
    counts: int
    keypoints: Keypoints
    fps: float
    description: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)

    def as_move(self, clip_uri: str) -> Move:
        """The validated ``Move`` this draft becomes once its clip is at ``clip_uri``."""
        return Move(
            move_id=self.move_id,
            name=self.name,
            description=self.description,
            style=self.style,
            difficulty=self.difficulty,
            energy=self.energy,
            tempo_bpm=self.tempo_bpm,
            counts=self.counts,
            clip_uri=clip_uri,
            tags=self.tags,
            keypoints=self.keypoints,
            fps=self.fps,
        )


def storage_key(style: str, move_id: str) -> str:
    """Where a move's clip lives under the storage root: ``moves/<style>/<move_id>.mp4``."""
    return f"moves/{style}/{move_id}.mp4"


def original_key(style: str, move_id: str, suffix: str) -> str:
    """Where the source of an imported video clip is kept: ``moves/<style>/<id>.original<ext>``.

    The stored clip is cut and normalised from it; keeping it lets a later import re-process.
    """
    return f"moves/{style}/{move_id}.original{suffix.lower()}"


def write_bundle(
    out_dir: Path,
    drafts: Sequence[MoveDraft],
    *,
    workers: int = 2,
    clip_format: ClipFormat | None = None,
    on_rendered: Callable[[MoveDraft], None] | None = None,
) -> Path:
    """Render every draft's clip, save its keypoints and write the manifest; return its path."""
    ids = [draft.move_id for draft in drafts]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"duplicate move ids in one bundle: {duplicates}")
    for draft in drafts:  # fail before any rendering if a draft is not a valid move
        draft.as_move(storage_key(draft.style, draft.move_id))
    (out_dir / "clips").mkdir(parents=True, exist_ok=True)
    (out_dir / "keypoints").mkdir(parents=True, exist_ok=True)

    def render_one(draft: MoveDraft) -> MoveDraft:
        np.save(out_dir / "keypoints" / f"{draft.move_id}.npy", draft.keypoints)
        render_clip(draft.keypoints, draft.fps, out_dir / "clips" / f"{draft.move_id}.mp4",
                    clip_format)  # fmt: skip
        return draft

    # ffmpeg runs outside the GIL and numpy drawing mostly does, so threads are enough.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for done in pool.map(render_one, drafts):
            if on_rendered is not None:
                on_rendered(done)
    manifest = {"version": MANIFEST_VERSION, "moves": [manifest_entry(d) for d in drafts]}
    path = out_dir / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    log.info("wrote move bundle %s with %d moves", path, len(drafts))
    return path


def manifest_entry(
    draft: MoveDraft, *, clip: str | None = None, keypoints: str | None = None
) -> dict[str, object]:
    """The manifest entry of ``draft``; its clip and keypoints in the bundle's own folders unless
    ``clip`` / ``keypoints`` name the files (absolute, as a video import does)."""
    return {
        "move_id": draft.move_id,
        "name": draft.name,
        "description": draft.description,
        "style": draft.style,
        "difficulty": draft.difficulty,
        "energy": draft.energy,
        "tempo_bpm": draft.tempo_bpm,
        "counts": draft.counts,
        "fps": draft.fps,
        "tags": list(draft.tags),
        "clip": clip or f"clips/{draft.move_id}.mp4",
        "keypoints": keypoints or f"keypoints/{draft.move_id}.npy",
    }
