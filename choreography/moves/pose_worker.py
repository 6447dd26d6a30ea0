"""Pose extraction worker: a STANDALONE script run in the ingest environment, never imported.

    .venv-ingest/bin/python choreography/moves/pose_worker.py VIDEO OUT.npz
        [--people-every N] [--on-multiple warn|refuse] [--max-frames N] [--max-fps R] [--verbose]

It runs in ``.venv-ingest`` (``infra/ingest/requirements.txt``), a virtual environment of its
own, because MediaPipe 0.10.21 needs protobuf < 5 while the project runs protobuf 7. So it imports
only the standard library, numpy, cv2 and mediapipe: NEVER a choreo module (choreo is not installed
there). The main process starts it as a subprocess and reads OUT.npz.

Model: the legacy ``mediapipe.solutions.pose`` API with ``model_complexity=1`` ("full"), whose
model ships inside the wheel. The lite (0) and heavy (2) models are downloaded at run time, which
must never happen, so they are not reachable from here. The tests run this script under
``unshare -n`` to prove it needs no network.

Output, OUT.npz (the contract the main process codes against; F = frames read):

- ``fps`` float64 scalar: the tracked rate: the container's rate (divided by the stride k when
  ``--max-fps`` keeps every k-th frame), or frames / duration, or 30.
- ``width``, ``height``, ``n_frames`` int64 scalars: the source frame size and F.
- ``world`` float32 (F, 33, 3): MediaPipe's ``pose_world_landmarks`` (metres, origin between the
  hips, MediaPipe's axes: x to the image's right, y down, z away from the camera), NaN where no
  person was found.
- ``visibility`` float32 (F, 33): landmark visibility, 0 where no person.
- ``image`` float32 (F, 33, 2): ``pose_landmarks`` x, y normalised to the FULL frame (landmarks
  found in a crop are mapped back), NaN where no person.
- ``present`` bool (F,): a person was found.
- ``people`` int16 (F,): people counted by MediaPipe's own person detector (the BlazePose detector
  bundled in the wheel, run on the whole frame and on overlapping square tiles so small people are
  seen) on every ``--people-every``-th frame, -1 on frames not sampled. The detector keys on a
  visible head and upper body: a small, masked or turned-away bystander can go uncounted (the
  pose2sim cameras' bystander is), and OpenCV's HOG people detector, tried first, did worse on
  the corpus (nobody on any of 7 sampled frames of pose2sim cam01; a window taken for a person on
  cam02).
- ``target_box`` float32 (F, 4): normalised x0, y0, x1, y1 of the crop given to MediaPipe (0, 0,
  1, 1 when the whole frame was used).

With several people on a sampled frame, the largest and most central one is tracked: each frame
is cropped to a box around that person (following the landmarks between samples) so MediaPipe
cannot jump to somebody else. A warning line names the frame ranges; ``--on-multiple refuse``
exits 3 instead.

stderr carries one JSON object a line (MediaPipe's native logging is silenced unless
``--verbose``): ``{"event": "progress", "frame": i, "frames": n}`` about every 10 frames,
``{"event": "warning", "code": "several_people", ...}``, ``{"event": "done", ...}``, and on failure
one ``{"event": "error", "code": ..., "message": ...}``. Exit codes: 0 success, 2 unreadable
input (no video stream, zero frames), 3 several people refused, 1 unexpected error.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import sys
import threading
import time
import types
from collections.abc import Generator
from pathlib import Path
from typing import Any, TextIO

import numpy as np

N_LANDMARKS = 33
EXIT_OK, EXIT_UNEXPECTED, EXIT_BAD_INPUT, EXIT_SEVERAL_PEOPLE = 0, 1, 2, 3
PROGRESS_EVERY = 10
# The person detector's score below which a detection is not counted, for the people count and
# for the pose itself (0.5-0.55 are seen on an empty table in the corpus; people score 0.6-0.99).
MIN_PERSON_SCORE = 0.6
# Crop half-size as a multiple of the detector's body-circle radius, and of the landmarks' extent.
CROP_FROM_RADIUS = 1.4
CROP_FROM_LANDMARKS = 0.9
# Frames without a pose inside the crop before the crop is dropped (back to the whole frame).
CROP_LOST_FRAMES = 5
# FFmpeg renders text files as video (its tty and bintext demuxers): those are not clips.
TEXT_CODECS = {"ansi", "bin", "xbin", "idf"}

Person = tuple[float, float, float, float]  # score, centre x, centre y, radius (pixels)
Frame = tuple[np.ndarray, float, list[Person] | None]  # RGB, timestamp (ms), people if sampled


class WorkerError(Exception):
    """A failure reported as one JSON line and a given exit code."""

    def __init__(self, exit_code: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.exit_code, self.code, self.message, self.extra = exit_code, code, message, extra


class Events:
    """JSON lines on a private copy of stderr, so native logging can be silenced on fd 2."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def emit(self, event: str, **fields: Any) -> None:
        self.stream.write(json.dumps({"event": event, **fields}) + "\n")
        self.stream.flush()


