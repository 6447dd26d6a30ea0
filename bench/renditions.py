"""Practice renditions benchmark: the time of each rendition beside the main render it reuses.

    .venv/bin/python bench/renditions.py [--footage library|patterns] [--moves 45] [--no-counts]

One 3-minute 1280x720@30 blueprint (the render bench's: 45 moves of 8 counts at 112 BPM, some
mirrored, some crossfades), with the count and name overlays on (``--no-counts``: names only, so
the loops need a counted copy). In one process, side by side on the same machine state:
(1) the main render from an empty cache, the baseline; then each rendition alone, reusing what
(1) left: the mirror, 0.75x and 0.5x (with rubberband when FFmpeg has it, and with atempo), the
section and 8-count loops, and the page. Prints each time and its ratio to (1) and writes JSON
to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import json
import os
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


def run(footage: str, moves: int, *, counts: bool) -> dict[str, Any]:
    """Render the main video, then each rendition; the wall time of each."""
    from blobstore.storage import LocalStorage  # noqa: PLC0415
    from job.assemble import assemble_video  # noqa: PLC0415
    from job.fetch import fetch_inputs  # noqa: PLC0415
    from job.ffmpeg_run import run_ffmpeg  # noqa: PLC0415
    from job.practice_page import practice_page  # noqa: PLC0415
    from job.renditions import (  # noqa: PLC0415
        has_rubberband,
        render_renditions,
        slow_args,
    )
    from schemas.blueprint import Practice, parse_blueprint  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="choreo-bench-renditions-") as scratch:
        work = Path(scratch)
        lengths = make_media(work / "storage", footage, moves)
        document = blueprint(moves, footage, lengths, seed=7)
        document["video_output"]["overlays"] = {"count_numbers": counts, "move_names": True}
        parsed = parse_blueprint(json.dumps(document).encode(), storage_root=work / "storage")
        options = job_render_options(work)
        song, clips = fetch_inputs(LocalStorage(work / "storage"), parsed, work / "inputs")
        timed = StepTimer("rendition")
        rows = timed.rows

        main = work / "main.mp4"
        assembled = timed(
            "(1) main render, empty cache",
            lambda: assemble_video(parsed, song, clips, main, options),
        )

        def only(**asked: Any) -> Any:
            return lambda: render_renditions(
                parsed, Practice(**asked), main=main, song=song, clips=clips, options=options
            )

        timed("mirror", only(mirror=True))
        rubberband = has_rubberband()
        slow_filter = "rubberband" if rubberband else "atempo"
        for speed in (0.75, 0.5):
            timed(f"slow {speed:g}x ({slow_filter})", only(slow=[speed]))
        for speed in (0.75, 0.5):
            out = work / f"atempo{speed:g}.mp4"
            timed(
                f"slow {speed:g}x (atempo)",
                lambda speed=speed, out=out: run_ffmpeg(
                    slow_args(main, out, speed, rubberband=False), what="atempo", timeout_s=900
                ),
            )
        made = timed("loops (sections + 8-counts)", only(loops=True))
        timed(
            "page",
            lambda: (work / "page.html").write_text(practice_page(parsed, "main.mp4")),
        )
    baseline = rows[0]["wall_s"]
    for row in rows:
        row["vs_main"] = row["wall_s"] / baseline
    return {
        "footage": footage, "moves": moves, "counts_overlay": counts,
        "video_s": assembled.duration_s, "loops": len(made), "rubberband": rubberband,
        "load_average": os.getloadavg(), "rows": rows,
    }  # fmt: skip


def main() -> None:
    """Run once, print the table, write the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=45)
    parser.add_argument("--footage", choices=("library", "patterns"), default="library")
    parser.add_argument("--no-counts", action="store_true", help="main video without counts")
    args = parser.parse_args()
    result = run(args.footage, args.moves, counts=not args.no_counts)
    print(
        f"\n{args.moves} moves of {args.footage} footage, {result['video_s']:.1f} s of "
        f"{WIDTH}x{HEIGHT}@{FPS}, {result['loops']} loop clips, load average "
        f"{result['load_average'][0]:.1f}\n"
    )
    print(f"{'rendition':34} {'wall s':>8} {'vs main':>8}")
    for row in result["rows"]:
        print(f"{row['rendition']:34} {row['wall_s']:8.2f} {row['vs_main']:8.2f}")
    results = ROOT / "bench/results"
    results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = results / f"renditions-{stamp}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"\nwritten {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
