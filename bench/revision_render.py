"""Revision render benchmark: a revision rendered on its parent's cache beside a fresh render.

    .venv/bin/python bench/revision_render.py [--redo 17-24] [--size 640x360] [--rounds 2]

A 3-minute synthesized song (112 BPM, 84 bars, verse/chorus repeats) and the procedural demo
library, planned by ``choreo plan`` (the consumer's pipeline) into the parent blueprint; the
revision is ``plan_revision`` of it with ``--redo`` (the rest kept). In one process, on the same
machine state: the parent is rendered once into a segment cache; then, per round, the revision
is rendered (a) on a copy of that cache, as the job does on a machine that rendered the parent,
and (b) on an empty cache, the baseline; the order of (a) and (b) alternates between rounds.
Prints the times, the cached pieces and the ratio (a)/(b), and writes JSON to
``bench/results/``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHOREO = str(ROOT / ".venv/bin/choreo")
TEMPO = 112.0
STRUCTURE = (
    ("intro", 4), ("verse", 12), ("chorus", 12), ("verse", 12), ("chorus", 12), ("bridge", 8),
    ("chorus", 12), ("outro", 12),
)  # fmt: skip


def _run(*args: str) -> None:
    done = subprocess.run([CHOREO, *args], capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"choreo {args[0]} failed: {done.stderr[-2000:]}")


def plan_pair(work: Path, redo: str, size: str) -> tuple[Any, Any, Path]:
    """The parent (``choreo plan``) and its revision (``plan_revision``); the storage root."""
    from choreo_cli.demo.song_synth import synthesize_song, write_wav  # noqa: PLC0415
    from choreography.planner.offline import analyse_song, library_from_folder  # noqa: PLC0415
    from choreography.planner.pipeline import (  # noqa: PLC0415
        PlanningPipeline,
        PlanningRequest,
        Understood,
    )
    from choreography.planner.revision import RevisionInputs, plan_revision  # noqa: PLC0415
    from schemas.bar_spans import parse_bars  # noqa: PLC0415
    from schemas.blueprint import parse_blueprint  # noqa: PLC0415
    from schemas.events import Constraints  # noqa: PLC0415

    width, height = (int(n) for n in size.split("x"))
    storage, library = work / "storage", work / "library"
    song_file = work / "song.wav"
    song = synthesize_song(TEMPO, structure=STRUCTURE, seed=3)
    write_wav(song_file, song.y, song.sr)
    _run("moves", "demo-library", str(library), "--size", size)
    _run(
        "plan", "--song", str(song_file), "--library", str(library), "--style", "hip-hop",
        "--difficulty", "beginner", "--task-id", "parent", "--storage-root", str(storage),
        "--out", str(work / "parent.json"),
    )  # fmt: skip
    document = json.loads((work / "parent.json").read_text())
    document["video_output"].update(width=width, height=height)
    parent = parse_blueprint(json.dumps(document).encode(), storage_root=storage)
    moves = library_from_folder(library)
    constraints = Constraints(style="hip-hop", difficulty="beginner")
    planning = PlanningRequest("child", constraints)
    candidates = PlanningPipeline().candidates(planning, Understood(constraints), moves, moves)
    output = parent.video_output.model_copy(update={"uri": "videos/child.mp4"})
    started = time.monotonic()
    revised = plan_revision(
        RevisionInputs(parent, [], parse_bars(redo), "child", output),
        analyse_song(song_file),
        constraints,
        candidates,
        moves.all_candidates(),
    )
    print(f"revision planned in {time.monotonic() - started:.2f} s (with the analysis)")
    return parent, revised, storage


def run(redo: str, size: str, rounds: int) -> dict[str, Any]:
    """Plan the parent and the revision, render the parent, then time the revision's renders."""
    from blobstore.storage import LocalStorage  # noqa: PLC0415
    from job.assemble import RenderOptions, assemble_video  # noqa: PLC0415
    from job.fetch import fetch_inputs  # noqa: PLC0415
    from job.segment_cache import SegmentCache  # noqa: PLC0415
    from schemas.settings import JobSettings  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="choreo-bench-revision-") as scratch:
        work = Path(scratch)
        parent, revised, storage = plan_pair(work, redo, size)
        child = revised.blueprint
        changed = sum("re-planned in a revision" in m.reason.text for m in child.moves_used)
        settings = JobSettings()
        (work / "job").mkdir()

        def options(cache: Path) -> Any:
            return RenderOptions(
                cache=SegmentCache(cache), work_dir=work / "job",
                preset=settings.x264_preset, crf=settings.x264_crf,
                workers=settings.render_workers, prepare_clips=settings.prepare_clips,
            )  # fmt: skip

        store = LocalStorage(storage)
        song_in, clips_in = fetch_inputs(store, parent, work / "inputs")
        started = time.monotonic()
        made = assemble_video(parent, song_in, clips_in, work / "parent.mp4", options(work / "A"))
        parent_s = time.monotonic() - started
        print(f"parent render, empty cache: {parent_s:.2f} s ({made.pieces} pieces)")
        song_in, clips_in = fetch_inputs(store, child, work / "inputs-child")
        rows: list[dict[str, Any]] = []
        for round_ in range(rounds):
            order = ("reuse", "fresh") if round_ % 2 == 0 else ("fresh", "reuse")
            for kind in order:
                cache = work / f"cache-{round_}-{kind}"
                if kind == "reuse":
                    shutil.copytree(work / "A", cache)
                started = time.monotonic()
                made = assemble_video(child, song_in, clips_in, work / "child.mp4", options(cache))
                wall = time.monotonic() - started
                rows.append(
                    {"round": round_, "kind": kind, "wall_s": wall, "pieces": made.pieces,
                     "pieces_cached": made.pieces_cached, "audio_cached": made.audio_cached}
                )  # fmt: skip
                print(f"round {round_} {kind}: {wall:.2f} s, {made.pieces_cached}/{made.pieces}")
                shutil.rmtree(cache)
    reuse = sorted(r["wall_s"] for r in rows if r["kind"] == "reuse")
    fresh = sorted(r["wall_s"] for r in rows if r["kind"] == "fresh")
    return {
        "redo": revised.redone_bars, "kept": revised.kept_bars, "size": size,
        "moves": len(child.moves_used), "moves_changed": changed,
        "video_s": child.song.window.end_s - child.song.window.start_s,
        "parent_render_s": parent_s, "rows": rows,
        "reuse_median_s": reuse[len(reuse) // 2], "fresh_median_s": fresh[len(fresh) // 2],
        "ratio": reuse[len(reuse) // 2] / fresh[len(fresh) // 2],
        "load_average": os.getloadavg(),
    }  # fmt: skip


def main() -> None:
    """Run, print the summary, write the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redo", default="17-24", help="bars to re-plan (BARS)")
    parser.add_argument("--size", default="640x360", help="output and clip size WIDTHxHEIGHT")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    result = run(args.redo, args.size, args.rounds)
    print(
        f"\n{result['video_s']:.1f} s video at {result['size']}, {result['moves']} moves, "
        f"{result['moves_changed']} changed (redo {result['redo']}); load average "
        f"{result['load_average'][0]:.1f}\nrevision on the parent's cache "
        f"{result['reuse_median_s']:.2f} s, fresh {result['fresh_median_s']:.2f} s, ratio "
        f"{result['ratio']:.2f}"
    )
    results = ROOT / "bench/results"
    results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = results / f"revision-render-{stamp}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"written {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