def _silence_native_stderr() -> TextIO:
    """Point fd 2 at /dev/null (glog, TFLite) and return a stream on the original stderr."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    return os.fdopen(saved, "w", buffering=1)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("video", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--people-every", type=int, default=15, metavar="N")
    p.add_argument("--on-multiple", choices=("warn", "refuse"), default="warn")
    p.add_argument("--max-frames", type=int, default=0, metavar="N", help="0: all frames")
    p.add_argument(
        "--max-fps", type=float, default=0.0, metavar="R",
        help="track at most R frames a second (every k-th frame of a faster clip); 0: every frame",
    )  # fmt: skip
    p.add_argument("--verbose", action="store_true", help="keep MediaPipe's native logging")
    args = p.parse_args(argv)
    if args.people_every < 1:
        p.error("--people-every must be >= 1")
    return args


def import_mediapipe() -> Any:
    """``import mediapipe``, without the 1.2 s of matplotlib its drawing helpers pull in.

    ``mediapipe.solutions.drawing_utils`` imports ``matplotlib.pyplot`` at module level and uses
    it only to plot landmarks, which this worker never does. Stand-ins are put in ``sys.modules``
    for the import and removed after: import time drops from 1.8 s to 0.6 s a clip.
    """
    names = ("matplotlib", "matplotlib.pyplot")
    stubs = {n: types.ModuleType(n) for n in names if n not in sys.modules}
    sys.modules.update(stubs)
    try:
        import mediapipe as mp  # noqa: PLC0415 - ingest environment only
        from mediapipe.python.solutions import pose as _  # noqa: F401, PLC0415
    finally:
        for name, stub in stubs.items():
            if sys.modules.get(name) is stub:
                del sys.modules[name]
    return mp


# ---------------------------------------------------------------------------------------------
# Person detection: MediaPipe's BlazePose detector (pose_detection.tflite, bundled in the wheel).


class PeopleDetector:
    """Counts people with the detector the pose solution itself uses to find a person.

    Each detection gives the mid-hip point and a point on the circle that holds the whole body,
    which makes a body box. The detector letterboxes its input to 224x224, so people small in a
    wide frame are missed: it also runs on overlapping square tiles along the long side, and
    duplicates (centres closer than 0.6 of the larger radius) are merged.
    """

    def __init__(self) -> None:
        from google.protobuf import text_format  # noqa: PLC0415 - ingest environment only
        from mediapipe.framework import calculator_pb2  # noqa: PLC0415
        from mediapipe.python.solution_base import SolutionBase  # noqa: PLC0415

        config = text_format.Parse(
            'input_stream: "image" output_stream: "detections" '
            'node { calculator: "PoseDetectionCpu" input_stream: "IMAGE:image" '
            'output_stream: "DETECTIONS:detections" }',
            calculator_pb2.CalculatorGraphConfig(),
        )
        self._graph = SolutionBase(graph_config=config, outputs=["detections"])

    def close(self) -> None:
        self._graph.close()

    def detect(self, rgb: np.ndarray) -> list[Person]:
        """People as (score, cx, cy, radius) in full-frame pixels, best score first."""
        h, w = rgb.shape[:2]
        side = min(h, w)
        tiles = [(0, 0, w, h)]
        if max(h, w) > 1.3 * side:
            if w > h:
                tiles += [
                    (0, 0, side, h),
                    (w - side, 0, w, h),
                    ((w - side) // 2, 0, (w + side) // 2, h),
                ]
            else:
                tiles += [
                    (0, 0, w, side),
                    (0, h - side, w, h),
                    (0, (h - side) // 2, w, (h + side) // 2),
                ]
        found: list[Person] = []
        for x0, y0, x1, y1 in tiles:
            result = self._graph.process({"image": np.ascontiguousarray(rgb[y0:y1, x0:x1])})
            for det in result.detections or []:
                score = float(det.score[0])
                kp = det.location_data.relative_keypoints
                if score < MIN_PERSON_SCORE or len(kp) < 2:
                    continue
                cx, cy = x0 + kp[0].x * (x1 - x0), y0 + kp[0].y * (y1 - y0)
                ex, ey = x0 + kp[1].x * (x1 - x0), y0 + kp[1].y * (y1 - y0)
                found.append((score, cx, cy, math.hypot(ex - cx, ey - cy)))
        found.sort(key=lambda d: -d[0])
        people: list[Person] = []
        for d in found:
            if all(math.hypot(d[1] - p[1], d[2] - p[2]) >= 0.6 * max(d[3], p[3]) for p in people):
                people.append(d)
        return people


def choose_target(
    people: list[Person],
    w: int,
    h: int,
    near: tuple[float, float] | None,
) -> Person:
    """The person to track: the one nearest the tracked pose, else the largest and most central."""
    if near is not None:
        return min(people, key=lambda p: math.hypot(p[1] - near[0], p[2] - near[1]) / max(p[3], 1))
    biggest = max(p[3] for p in people) or 1.0
    half_diag = math.hypot(w, h) / 2

    def score(p: Person) -> float:
        off_centre = math.hypot(p[1] - w / 2, p[2] - h / 2) / half_diag
        return p[3] / biggest + (1.0 - off_centre)

    return max(people, key=score)


def clamp_box(cx: float, cy: float, half: float, w: int, h: int) -> tuple[int, int, int, int]:
    half = max(half, 32.0)
    x0, x1 = max(0, int(cx - half)), min(w, int(cx + half))
    y0, y1 = max(0, int(cy - half)), min(h, int(cy + half))
    if x1 - x0 < 16 or y1 - y0 < 16:
        return 0, 0, w, h
    return x0, y0, x1, y1


def runs(frames: list[int], every: int) -> list[list[int]]:
    """Consecutive sampled frames (``every`` apart) as [first, last] frame ranges."""
    out: list[list[int]] = []
    for f in frames:
        if out and f - out[-1][1] <= every:
            out[-1][1] = f
        else:
            out.append([f, f])
    return out


# ---------------------------------------------------------------------------------------------


def open_video(path: Path) -> tuple[Any, float, int]:
    import cv2  # noqa: PLC0415 - ingest environment only

    if not path.is_file():
        raise WorkerError(EXIT_BAD_INPUT, "unreadable_video", f"no such file: {path}")
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        raise WorkerError(EXIT_BAD_INPUT, "unreadable_video", f"no video stream in {path.name}")
    fourcc = (int(cap.get(cv2.CAP_PROP_FOURCC) or 0) & 0xFFFFFFFF).to_bytes(4, "little")
    if fourcc.decode("latin-1").strip().lower() in TEXT_CODECS:
        cap.release()
        raise WorkerError(EXIT_BAD_INPUT, "unreadable_video", f"{path.name} is text, not a video")
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    return cap, fps, max(count, 0)


def read_frames(
    cap: Any, limit: int, detector: PeopleDetector, every: int, stride: int = 1
) -> Generator[Frame, None, None]:
    """RGB frames, their timestamps (ms) and, every ``every`` frames, the people detected.

    Decoding (10-13 ms a frame for 1080p), the colour conversion and the people detector (65 ms
    on four tiles) run on a thread of their own, so they overlap with MediaPipe Pose on the
    second core. With ``stride`` k > 1 only every k-th frame is decoded to pixels (the others are
    grabbed, not retrieved) and tracked; ``limit`` and ``every`` count tracked frames.
    """
    import cv2  # noqa: PLC0415 - ingest environment only

    frames: queue.Queue[Frame | BaseException | None] = queue.Queue(maxsize=8)
    stop = threading.Event()

    def reader() -> None:
        try:
            n = 0
            while not stop.is_set() and (not limit or n < limit):
                if not all(cap.grab() for _ in range(stride - 1)):
                    break
                ok, frame = cap.read()
                if not ok or frame is None:
                    break
                msec = float(cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0)
                rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                frames.put((rgb, msec, detector.detect(rgb) if n % every == 0 else None))
                n += 1
            frames.put(None)
        except BaseException as e:  # re-raised in the consumer
            frames.put(e)

    thread = threading.Thread(target=reader, name="decode", daemon=True)
    thread.start()
    try:
        while (item := frames.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a reader waiting on a full queue
            try:
                frames.get_nowait()
            except queue.Empty:
                thread.join(0.05)


class CropTracker:
    """The crop around the tracked person, used once several people have been seen.

    Set from the chosen detection on a sampled frame, it then follows the landmarks frame by
    frame (its size bounded around the detector's, so a flip or a wrong pose cannot grow it onto
    somebody else) and is dropped after CROP_LOST_FRAMES frames without a pose.
    """

    def __init__(self) -> None:
        self.box: tuple[int, int, int, int] | None = None
        self.half = self.base_half = 0.0
        self.lost = 0

    def retarget(
        self,
        people: list[Person],
        w: int,
        h: int,
        last_xy: np.ndarray | None,
    ) -> None:
        near = None
        if self.box is not None and last_xy is not None and not np.isnan(last_xy[0, 0]):
            near = (float(np.mean(last_xy[:, 0])) * w, float(np.mean(last_xy[:, 1])) * h)
        _, cx, cy, rad = choose_target(people, w, h, near)
        self.half = self.base_half = CROP_FROM_RADIUS * rad
        self.box = clamp_box(cx, cy, self.half, w, h)
        self.lost = 0

    def follow(self, xy: np.ndarray | None, w: int, h: int) -> None:
        if self.box is None:
            return
        if xy is None:
            self.lost += 1
            if self.lost >= CROP_LOST_FRAMES:
                self.box = None
            return
        self.lost = 0
        px, py = xy[:, 0] * w, xy[:, 1] * h
        extent = max(float(np.ptp(px)), float(np.ptp(py)))
        half = 0.7 * self.half + 0.3 * CROP_FROM_LANDMARKS * extent
        self.half = min(max(half, 0.7 * self.base_half), 1.5 * self.base_half)
        self.box = clamp_box(float(np.mean(px)), float(np.mean(py)), self.half, w, h)


class Track:
    """The per-frame arrays of OUT.npz, appended frame by frame."""

    def __init__(self) -> None:
        self.world: list[np.ndarray] = []
        self.visibility: list[np.ndarray] = []
        self.image: list[np.ndarray] = []
        self.people: list[int] = []
        self.boxes: list[tuple[float, float, float, float]] = []

    def add(self, result: Any, box: tuple[int, int, int, int], w: int, h: int) -> np.ndarray | None:
        """Record one frame's pose (landmarks mapped from the crop to the frame); its image xy."""
        x0, y0, x1, y1 = box
        self.boxes.append((x0 / w, y0 / h, x1 / w, y1 / h))
        if result.pose_landmarks is None or result.pose_world_landmarks is None:
            self.image.append(np.full((N_LANDMARKS, 2), np.nan, np.float32))
            self.visibility.append(np.zeros(N_LANDMARKS, np.float32))
            self.world.append(np.full((N_LANDMARKS, 3), np.nan, np.float32))
            return None
        lms = result.pose_landmarks.landmark
        xy = np.array([(p.x, p.y) for p in lms], np.float32)
        xy[:, 0] = (x0 + xy[:, 0] * (x1 - x0)) / w
        xy[:, 1] = (y0 + xy[:, 1] * (y1 - y0)) / h
        self.image.append(xy)
        self.visibility.append(np.array([p.visibility for p in lms], np.float32))
        world = [(p.x, p.y, p.z) for p in result.pose_world_landmarks.landmark]
        self.world.append(np.array(world, np.float32))
        return xy

    def arrays(self, fps: float, width: int, height: int) -> dict[str, Any]:
        n = len(self.world)
        world = np.stack(self.world).astype(np.float32)
        return {
            "fps": np.float64(fps),
            "width": np.int64(width),
            "height": np.int64(height),
            "n_frames": np.int64(n),
            "world": world,
            "visibility": np.stack(self.visibility).astype(np.float32),
            "image": np.stack(self.image).astype(np.float32),
            "present": ~np.isnan(world[:, 0, 0]),
            "people": np.array(self.people[:n], np.int16),
            "target_box": np.array(self.boxes, np.float32),
        }


