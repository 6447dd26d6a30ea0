"""Pose-extraction benchmark: the video import's worker on every clip of the people-video corpus.

    .venv/bin/python bench/ingest.py [--offline] [--max-frames N]

For each clip of ``../shared/corpus/people-video/`` the worker (``choreography/moves/
pose_worker.py``, run by the ingest environment's Python, ``INGEST_PYTHON`` or
``.venv-ingest/bin/python``) extracts the poses in a subprocess of its own. Printed per clip:
seconds of extraction per second of clip (below 1 is faster than real time) and per frame, with
and without the worker's start-up, the worker's peak memory (``os.wait4``'s rusage of that child),
the share of frames with a person, and the people counted; then the agreement of the joint angles
across the four synchronised pose2sim cameras. ``--offline`` runs each worker under
``unshare -n`` (no network). Writes JSON to ``bench/results/``.

Measured 2026-12-04 (2 cores, --offline): start-up 1.1 s (interpreter, imports, both graphs),
then 20-24 ms a frame (26 with decoding VP9 1768x994); seconds per clip-second 0.79 on
sports2d_demo (30 fps), 0.21 on the Intel clip (10 fps), 0.71 on the gif, 1.84-2.07 on the
1.67 s pose2sim clips (60 fps: 1.2-1.4 without the start-up); peak RSS 272-392 MB; person frames
92.2 % sports2d, 100 % each pose2sim camera and the gif, 74.7 % Intel (its empty table is,
rightly, nobody); cameras' |angle - median of views| median 5.8 deg, p90 22.7 deg.

Also the helpers the tests share: :func:`run_worker`, :func:`joint_angles`,
:func:`camera_agreement`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "people-video"
WORKER = ROOT / "choreography" / "moves" / "pose_worker.py"
CAMERAS = tuple(f"pose2sim_single_cam0{n}.mp4" for n in (1, 2, 3, 4))
CLIPS = (
    "sports2d_demo.mp4",
    *CAMERAS,
    "intel_one-by-one-person-detection.mp4",
    "intel_face-demographics-walking.gif",
)
# MediaPipe landmark indices: (name, a, b, c), the angle at b between the segments to a and c.
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 11, 12, 13, 14, 15, 16
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 23, 24, 25, 26, 27, 28
ANGLES = (
    ("left elbow", L_SHOULDER, L_ELBOW, L_WRIST),
    ("right elbow", R_SHOULDER, R_ELBOW, R_WRIST),
    ("left shoulder", L_HIP, L_SHOULDER, L_ELBOW),
    ("right shoulder", R_HIP, R_SHOULDER, R_ELBOW),
    ("left hip", L_SHOULDER, L_HIP, L_KNEE),
    ("right hip", R_SHOULDER, R_HIP, R_KNEE),
    ("left knee", L_HIP, L_KNEE, L_ANKLE),
    ("right knee", R_HIP, R_KNEE, R_ANKLE),
)


# A new network namespace with only a loopback that is down: no network at all. As root (CI and
# the dev container) plain ``unshare -n``; otherwise inside a user namespace (``-r``).
UNSHARE_NET = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-r", "-n"]


def ingest_python() -> Path:
    """The ingest environment's interpreter: INGEST_PYTHON, relative paths from the repo root."""
    path = Path(os.environ.get("INGEST_PYTHON", ".venv-ingest/bin/python"))
    return path if path.is_absolute() else ROOT / path


@dataclass
class WorkerRun:
    returncode: int
    seconds: float
    max_rss_mb: float
    events: list[dict[str, Any]] = field(default_factory=list)
    other_stderr: list[str] = field(default_factory=list)

    def last(self, event: str) -> dict[str, Any] | None:
        return next((e for e in reversed(self.events) if e.get("event") == event), None)


def run_worker(video: Path, out: Path, *args: str, offline: bool = False) -> WorkerRun:
    """Run the worker on one clip in its own process; its exit code, JSON events and peak RSS."""
    cmd = [str(ingest_python()), str(WORKER), str(video), str(out), *args]
    if offline:
        cmd = [*UNSHARE_NET, *cmd]
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        lines = err.read().decode("utf-8", "replace").splitlines()
    events, other = [], []
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:
            other.append(line)
    return WorkerRun(proc.returncode, seconds, usage.ru_maxrss / 1024, events, other)


def joint_angles(world: np.ndarray) -> np.ndarray:
    """(F, 8) angles in degrees (ANGLES' order) from (F, 33, 3) world landmarks; NaN stays NaN."""
    out = np.empty((world.shape[0], len(ANGLES)))
    for k, (_, a, b, c) in enumerate(ANGLES):
        u, v = world[:, a] - world[:, b], world[:, c] - world[:, b]
        cos = np.sum(u * v, axis=1) / (np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1))
        out[:, k] = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    return out


