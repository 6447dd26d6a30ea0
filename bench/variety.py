"""Benchmark: variety and request fidelity of the planner on the demo's 60 s song.

Run: ``.venv/bin/python bench/variety.py [--seconds 60] [--salsa] [--variety-penalty W]
[--json]`` (10-30 s: the song is synthesized and analysed once, then each request is planned
through the offline planning pipeline ``choreo plan`` runs, on the procedural demo library, or
with ``--salsa`` on the real-motion CMU salsa library built from ``../shared/corpus/`` and a
song synthesized at 180 BPM; no clips are rendered).

For each request it prints:

- *moves*: placements on the timeline; *distinct/min*: distinct move ids per timeline minute;
- *families*: distinct move families (``MoveCandidate.family``: the name without its
  parenthesised variant, so "Rock Punch (advanced, low)" and "Rock Punch (beginner, high)" are
  one family);
- *top family*: placements of the most used family (repeated sections included);
- *fresh repeats*: placements outside repeated sections whose move (or family) was already
  placed outside repeated sections;
- *difficulty ok* / *energy ok*: the share of placements at the requested level (``-`` when the
  request leaves it open);
- *substitutions*: what the blueprint says it gave instead of what was asked.

The song is the demo's 60 s song, synthesized as ``choreo demo`` does (``choreo_cli.demo.assets``:
112 BPM, "syncopated", seed 3, ``demo_structure``: intro 2, verse 6, chorus 6, verse 6, chorus 8
bars at 60 s).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from choreo_cli.demo.assets import DEMO_TEMPO_BPM, demo_structure
from choreo_cli.demo.song_synth import Style, synthesize_song, write_wav
from choreography.moves.bundle import storage_key
from choreography.moves.demo_library import demo_drafts
from choreography.music.model import MusicAnalysis
from choreography.planner.costs import PlannerSettings
from choreography.planner.offline import MoveLibrary, OfflineRequest, plan_offline
from schemas.blueprint import Blueprint, MoveUsed, Substitution
from schemas.events import Constraints

SALSA_TEMPO_BPM = 180.0
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "cmu-mocap-salsa"
REQUESTS: tuple[dict[str, Any], ...] = (
    {"style": "hip-hop", "difficulty": "advanced", "energy": "medium"},
    {"style": "hip-hop", "difficulty": "beginner", "energy": "high"},
    {"style": "salsa", "difficulty": "intermediate"},
    {"style": "pop"},
    {"style": "contemporary", "difficulty": "advanced", "energy": "low"},
)
SALSA_REQUESTS: tuple[dict[str, Any], ...] = (
    {"style": "salsa", "difficulty": "advanced", "energy": "medium"},
    {"style": "salsa", "difficulty": "intermediate", "energy": "low"},
    {"style": "salsa", "difficulty": "beginner", "energy": "high"},
    {"style": "salsa"},
)


def measure(blueprint: Blueprint, library: MoveLibrary, asked: dict[str, Any]) -> dict[str, Any]:
    """The variety and fidelity figures of one blueprint."""
    moves = blueprint.moves_used
    by_id = library.all_candidates()
    minutes = (moves[-1].timeline_end_s - moves[0].timeline_start_s) / 60.0
    seen_moves: set[str] = set()
    seen_families: set[str] = set()
    fresh_move_repeats = fresh_family_repeats = 0
    copied = copies(moves)
    families = Counter(by_id[m.move_id].family for m in moves)
    for move in moves:
        if move in copied:
            continue  # a repeated section's copy repeats on purpose
        family = by_id[move.move_id].family
        fresh_move_repeats += move.move_id in seen_moves
        fresh_family_repeats += family in seen_families
        seen_moves.add(move.move_id)
        seen_families.add(family)

    def share(field: str) -> float | None:
        wanted = asked.get(field)
        if wanted is None:
            return None
        return float(np.mean([getattr(by_id[m.move_id], field) == wanted for m in moves]))

    return {
        "request": asked,
        "moves": len(moves),
        "minutes": round(minutes, 3),
        "distinct_moves": len({m.move_id for m in moves}),
        "distinct_moves_per_minute": round(len({m.move_id for m in moves}) / minutes, 2),
        "distinct_families": len({by_id[m.move_id].family for m in moves}),
        "most_used_family": max(families.values()),
        "fresh_move_repeats": fresh_move_repeats,
        "fresh_family_repeats": fresh_family_repeats,
        "difficulty_ok": share("difficulty"),
        "energy_ok": share("energy"),
        "substitutions": [
            s.model_dump() for s in getattr(blueprint.request, "substitutions", None) or []
        ],
    }


def copies(moves: Sequence[MoveUsed]) -> list[MoveUsed]:
    """Moves that copy the move at the same offset of the section their section repeats."""
    starts: dict[int, float] = {}
    placed: dict[tuple[int, float, str], MoveUsed] = {}
    for move in moves:
        start = starts.setdefault(move.section.index, move.timeline_start_s)
        placed[(move.section.index, round(move.timeline_start_s - start, 1), move.move_id)] = move
    out = []
    for move in moves:
        original = move.section.repeat_of
        if original is None or original not in starts:
            continue
        offset = round(move.timeline_start_s - starts[move.section.index], 1)
        if (original, offset, move.move_id) in placed:
            out.append(move)
    return out


def demo_song(work: Path, seconds: float, tempo_bpm: float = DEMO_TEMPO_BPM) -> Path:
    """The demo's synthesized song, as ``choreo demo`` writes it (at ``tempo_bpm``)."""
    style: Style = "syncopated" if tempo_bpm == DEMO_TEMPO_BPM else "salsa"
    song = synthesize_song(tempo_bpm, style, demo_structure(seconds, tempo_bpm), seed=3)
    return write_wav(work / "demo-song.wav", song.y, song.sr)


