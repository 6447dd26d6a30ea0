"""Clip render time: the old stick figure against the dancer figure, side by side.

    .venv/bin/python bench/figure_render.py [--repeats 3]

One clip is an 8-count move at 150 BPM: 3.2 s, 96 frames at 30 fps. Two moves are rendered: a
real CMU salsa window (``60_01_scaled.bvh``, split at 150 BPM, 60 fps) and a procedural salsa
basic at 150 BPM. Each is drawn and encoded (libx264 veryfast, one thread, as ``render.py``)
``--repeats`` times; the median is kept. The baseline is the stick figure ``render.py`` drew
before the dancer figure (a frozen copy below), at its own 480x480 and at 1280x720. Prints
wall seconds per clip (drawing alone, and drawing plus encoding), the CPU seconds of drawing
plus encoding (this process and ffmpeg: steadier than wall time on a shared machine) and the
CPU ratio to the baseline.
The drawing is single-threaded numpy, so a 2-core machine builds two clips at a time.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from choreography.moves.bvh_import import BvhSplitOptions, drafts_from_bvh  # noqa: E402
from choreography.moves.procedural_motion import MotionRecipe, generate_keypoints  # noqa: E402
from choreography.moves.render import (  # noqa: E402
    ClipFormat,
    encode_h264,
    iter_frames,
    sample_poses,
)
from choreography.moves.skeleton import BONES, JOINT_INDEX, PELVIS, Keypoints  # noqa: E402

SALSA = ROOT.parent / "shared" / "corpus" / "cmu-mocap-salsa" / "60_01_scaled.bvh"
BPM = 150.0
Frames = npt.NDArray[np.uint8]


def stick_frames(keypoints: Keypoints, fps: float, fmt: ClipFormat) -> Iterator[Frames]:
    """The stick figure render.py drew before the dancer figure (frozen here as the baseline)."""
    poses = sample_poses(keypoints, fps, fmt)
    n = poses.shape[0]
    scale = fmt.height / 2.1
    centre_x = float(np.mean(keypoints[:, PELVIS, 0]))
    floor_y = float(np.min(keypoints[:, :, 1]))
    columns = (poses[:, :, 0] - centre_x) * scale + fmt.width / 2
    rows = fmt.height * 0.92 - (poses[:, :, 1] - floor_y) * scale
    pixels = np.stack([columns, rows], axis=-1)
    canvas = np.empty((n, fmt.height, fmt.width, 3), dtype=np.uint8)
    canvas[:] = (24, 26, 33)
    canvas[:, int(fmt.height * 0.92) + 2 :, :] = (70, 74, 88)
    thickness = max(2, fmt.height // 80)
    for a, b in BONES:
        colour = (80, 200, 255) if "l_" in a + b else (235, 235, 240)
        colour = (255, 140, 80) if "r_" in a + b else colour
        _stamp(canvas, pixels[:, JOINT_INDEX[a]], pixels[:, JOINT_INDEX[b]], thickness, colour)
    head = pixels[:, JOINT_INDEX["head"]]
    _stamp(canvas, head, head, max(4, fmt.height // 24), (235, 235, 240))
    yield from canvas


def _stamp(
    canvas: Frames,
    start: npt.NDArray[np.floating],
    end: npt.NDArray[np.floating],
    radius: int,
    colour: tuple[int, int, int],
) -> None:
    n, height, width, _ = canvas.shape
    x0, y0, x1, y1 = start[:, 0], start[:, 1], end[:, 0], end[:, 1]
    length = np.hypot(x1 - x0, y1 - y0)
    samples = int(np.ceil(float(np.max(length, initial=0.0)) / radius)) + 2
    t = np.linspace(0.0, 1.0, samples, dtype=np.float32)
    xs = np.rint(x0[:, None] + (x1 - x0)[:, None] * t).astype(np.int32)
    ys = np.rint(y0[:, None] + (y1 - y0)[:, None] * t).astype(np.int32)
    dy, dx = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.int32)
    disc = dx**2 + dy**2 <= radius**2
    cols = (xs[:, :, None] + dx[disc]).reshape(n, -1)
    rows = (ys[:, :, None] + dy[disc]).reshape(n, -1)
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    flat = (np.arange(n, dtype=np.int64)[:, None] * height + rows) * width + cols
    canvas.reshape(-1, 3)[flat[inside]] = colour


def moves() -> list[tuple[str, Keypoints, float]]:
    """(name, keypoints, fps) of the benchmark moves, each 8 counts at 150 BPM."""
    recipe = MotionRecipe("salsa-basic", "frame", "advanced", "high", BPM, 8, 30.0, seed=7)
    found = [("procedural salsa basic", generate_keypoints(recipe), 30.0)]
    if SALSA.is_file():
        _, drafts = drafts_from_bvh(SALSA, BvhSplitOptions(bpm=BPM, fps=60.0))
        found.append(("CMU salsa 60_01 window 1", drafts[0].keypoints, drafts[0].fps))
    else:
        print(f"({SALSA} missing: the real-motion move is skipped)", file=sys.stderr)
    return found


Drawer = Callable[[Keypoints, float, ClipFormat], Iterator[Frames]]


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (ffmpeg), user + system."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def time_clip(
    draw: Drawer, keypoints: Keypoints, fps: float, fmt: ClipFormat, repeats: int
) -> tuple[float, float, float, int]:
    """Medians of: wall seconds to draw a clip, to draw and encode it, and the CPU seconds of
    drawing and encoding (ffmpeg included, so a busy machine does not inflate it); frames."""
    drawing, total, cpu, frames = [], [], [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            start = time.perf_counter()
            frames = sum(1 for _ in draw(keypoints, fps, fmt))
            drawing.append(time.perf_counter() - start)
            start, start_cpu = time.perf_counter(), _cpu_s()
            encode_h264(draw(keypoints, fps, fmt), fmt, Path(tmp) / "clip.mp4")
            total.append(time.perf_counter() - start)
            cpu.append(_cpu_s() - start_cpu)
    return statistics.median(drawing), statistics.median(total), statistics.median(cpu), frames


def main(argv: list[str]) -> int:
    """Print one row per move and renderer."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    renderers: list[tuple[str, Drawer, ClipFormat]] = [
        ("stick figure (old)", stick_frames, ClipFormat(480, 480, 30)),
        ("stick figure (old)", stick_frames, ClipFormat(1280, 720, 30)),
        ("dancer figure", iter_frames, ClipFormat(1280, 720, 30)),
    ]
    print("| move | renderer | size | frames | draw s/clip | draw+encode s/clip | CPU s/clip "
          "| x old 480 (CPU) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for name, keypoints, fps in moves():
        baseline = 0.0
        for label, draw, fmt in renderers:
            drawing, total, cpu, frames = time_clip(draw, keypoints, fps, fmt, args.repeats)
            baseline = baseline or cpu
            print(f"| {name} | {label} | {fmt.width}x{fmt.height} | {frames} | {drawing:.2f} "
                  f"| {total:.2f} | {cpu:.2f} | {cpu / baseline:.1f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
