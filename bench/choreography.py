"""Benchmark: the quality figures of planned choreographies, on real motion (#17, part 4).

Run: ``.venv/bin/python bench/choreography.py [--library DIR | --demo] [--duration 60]``
(a few minutes: building the salsa library, then one song analysis and plan per song). Prints a
table and the goals, and writes JSON to ``bench/results/``.

- Library: ``--library DIR`` (a move bundle folder); by default the real CMU salsa library,
  built from ``../shared/corpus/cmu-mocap-salsa/`` by ``choreography.moves.salsa.salsa_drafts``
  into a temporary bundle (clips rendered at 64x64, 12 fps: planning never reads the pictures);
  ``--demo`` takes the procedural demo library instead (``--style`` then picks its style).
- Songs: the corpus's CC-BY songs longer than the window (``librosa-data/audio``: Vibe Ace,
  Dance of the Sugar Plum Fairy, Let's Go Fishin', CC BY 3.0) and songs synthesized at salsa
  tempi (``--tempi``, default 160, 180, 200 and 220 BPM; the synth's ``salsa`` pattern when it
  has one). Each is planned as ``choreo plan --style salsa --duration 60`` would
  (``plan_offline``: analysis, search, planner) and measured by ``quality_report`` with the
  library's moves, so the assembled-motion figures are there.
- Figures per song: Bailando's BAS of the assembled motion (and the per-move figure), the
  pelvis-centred pose jump at cuts (mean, max, share below the two moves' median frame step),
  foot sliding while planted within 0.1 s of cuts and inside moves, distinct moves per minute,
  the share of identical moves in repeated sections. A song the planner cannot dance (no move
  fits its tempo) gets its error in the table.
- Goals (issue 17): BAS >= 0.30 (AIST++ ground truth 0.237, best generative ~0.27); every cut's
  pose jump below the moves' median frame step; no foot sliding added by cuts (near-cut slide
  speed not above inside-move speed).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The checkout goes first: this file is named choreography.py too, and the package must win.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
CC_BY_SONGS = (
    "Kevin_MacLeod_-_Vibe_Ace.ogg",
    "Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.ogg",
    "Karissa_Hobbs_-_Lets_Go_Fishin.ogg",
)
SALSA_TEMPI = (160.0, 180.0, 200.0, 220.0)
STRUCTURE = (
    ("intro", 4), ("verse", 8), ("chorus", 8), ("verse", 8), ("chorus", 8), ("outro", 4),
)  # fmt: skip


@dataclass
class Row:
    """One song's figures, or the reason it has none."""

    song: str
    bpm: float | None = None
    moves: int = 0
    figures: dict[str, Any] | None = None
    error: str | None = None


def build_library(work: Path, demo: bool) -> Path:
    """The salsa library (or the demo library) as a bundle folder under ``work``."""
    from choreography.moves.bundle import write_bundle  # noqa: PLC0415
    from choreography.moves.render import ClipFormat  # noqa: PLC0415

    out, small = work / "library", ClipFormat(64, 64, 12)
    started = time.perf_counter()
    if demo:
        from choreography.moves.demo_library import build_demo_library  # noqa: PLC0415

        build_demo_library(out, clip_format=small)
    else:
        try:
            from choreography.moves.salsa import salsa_drafts  # noqa: PLC0415
        except ImportError as exc:
            raise SystemExit(
                f"cannot build the CMU salsa library ({exc}): give --library DIR or --demo"
            ) from exc
        drafts, report = salsa_drafts(CORPUS / "cmu-mocap-salsa")
        for line in report.lines():
            print(f"  {line}")
        write_bundle(out, drafts, clip_format=small)
    print(f"library built in {time.perf_counter() - started:.1f} s: {out}")
    return out


