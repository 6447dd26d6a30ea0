"""Sync report benchmark: the time the report adds to a render, side by side with it.

    .venv/bin/python bench/sync_report.py [--footage library|patterns] [--moves 45] [--rounds 3]

The render bench's 3-minute 1280x720@30 blueprint (45 moves of 8 counts at 112 BPM, some
mirrored, some crossfades), with real music as the song instead of its two tones, so the audio
alignment has onsets to work on: the corpus's CC-BY tracks (``../shared/corpus/librosa-data``,
read in place) joined into 200 s. In one process, on the same machine state: (1) the main
render from an empty cache, the baseline; (2) the same blueprint re-rendered from the cache
(what a retry or a revision costs at best); (3) the sync report measured on the video,
``--rounds`` times (median). Prints each time, its ratio to (1) and (2), the report itself
(how many cuts of the dancer footage were seen), and writes JSON to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.render import (  # noqa: E402
    FPS,
    HEIGHT,
    WIDTH,
    StepTimer,
    blueprint,
    job_render_options,
    make_media,
)

CORPUS = ROOT.parent / "shared" / "corpus" / "librosa-data" / "audio"
TRACKS = (
    "Kevin_MacLeod_-_Vibe_Ace.ogg",
    "Karissa_Hobbs_-_Lets_Go_Fishin.ogg",
    "Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.ogg",
)


def real_song(out: Path, seconds: float = 200.0) -> None:
    """The corpus tracks joined and cut to ``seconds``, AAC in MP4 (replaces the two tones)."""
    inputs = [arg for name in TRACKS for arg in ("-i", str(CORPUS / name))]
    chain = "".join(f"[{i}:a]" for i in range(len(TRACKS)))
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *inputs, "-filter_complex",
         f"{chain}concat=n={len(TRACKS)}:v=0:a=1[a]", "-map", "[a]", "-t", str(seconds),
         "-c:a", "aac", "-b:a", "128k", str(out)],
        check=True,
    )  # fmt: skip


def run(footage: str, moves: int, rounds: int) -> dict[str, Any]:
    """Render, re-render from the cache, then measure the report ``rounds`` times."""
    from blobstore.storage import LocalStorage  # noqa: PLC0415
    from job.assemble import assemble_video  # noqa: PLC0415
    from job.fetch import fetch_inputs  # noqa: PLC0415
    from job.sync_measure import measure_sync  # noqa: PLC0415
    from schemas.blueprint import parse_blueprint  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="choreo-bench-sync-") as scratch:
        work = Path(scratch)
        lengths = make_media(work / "storage", footage, moves)
        real_song(work / "storage/songs/song.m4a")
        document = blueprint(moves, footage, lengths, seed=7)
        parsed = parse_blueprint(json.dumps(document).encode(), storage_root=work / "storage")
        options = job_render_options(work)
        song, clips = fetch_inputs(LocalStorage(work / "storage"), parsed, work / "inputs")
        timed = StepTimer("step")
        rows = timed.rows

        main = work / "main.mp4"
        assembled = timed(
            "(1) main render, empty cache",
            lambda: assemble_video(parsed, song, clips, main, options),
        )
        again = work / "again.mp4"
        timed(
            "(2) re-render from the cache",
            lambda: assemble_video(parsed, song, clips, again, options),
        )
        measured = []
        for round_ in range(rounds):
            report = timed(
                f"(3) sync report, round {round_ + 1}",
                lambda: measure_sync(parsed, main, assembled.song, work / "job", timeout_s=900),
            )
            measured.append(rows[-1]["wall_s"])
    first, cached = rows[0]["wall_s"], rows[1]["wall_s"]
    for row in rows:
        row["vs_render"] = row["wall_s"] / first
        row["vs_cached"] = row["wall_s"] / cached
    report_s = statistics.median(measured)
    return {
        "footage": footage, "moves": moves, "video_s": assembled.duration_s,
        "load_average": os.getloadavg(), "rows": rows, "report_median_s": report_s,
        "report_vs_render": report_s / first, "report_vs_cached": report_s / cached,
        "report": report.as_json(), "report_lines": report.lines(),
    }  # fmt: skip


def main() -> None:
    """Run once, print the table and the report, write the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=45)
    parser.add_argument("--footage", choices=("library", "patterns"), default="library")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    result = run(args.footage, args.moves, args.rounds)
    print(
        f"\n{args.moves} moves of {args.footage} footage, {result['video_s']:.1f} s of "
        f"{WIDTH}x{HEIGHT}@{FPS}, load average {result['load_average'][0]:.1f}\n"
    )
    print(f"{'step':34} {'wall s':>8} {'vs (1)':>8} {'vs (2)':>8}")
    for row in result["rows"]:
        print(f"{row['step']:34} {row['wall_s']:8.2f} {row['vs_render']:8.3f} "
              f"{row['vs_cached']:8.2f}")  # fmt: skip
    print(f"\nreport (median of the rounds): {result['report_median_s']:.2f} s, "
          f"{result['report_vs_render']:.3f} of the render, "
          f"{result['report_vs_cached']:.2f} of the cached re-render")  # fmt: skip
    print("\n".join(result["report_lines"]))
    results = ROOT / "bench/results"
    results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = results / f"sync-report-{stamp}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"\nwritten {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
