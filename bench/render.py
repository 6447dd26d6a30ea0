"""Render benchmark: the job's cached FFmpeg path against MoviePy on one 3-minute 720p30 blueprint.

    .venv/bin/python bench/render.py [--footage library|patterns] [--moves 45] [--clips N]
                                     [--retime 0.34] [--skip-moviepy]

Scenarios, each in its own subprocess so peak memory is measured per scenario:
(1) first render (empty segment cache), (2) a new blueprint from the same clips (other order,
a share ``--retime`` of the moves at another speed: part of the pieces cached), (3) re-render
of blueprint 1 (all cached), (4) blueprint 1 with MoviePy. Prints a table and writes JSON to
``bench/results/``. One clip per move unless ``--clips`` says fewer; footage is the demo
library's dancer figures (what choreo renders) or lavfi test patterns of mixed size and rate (the
encoder's worst case).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.blueprints import MovePlan, build_blueprint  # noqa: E402

FPS, WIDTH, HEIGHT = 30, 1280, 720
SONG_BPM = 112.0  # mid-tempo of the demo library (100-128 BPM): speeds stay within 0.85-1.15
SPAN_S = 8 * 60.0 / SONG_BPM  # every move is 8 counts of the song
PATTERNS = [  # (lavfi source, size, rate): mixed sizes and rates, the encoder's worst case
    ("testsrc2", "1280x720", "30"), ("testsrc2", "1920x1080", "30"),
    ("testsrc", "960x540", "25"), ("testsrc2", "640x480", "24"),
    ("smptehdbars", "1280x720", "60"), ("testsrc2", "720x1280", "30"),
    ("rgbtestsrc", "1280x720", "30"), ("testsrc2", "854x480", "30000/1001"),
]  # fmt: skip
SPEEDS = (0.9, 0.95, 1.0, 1.05, 1.1)
RETIMES = (0.9, 0.95, 1.05, 1.1)


def make_media(root: Path, footage: str, clips: int) -> list[float]:
    """``clips`` distinct move clips and a 200-second two-tone song; each clip's length in s.

    ``library``: the demo library's dancer-figure moves (1280x720@30, 8 counts at 100-128 BPM),
    what choreo actually renders. ``patterns``: 7-second lavfi test patterns of mixed size and
    rate, each hue-shifted so no two are alike (every pixel moves: x264's worst case).
    """
    moves = root / "moves"
    moves.mkdir(parents=True, exist_ok=True)
    lengths = []
    if footage == "library":
        library = root.parent / "library"
        # `choreo moves demo-library` in its own process: building it in this one (numpy, the
        # renderer) would leave this process big, and a scenario's peak RSS includes its
        # parent's at the fork (Linux keeps ru_maxrss across exec).
        command = [str(Path(sys.executable).with_name("choreo")), "moves", "demo-library",
                   str(library)]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True)
        sources = sorted((library / "clips").glob("*.mp4"))
        if clips > len(sources):
            sys.exit(f"the demo library has {len(sources)} clips, {clips} asked for")
        for index, source in enumerate(sources[:clips]):
            (moves / f"clip{index}.mp4").write_bytes(source.read_bytes())
            lengths.append(_duration(moves / f"clip{index}.mp4"))
    else:
        for index in range(clips):
            source, size, rate = PATTERNS[index % len(PATTERNS)]
            _ffmpeg("-f", "lavfi", "-i", f"{source}=s={size}:r={rate}:d=7",
                    "-vf", f"hue=h={index * 7}", "-c:v", "libx264", "-preset", "veryfast",
                    "-pix_fmt", "yuv420p", str(moves / f"clip{index}.mp4"))  # fmt: skip
            lengths.append(7.0)
    (root / "songs").mkdir(exist_ok=True)
    _ffmpeg("-f", "lavfi", "-i", "sine=f=220:d=200", "-f", "lavfi", "-i", "sine=f=330:d=200",
            "-filter_complex", "amerge", "-c:a", "aac", "-b:a", "128k",
            str(root / "songs/song.m4a"))  # fmt: skip
    return lengths


def blueprint(moves: int, footage: str, lengths: list[float], seed: int) -> dict[str, Any]:
    """``moves`` moves of 8 counts at 112 BPM (3.2 minutes for 45), a clip each, some crossfades.

    A library move is played whole (speed: its clip's length over the 8 counts, as the planner
    does); a pattern clip from 0.5 s at a speed from ``SPEEDS``.
    """
    chooser = random.Random(seed)
    plans = []
    for index in range(moves):
        fade = index and chooser.random() < 0.2
        clip = index % len(lengths)
        if footage == "library":
            speed, clip_in = round(lengths[clip] / SPAN_S, 4), 0.0
        else:
            speed, clip_in = chooser.choice(SPEEDS), 0.5
        plans.append(
            MovePlan(
                f"moves/clip{clip}.mp4", counts=8, speed=speed, mirror=chooser.random() < 0.3,
                transition="crossfade" if fade else "cut", transition_s=0.5 if fade else 0.0,
                clip_in_s=clip_in,
            )
        )  # fmt: skip
    return _build(plans, "bench-1")


def variant(document: dict[str, Any], seed: int, retime: float = 0.34) -> dict[str, Any]:
    """Blueprint 2: the same moves in another order, a share ``retime`` of them (about a third by
    default) at another speed."""
    chooser = random.Random(seed)
    moves = document["moves_used"]
    order = list(range(len(moves)))
    chooser.shuffle(order)
    plans = []
    for position, index in enumerate(order):
        move = moves[index]
        speed = move["speed_factor"]
        if chooser.random() >= 1 - retime:
            speed = chooser.choice(
                [round(speed * r, 4) for r in RETIMES if 0.85 <= speed * r <= 1.15]
            )
        fade = position and move["transition_in"]["type"] != "cut"
        plans.append(MovePlan(move["clip_uri"], counts=8, speed=speed, mirror=move["mirror"],
                              transition="crossfade" if fade else "cut",
                              transition_s=0.5 if fade else 0.0,
                              clip_in_s=move["clip_in_s"]))  # fmt: skip
    return _build(plans, "bench-2")


def _build(plans: list[MovePlan], task_id: str) -> dict[str, Any]:
    return build_blueprint(plans, task_id=task_id, audio_uri="songs/song.m4a", bpm=SONG_BPM,
                           song_duration_s=200.0, first_beat=4, width=WIDTH, height=HEIGHT, fps=FPS,
                           fade_in_s=1.0, fade_out_s=2.0)  # fmt: skip


def job_render_options(work: Path) -> Any:
    """The job's RenderOptions from its settings, caching under ``work``/cache, working in
    ``work``/job (created)."""
    from job.assemble import RenderOptions  # noqa: PLC0415
    from job.segment_cache import SegmentCache  # noqa: PLC0415
    from schemas.settings import JobSettings  # noqa: PLC0415

    settings = JobSettings()
    (work / "job").mkdir(exist_ok=True)
    return RenderOptions(
        cache=SegmentCache(work / "cache"), work_dir=work / "job",
        preset=settings.x264_preset, crf=settings.x264_crf,
        workers=settings.render_workers, prepare_clips=settings.prepare_clips,
    )  # fmt: skip


class StepTimer:
    """Runs steps, printing and recording each one's wall time as ``{key: name, "wall_s": s}``."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.rows: list[dict[str, Any]] = []

    def __call__(self, name: str, action: Any) -> Any:
        started = time.monotonic()
        result = action()
        self.rows.append({self.key: name, "wall_s": time.monotonic() - started})
        print(f"{name}: {self.rows[-1]['wall_s']:.2f} s", file=sys.stderr)
        return result


def run_job_scenario(blueprint_file: Path, root: Path, cache: Path, out: Path) -> dict[str, Any]:
    """Render with the job's code (no DB, no bus), in this process."""
    from blobstore.storage import LocalStorage  # noqa: PLC0415
    from job.assemble import RenderOptions  # noqa: PLC0415
    from job.run import JobContext, render_blueprint  # noqa: PLC0415
    from job.segment_cache import SegmentCache  # noqa: PLC0415
    from job.task_status import NoTaskStatus  # noqa: PLC0415
    from schemas.blueprint import parse_blueprint  # noqa: PLC0415
    from schemas.settings import JobSettings  # noqa: PLC0415

    parsed = parse_blueprint(blueprint_file.read_bytes(), storage_root=root)
    with tempfile.TemporaryDirectory() as work:
        settings = JobSettings()  # JOB_X264_PRESET, JOB_RENDER_WORKERS... as the job reads them
        options = RenderOptions(
            cache=SegmentCache(cache), work_dir=Path(work), preset=settings.x264_preset,
            crf=settings.x264_crf, workers=settings.render_workers,
            prepare_clips=settings.prepare_clips,
        )  # fmt: skip
        context = JobContext(LocalStorage(root), NoTaskStatus(), None, options)
        result = render_blueprint(parsed, context, out, lambda percent: None)
    return {"pieces": result.pieces, "pieces_cached": result.pieces_cached,
            "video_s": result.duration_s}  # fmt: skip


def run_moviepy_scenario(blueprint_file: Path, root: Path, out: Path) -> dict[str, Any]:
    """The same blueprint with MoviePy 2: subclip, speed, mirror, resize, crossfade, concat."""
    from moviepy import (  # noqa: PLC0415
        AudioFileClip,
        ColorClip,
        CompositeVideoClip,
        VideoFileClip,
        afx,
        concatenate_videoclips,
        vfx,
    )  # fmt: skip

    document = json.loads(blueprint_file.read_text())
    sources: dict[str, Any] = {}
    parts = []
    for move in document["moves_used"]:
        uri = move["clip_uri"]
        source = sources.setdefault(uri, VideoFileClip(str(root / uri)))
        # clip_out_s may pass the clip's end by a rounding error; MoviePy refuses that.
        clip = source.subclipped(move["clip_in_s"], min(move["clip_out_s"], source.duration))
        effects = [vfx.MultiplySpeed(move["speed_factor"])]
        if move["mirror"]:
            effects.append(vfx.MirrorX())
        clip = clip.with_effects(effects).resized(height=HEIGHT)
        if clip.w > WIDTH:
            clip = clip.resized(width=WIDTH)
        background = ColorClip((WIDTH, HEIGHT), color=(0, 0, 0), duration=clip.duration)
        clip = CompositeVideoClip([background, clip.with_position("center")], size=(WIDTH, HEIGHT))
        transition = move["transition_in"]
        if transition["type"] != "cut":
            clip = clip.with_effects([vfx.CrossFadeIn(transition["duration_s"])])
        parts.append(clip)
    video = concatenate_videoclips(parts, method="compose")
    window = document["song"]["window"]
    output = document["video_output"]
    audio = AudioFileClip(str(root / document["song"]["audio_uri"])).subclipped(
        window["start_s"], window["end_s"]
    ).with_effects([afx.AudioFadeIn(output["audio_fade_in_s"]),
                    afx.AudioFadeOut(output["audio_fade_out_s"])])  # fmt: skip
    video.with_audio(audio).write_videofile(
        str(out), fps=FPS, codec="libx264", preset="veryfast", audio_codec="aac", threads=2,
        logger=None, temp_audiofile=str(out.with_suffix(".audio.m4a")),  # not in the cwd
    )  # fmt: skip
    return {"video_s": video.duration}


def child(args: argparse.Namespace) -> None:
    """One scenario in this process; prints its figures as JSON on the last line."""
    started = time.perf_counter()
    if args.scenario == "moviepy":
        figures = run_moviepy_scenario(args.blueprint, args.root, args.out)
    else:
        figures = run_job_scenario(args.blueprint, args.root, args.cache, args.out)
    figures["wall_s"] = time.perf_counter() - started
    figures["python_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures["ffmpeg_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps(figures))


def main() -> None:
    """Prepare media and blueprints, run every scenario in a subprocess, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=45)
    parser.add_argument("--clips", type=int, default=0, help="distinct clips (default: --moves)")
    parser.add_argument("--footage", choices=("library", "patterns"), default="library")
    parser.add_argument("--retime", type=float, default=0.34,
                        help="share of blueprint 2's moves played at another speed")  # fmt: skip
    parser.add_argument("--skip-moviepy", action="store_true")
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    for hidden in ("blueprint", "root", "cache", "out"):
        parser.add_argument(f"--{hidden}", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario:
        child(args)
        return
    with tempfile.TemporaryDirectory(prefix="choreo-bench-") as scratch:
        work = Path(scratch)
        lengths = make_media(work / "storage", args.footage, args.clips or args.moves)
        first = blueprint(args.moves, args.footage, lengths, seed=7)
        files = {"1": work / "bp1.json", "2": work / "bp2.json"}
        files["1"].write_text(json.dumps(first))
        files["2"].write_text(json.dumps(variant(first, seed=11, retime=args.retime)))
        scenarios = [("first render", "job", "1"), ("new blueprint, same clips", "job", "2"),
                     ("re-render", "job", "1")]  # fmt: skip
        if not args.skip_moviepy:
            scenarios.append(("MoviePy", "moviepy", "1"))
        rows = []
        for index, (name, kind, which) in enumerate(scenarios, start=1):
            command = [sys.executable, __file__, "--scenario", kind, "--blueprint",
                       str(files[which]), "--root", str(work / "storage"),
                       "--cache", str(work / "cache"),
                       "--out", str(work / f"out{index}.mp4")]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
            if done.returncode:
                sys.exit(f"({index}) {name} failed:\n{done.stderr[-4000:]}")
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append({"scenario": f"({index}) {name}", **figures})
            print(f"({index}) {name}: {figures['wall_s']:.2f} s", file=sys.stderr)
    report(rows, args.moves, args.footage, args.clips or args.moves)


def report(rows: list[dict[str, Any]], moves: int, footage: str, clips: int) -> None:
    """Print the table and write the JSON result."""
    baseline = next((row["wall_s"] for row in rows if "MoviePy" in row["scenario"]), None)
    print(
        f"\n{moves} moves from {clips} {footage} clips, {rows[0]['video_s']:.1f} s of "
        f"{WIDTH}x{HEIGHT}@{FPS}\n"
    )
    print(f"{'scenario':34} {'wall s':>8} {'x realtime':>10} {'vs MoviePy':>10} "
          f"{'cached':>8} {'py MB':>7} {'ffmpeg MB':>9}")  # fmt: skip
    for row in rows:
        row["realtime_factor"] = row["video_s"] / row["wall_s"]
        row["speedup_vs_moviepy"] = baseline / row["wall_s"] if baseline else None
        speedup = f"{row['speedup_vs_moviepy']:.1f}x" if baseline else "-"
        cached = f"{row['pieces_cached']}/{row['pieces']}" if "pieces" in row else "-"
        print(f"{row['scenario']:34} {row['wall_s']:8.2f} {row['realtime_factor']:10.1f} "
              f"{speedup:>10} {cached:>8} {row['python_rss_mb']:7.0f} "
              f"{row['ffmpeg_rss_mb']:9.0f}")  # fmt: skip
    results = ROOT / "bench/results"
    results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = results / f"render-{stamp}.json"
    path.write_text(
        json.dumps({"moves": moves, "clips": clips, "footage": footage, "rows": rows}, indent=2)
    )
    print(f"\nwritten {path.relative_to(ROOT)}")


def _duration(path: Path) -> float:
    command = ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
               str(path)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


if __name__ == "__main__":
    main()