def make_songs(work: Path, tempi: list[float]) -> list[Path]:
    """The CC-BY corpus songs, then one synthesized song per tempo."""
    from choreo_cli.demo.song_synth import STYLES, synthesize_song, write_wav  # noqa: PLC0415

    songs = [CORPUS / "librosa-data" / "audio" / name for name in CC_BY_SONGS]
    missing = [str(s) for s in songs if not s.is_file()]
    if missing:
        raise SystemExit(f"corpus songs missing: {missing}")
    pattern = "salsa" if "salsa" in STYLES else "syncopated"
    for seed, bpm in enumerate(tempi):
        song = synthesize_song(bpm, style=pattern, structure=STRUCTURE, seed=seed)  # type: ignore[arg-type]
        songs.append(write_wav(work / f"synth-{pattern}-{bpm:g}bpm.wav", song.y, song.sr))
    return songs


def measure(song: Path, library: Any, style: str, duration_s: float) -> Row:
    """Plan ``song`` offline and compute every quality figure with the library's moves."""
    from choreography.planner.offline import OfflineRequest, plan_offline  # noqa: PLC0415
    from choreography.planner.quality import quality_report  # noqa: PLC0415
    from schemas.errors import ChoreoError  # noqa: PLC0415
    from schemas.events import Constraints  # noqa: PLC0415

    request = OfflineRequest(
        song=song,
        constraints=Constraints(style=style, duration_s=duration_s),
        task_id="bench",
        audio_uri=f"songs/{song.name}",
    )
    try:
        blueprint, analysis = plan_offline(request, library)
    except ChoreoError as exc:
        return Row(song.stem, error=str(exc).split(":")[0][:120])
    moves = {m.move_id: m for m in library.moves}
    report = quality_report(blueprint, library.all_candidates(), analysis, moves)
    motion = report.motion
    assert motion is not None  # the moves were given
    jumps = [j.jump_m for j in motion.cut_jumps]
    steps = [j.median_step_m for j in motion.cut_jumps]
    slide = motion.sliding
    figures = {
        "window_s": blueprint.song.window.length_s,
        "bas_assembled": motion.beat_align_score,
        "bas_per_move": report.beat_align_score,
        "music_beats": motion.music_beats,
        "motion_beats": motion.motion_beats,
        "cuts": len(jumps),
        "jump_mean_m": sum(jumps) / len(jumps) if jumps else None,
        "jump_max_m": max(jumps) if jumps else None,
        "median_step_m": sorted(steps)[len(steps) // 2] if steps else None,
        "cuts_below_median_step_share": motion.cuts_below_median_step_share,
        "slide_planted_m_s": slide.mean_m_s,
        "slide_near_cuts_m_s": slide.near_cuts_m_s,
        "slide_inside_moves_m_s": slide.inside_moves_m_s,
        "cuts_add_sliding": slide.cuts_add_sliding,
        "distinct_moves": report.distinct_moves,
        "distinct_moves_per_minute": report.distinct_moves_per_minute,
        "repeated_sections": report.repeated_sections,
        "repeated_identical_share": report.repeated_identical_share,
        "cut_jumps": [
            {"time_s": j.time_s, "jump_m": j.jump_m, "median_step_m": j.median_step_m}
            for j in motion.cut_jumps
        ],
    }
    return Row(song.stem, analysis.tempo_bpm, len(blueprint.moves_used), figures)


def _f(value: float | None, fmt: str, scale: float = 1.0) -> str:
    return "n/a" if value is None else format(value * scale, fmt)


def table(rows: list[Row]) -> list[str]:
    """A Markdown table of the figures, one row per song."""
    out = [
        "| song | BPM | moves | BAS assembled | BAS per move | cut jump mean / max (m) "
        "| median step (m) | cuts below it | slide near cuts / inside (cm/s) | distinct / min "
        "| repeats identical |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        name = row.song[:32]
        if row.figures is None:
            out.append(f"| {name} | | | not planned: {row.error} | | | | | | | |")
            continue
        f = row.figures
        out.append(
            f"| {name} | {row.bpm:.1f} | {row.moves} | {f['bas_assembled']:.3f} "
            f"| {_f(f['bas_per_move'], '.3f')} "
            f"| {_f(f['jump_mean_m'], '.3f')} / {_f(f['jump_max_m'], '.3f')} "
            f"| {_f(f['median_step_m'], '.4f')} | {_f(f['cuts_below_median_step_share'], '.0%')} "
            f"| {_f(f['slide_near_cuts_m_s'], '.1f', 100)} / "
            f"{_f(f['slide_inside_moves_m_s'], '.1f', 100)} "
            f"| {f['distinct_moves_per_minute']:.1f} | {_f(f['repeated_identical_share'], '.0%')} |"
        )
    return out


def goals(rows: list[Row]) -> list[str]:
    """The issue's goals, met by how many planned songs."""
    planned = [r.figures for r in rows if r.figures is not None]
    if not planned:
        return ["no song could be planned: no goal can be checked"]
    n = len(planned)
    bas = sum(f["bas_assembled"] >= 0.30 for f in planned)
    jumps = sum(f["cuts_below_median_step_share"] == 1.0 for f in planned)
    slide = sum(f["cuts_add_sliding"] is False for f in planned)
    cut_shares = [f["cuts_below_median_step_share"] or 0.0 for f in planned]
    return [
        f"goal BAS >= 0.30 (AIST++ 0.237, best generative ~0.27): {bas} of {n} songs "
        f"(mean {sum(f['bas_assembled'] for f in planned) / n:.3f})",
        f"goal every cut's pose jump below the moves' median frame step: {jumps} of {n} songs "
        f"(mean share of cuts below {sum(cut_shares) / n:.0%})",
        f"goal no foot sliding added by cuts (near-cut slide <= inside moves): "
        f"{slide} of {n} songs",
    ]


def library_reference(library: Any, style: str) -> str:
    """The mean BAS of the style's moves alone against their own counts: the dance's own score."""
    from choreography.planner.quality import move_beat_align_score  # noqa: PLC0415

    scores = [move_beat_align_score(m) for m in library.moves if m.style == style]
    if not scores:
        return f"no {style} moves in the library"
    mean = sum(scores) / len(scores)
    return (
        f"reference: the {len(scores)} {style} moves alone against their own counts score "
        f"BAS {mean:.3f} on average (min {min(scores):.3f}, max {max(scores):.3f})"
    )


def main() -> None:
    """Build or read the library, plan every song, print the table and the goals."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--library", type=Path, help="move bundle folder (default: build salsa)")
    parser.add_argument("--demo", action="store_true", help="build the procedural demo library")
    parser.add_argument("--style", default="salsa", help="requested style (default salsa)")
    parser.add_argument("--duration", type=float, default=60.0, help="window seconds (60)")
    parser.add_argument(
        "--tempi", type=float, nargs="*", default=list(SALSA_TEMPI), help="synth song BPMs"
    )
    args = parser.parse_args()

    from choreography.planner.offline import library_from_folder  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="bench-choreography-") as tmp:
        work = Path(tmp)
        folder = args.library or build_library(work, args.demo)
        library = library_from_folder(folder)
        print(f"library {folder}: {library.size} moves")
        reference = library_reference(library, args.style)
        rows = []
        for song in make_songs(work, args.tempi):
            started = time.perf_counter()
            rows.append(measure(song, library, args.style, args.duration))
            print(f"  {song.name}: {time.perf_counter() - started:.1f} s", flush=True)
    lines = [*table(rows), "", reference, *goals(rows)]
    print("\n".join(lines))
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    result = {
        "library": str(args.library or ("demo" if args.demo else "cmu-salsa")),
        "style": args.style,
        "duration_s": args.duration,
        "rows": [row.__dict__ for row in rows],
        "reference": reference,
        "goals": goals(rows),
    }
    path = results / f"choreography-{stamp}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