def camera_agreement(worlds: list[np.ndarray]) -> dict[str, Any]:
    """How far each view's joint angles are from the median of all views, frame by frame.

    Returns, in degrees: per camera the median and 90th percentile over frames and angles of
    |angle - median of the views|; the same over all cameras; and per angle the median.
    """
    n = min(w.shape[0] for w in worlds)
    angles = np.stack([joint_angles(w[:n]) for w in worlds])  # (cameras, F, 8)
    dev = np.abs(angles - np.nanmedian(angles, axis=0))
    return {
        "frames": n,
        "per_camera_median": [float(np.nanmedian(d)) for d in dev],
        "per_camera_p90": [float(np.nanpercentile(d, 90)) for d in dev],
        "median": float(np.nanmedian(dev)),
        "p90": float(np.nanpercentile(dev, 90)),
        "per_angle_median": {
            name: float(np.nanmedian(dev[:, :, k])) for k, (name, *_) in enumerate(ANGLES)
        },
    }


def startup_seconds(offline: bool) -> float:
    """The worker's fixed cost: interpreter, imports and graphs, on a one-frame run."""
    with tempfile.TemporaryDirectory() as tmp:
        run = run_worker(CORPUS / CAMERAS[0], Path(tmp) / "o.npz", "--max-frames", "1",
                         offline=offline)  # fmt: skip
    return run.seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--offline", action="store_true", help="run each worker under unshare -n")
    ap.add_argument("--max-frames", type=int, default=0, help="0: whole clips")
    ap.add_argument(
        "--max-fps", type=float, default=30.0,
        help="track at most this rate, as the import does (INGEST_MAX_FPS); 0: every frame",
    )  # fmt: skip
    args = ap.parse_args(argv)
    if not ingest_python().exists():
        print(f"no ingest environment at {ingest_python()}: run bash infra/local/setup.sh")
        return 1
    extra = ["--max-frames", str(args.max_frames)] if args.max_frames else []
    extra += ["--max-fps", str(args.max_fps)]
    startup = startup_seconds(args.offline)
    rows, worlds = [], {}
    print(f"worker start-up (1 frame): {startup:.2f} s; {os.cpu_count()} CPUs")
    print("| clip | frames | clip s | wall s | s per clip-s | ms/frame | ms/frame w/o start-up "
          "| peak RSS MB | person frames | people seen (sampled) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for clip in CLIPS:
            out = Path(tmp) / f"{clip}.npz"
            run = run_worker(CORPUS / clip, out, *extra, offline=args.offline)
            if run.returncode != 0:
                print(f"| {clip} | failed: exit {run.returncode} {run.last('error')} |")
                continue
            d = np.load(out)
            n, fps = int(d["n_frames"]), float(d["fps"])
            present = float(np.mean(d["present"]))
            sampled = d["people"][d["people"] >= 0]
            values, freq = np.unique(sampled, return_counts=True)
            counts = {int(k): int(v) for k, v in zip(values, freq, strict=True)}
            if clip in CAMERAS:
                worlds[clip] = d["world"]
            row = {
                "clip": clip, "frames": n, "fps": fps, "clip_s": n / fps,
                "wall_s": run.seconds, "s_per_clip_s": run.seconds / (n / fps),
                "ms_per_frame": 1000 * run.seconds / n,
                "ms_per_frame_steady": 1000 * (run.seconds - startup) / n,
                "peak_rss_mb": run.max_rss_mb, "present": present, "people": counts,
                "warning": run.last("warning"),
            }  # fmt: skip
            rows.append(row)
            print(
                f"| {clip} | {n} | {n / fps:.2f} | {run.seconds:.2f} | {row['s_per_clip_s']:.2f} "
                f"| {row['ms_per_frame']:.1f} | {row['ms_per_frame_steady']:.1f} "
                f"| {run.max_rss_mb:.0f} | {100 * present:.1f} % "
                f"| {' '.join(f'{k}:{v}' for k, v in counts.items())} |"
            )
    agreement = camera_agreement([worlds[c] for c in CAMERAS]) if len(worlds) == 4 else None
    if agreement:
        print(
            f"\nfour pose2sim cameras, {agreement['frames']} frames: |angle - median of views| "
            f"median {agreement['median']:.1f} deg, p90 {agreement['p90']:.1f} deg"
        )
        for cam, med, p90 in zip(
            CAMERAS, agreement["per_camera_median"], agreement["per_camera_p90"], strict=True
        ):
            print(f"  {cam}: median {med:.1f} deg, p90 {p90:.1f} deg")
        for name, med in agreement["per_angle_median"].items():
            print(f"  {name}: median {med:.1f} deg")
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_json = results / f"ingest-{stamp}.json"
    out_json.write_text(
        json.dumps({"startup_s": startup, "clips": rows, "agreement": agreement}, indent=2)
    )
    print(f"\nwrote {out_json.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