def open_pose() -> Any:
    """MediaPipe Pose in tracking mode with the "full" model, the one bundled in the wheel."""
    mp = import_mediapipe()
    model = Path(mp.__file__).parent / "modules" / "pose_landmark" / "pose_landmark_full.tflite"
    if not model.is_file():  # the full model must come from the wheel, never from a download
        raise WorkerError(EXIT_UNEXPECTED, "model_missing", f"bundled model not found: {model}")
    return mp.solutions.pose.Pose(
        static_image_mode=False,
        model_complexity=1,
        smooth_landmarks=True,
        enable_segmentation=False,
        # 0.5, MediaPipe's default, finds a "person" in the corpus's empty table (score 0.51-0.53).
        min_detection_confidence=MIN_PERSON_SCORE,
    )


def report_people(args: argparse.Namespace, events: Events, multi_frames: list[int]) -> None:
    """Refuse (exit 3) or warn about the frame ranges where several people were seen."""
    ranges = runs(multi_frames, args.people_every)
    if not ranges:
        return
    if args.on_multiple == "refuse":
        first, last = ranges[0]
        raise WorkerError(
            EXIT_SEVERAL_PEOPLE,
            "several_people",
            f"{args.video.name}: several people in frames {first}-{last}; film one dancer "
            "or import with --on-multiple warn to track the largest, most central one",
            frames=[first, last],
        )
    events.emit(
        "warning",
        code="several_people",
        message=f"{args.video.name}: several people in frames "
        + ", ".join(f"{a}-{b}" for a, b in ranges)
        + "; tracking the largest, most central one",
        ranges=ranges,
    )


