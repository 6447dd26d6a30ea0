"""The procedural demo library: 4 styles x 4 families x 3 difficulties = 48 moves of 8 counts.

Within each style and difficulty the four families cycle through low, medium and high energy,
so every (style, difficulty) and every (style, family) has all three energies. Tempos sit in
100-128 BPM, where typical songs need a planner speed factor within 0.85-1.15.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from choreography.moves.bundle import MoveDraft, write_bundle
from choreography.moves.model import DIFFICULTIES, ENERGIES
from choreography.moves.procedural_motion import MotionRecipe, generate_keypoints
from choreography.moves.render import ClipFormat

DEMO_STYLES: Final = ("hip-hop", "pop", "salsa", "contemporary")
# style -> (base tempo, [(family name, leg pattern, arm pattern, what it looks like)])
FAMILIES: Final[dict[str, tuple[float, tuple[tuple[str, str, str, str], ...]]]] = {
    "hip-hop": (104.0, (
        ("groove-bounce", "bounce", "pump", "knee bounce with elbow pumps"),
        ("rock-punch", "rock", "punch", "forward-back rock step with alternating punches"),
        ("kick-wave", "kick", "wave", "low front kicks under a travelling arm wave"),
        ("side-punch", "step-touch", "punch", "side step-touch with punches"),
    )),
    "pop": (116.0, (
        ("step-touch-clap", "step-touch", "clap", "side step-touch clapping on the beat"),
        ("bounce-wave", "bounce", "wave", "bounce in place with arm waves"),
        ("rock-pump", "rock", "pump", "rock step with fist pumps"),
        ("kick-clap", "kick", "clap", "kicks with a clap on each"),
    )),
    "salsa": (124.0, (
        ("basic-frame", "salsa-basic", "frame", "forward-back basic in a partner frame"),
        ("side-basic", "side-basic", "frame", "side basic in a partner frame"),
        ("basic-styling", "salsa-basic", "wave", "forward-back basic with arm styling"),
        ("rock-frame", "rock", "frame", "rock step (cumbia feel) in frame"),
    )),
    "contemporary": (104.0, (
        ("lunge-reach", "lunge", "reach", "side lunges with long reaching arcs"),
        ("travel-reach", "step-touch", "reach", "travelling steps with reaching arms"),
        ("rock-wave", "rock", "wave", "rocking weight shifts with flowing arms"),
        ("breath-wave", "bounce", "wave", "soft breathing bounce with arm waves"),
    )),
}  # fmt: skip
TEMPO_OFFSET: Final = {"low": -4.0, "medium": 0.0, "high": 4.0}
COUNTS: Final = 8
FPS: Final = 30.0


def demo_drafts(seed: int = 7, styles: Sequence[str] = DEMO_STYLES) -> list[MoveDraft]:
    """The demo library's moves of ``styles`` with their keypoints (no clips yet), deterministic
    for a seed."""
    unknown = sorted(set(styles) - set(DEMO_STYLES))
    if unknown:
        raise ValueError(f"no procedural moves for {unknown}; styles: {', '.join(DEMO_STYLES)}")
    drafts: list[MoveDraft] = []
    for style in styles:
        base_bpm, families = FAMILIES[style]
        for d, difficulty in enumerate(DIFFICULTIES):
            for f, (family, legs, arms, looks) in enumerate(families):
                energy = ENERGIES[(f + d) % len(ENERGIES)]
                move_id = f"{style}-{family}-{difficulty}-{energy}"
                bpm = base_bpm + TEMPO_OFFSET[energy]
                recipe = MotionRecipe(legs, arms, difficulty, energy, bpm, COUNTS, FPS,
                                      seed=zlib.crc32(f"{seed}:{move_id}".encode()))  # fmt: skip
                drafts.append(
                    MoveDraft(
                        move_id=move_id,
                        name=f"{family.replace('-', ' ').title()} ({difficulty}, {energy})",
                        description=f"{style}: {looks}; {COUNTS} counts at {bpm:g} BPM.",
                        style=style,
                        difficulty=difficulty,
                        energy=energy,
                        tempo_bpm=bpm,
                        counts=COUNTS,
                        keypoints=generate_keypoints(recipe),
                        fps=FPS,
                        tags=("procedural", "demo", family, legs, arms),
                    )
                )
    return drafts


def build_demo_library(
    out_dir: Path,
    *,
    seed: int = 7,
    styles: Sequence[str] = DEMO_STYLES,
    workers: int = 2,
    on_rendered: Callable[[MoveDraft], None] | None = None,
    clip_format: ClipFormat | None = None,
) -> Path:
    """Write the demo library bundle (clips, keypoints, manifest) to ``out_dir``."""
    drafts = demo_drafts(seed, styles)
    return write_bundle(
        out_dir, drafts, workers=workers, on_rendered=on_rendered, clip_format=clip_format
    )