def salsa_library() -> MoveLibrary:
    """The real-motion CMU salsa library (``choreography.moves.salsa``), built in memory."""
    from choreography.moves.salsa import salsa_drafts  # noqa: PLC0415 - reads the corpus

    drafts, _ = salsa_drafts(CORPUS)
    moves = [d.as_move(storage_key(d.style, d.move_id)) for d in drafts]
    return MoveLibrary(moves, "the CMU salsa library")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


def main() -> None:
    """Plan each request on the demo song and print the table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--variety-penalty",
        type=float,
        default=PlannerSettings().w_variety,
        help="the planner's family reuse weight (PLANNER_VARIETY_PENALTY); 0 turns variety off",
    )
    parser.add_argument(
        "--salsa",
        action="store_true",
        help=f"the CMU salsa library on the song synthesized at {SALSA_TEMPO_BPM:g} BPM",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.salsa:
        library, tempo, requests = salsa_library(), SALSA_TEMPO_BPM, SALSA_REQUESTS
    else:
        moves = [d.as_move(storage_key(d.style, d.move_id)) for d in demo_drafts()]
        library = MoveLibrary(moves, "the procedural demo library")
        tempo, requests = DEMO_TEMPO_BPM, REQUESTS
    cache: dict[str, MusicAnalysis] = {}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        song = demo_song(Path(tmp), args.seconds, tempo)
        for asked in requests:
            request = OfflineRequest(
                song,
                constraints=Constraints(**asked),
                seed=args.seed,
                planner=PlannerSettings(w_variety=args.variety_penalty),
            )
            blueprint, _ = plan_offline(request, library, cache)
            rows.append(measure(blueprint, library, asked))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    sections = structure_text(args.seconds, tempo)
    print(f"{library.source}; song {tempo:g} BPM, {args.seconds:g} s, {sections}")
    header = "request                              moves  distinct/min  families  top family"
    print(header + "  fresh repeats  difficulty ok  energy ok")
    for row in rows:
        label = ", ".join(str(v) for v in row["request"].values())
        repeats = f"{row['fresh_move_repeats']} / {row['fresh_family_repeats']}"
        print(
            f"{label:36} {row['moves']:5}  {row['distinct_moves_per_minute']:12.2f}  "
            f"{row['distinct_families']:8}  {row['most_used_family']:10}  {repeats:>13}  "
            f"{_percent(row['difficulty_ok']):>13}  "
            f"{_percent(row['energy_ok']):>9}"
        )
        for sub in row["substitutions"]:
            print(f"    {Substitution.model_validate(sub).line()}")


def structure_text(seconds: float, tempo_bpm: float) -> str:
    """The song's sections as ``intro 2, verse 6, ...`` (bars)."""
    return ", ".join(f"{name} {bars}" for name, bars in demo_structure(seconds, tempo_bpm))


if __name__ == "__main__":
    main()