def extract(args: argparse.Namespace, events: Events) -> dict[str, Any]:
    cap, fps, count = open_video(args.video)
    total = min(count, args.max_frames) if args.max_frames and count else count or args.max_frames
    refuse = args.on_multiple == "refuse"
    track, crop = Track(), CropTracker()
    multi_frames: list[int] = []
    last_msec = 0.0
    width = height = 0
    last_xy: np.ndarray | None = None

    pose = open_pose()
    detector = PeopleDetector()
    stride = max(1, math.ceil(fps / args.max_fps - 1e-6)) if args.max_fps > 0 and fps > 0 else 1
    if stride > 1:
        total = math.ceil(total / stride) if total else total
        events.emit("sampling", source_fps=fps, stride=stride, fps=fps / stride)
    frames = read_frames(cap, args.max_frames, detector, args.people_every, stride)
    try:
        for i, (rgb, msec, found) in enumerate(frames):
            last_msec = msec
            h, w = rgb.shape[:2]
            if i == 0:
                width, height = w, h
            n_people = -1
            if found is not None:
                n_people = len(found)
                if n_people > 1:
                    multi_frames.append(i)
                    if not refuse:
                        crop.retarget(found, w, h, last_xy)
            track.people.append(n_people)
            if refuse and multi_frames:
                if n_people in (0, 1):
                    break  # the several-people range has ended
                continue  # only the detector runs from here on: find where the range ends
            result = pose.process(_readonly(rgb, crop.box))
            last_xy = track.add(result, crop.box or (0, 0, w, h), w, h)
            crop.follow(last_xy, w, h)
            if (i + 1) % PROGRESS_EVERY == 0:
                events.emit("progress", frame=i + 1, frames=total)
    finally:
        frames.close()  # stops the decoding thread before the capture is released
        pose.close()
        detector.close()
        cap.release()

    fps /= stride
    if not fps or not math.isfinite(fps) or fps <= 0:
        n = len(track.world)
        fps = (n - 1) / (last_msec / 1000.0) if n > 1 and last_msec > 0 else 30.0
    report_people(args, events, multi_frames)
    if not track.world:
        raise WorkerError(
            EXIT_BAD_INPUT, "no_frames", f"no frame could be read from {args.video.name}"
        )
    return track.arrays(fps, width, height)


def _readonly(rgb: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
    """The frame, or its crop, as the contiguous read-only array MediaPipe takes without a copy."""
    if box is not None:
        x0, y0, x1, y1 = box
        rgb = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    rgb.flags.writeable = False
    return rgb


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    stream = sys.stderr if args.verbose else _silence_native_stderr()
    if not args.verbose:
        os.environ.setdefault("GLOG_minloglevel", "2")
    events = Events(stream)
    started = time.perf_counter()
    try:
        arrays = extract(args, events)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_name(args.out.name + ".part.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(args.out)
    except WorkerError as e:
        events.emit("error", code=e.code, message=e.message, **e.extra)
        return e.exit_code
    except Exception as e:  # never a bare traceback: one JSON line, exit 1
        events.emit("error", code="unexpected", message=f"{type(e).__name__}: {e}")
        return EXIT_UNEXPECTED
    n = int(arrays["n_frames"])
    events.emit(
        "done",
        frames=n,
        present=int(arrays["present"].sum()),
        seconds=round(time.perf_counter() - started, 3),
    )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
