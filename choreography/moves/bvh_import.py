"""From a BVH capture to moves: map joints to the canonical skeleton, check the frame rate,
split into moves of whole counts, and put each move in a canonical frame (facing +z, on the floor).

The frame-rate check exists because CMU conversions are known to write ``Frame Time: .0083333``
(120 fps) for takes captured at 60 fps. It counts steps (foot-travel episodes) and converts them
to a cadence under each candidate rate: sustained social dancing steps at roughly 0.8-2.8 steps
per second; a cadence above that is running, so the header rate is rejected for half of it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from choreography.moves.bundle import MoveDraft
from choreography.moves.bvh import BvhMotion, read_bvh, world_positions
from choreography.moves.skeleton import JOINT_INDEX, JOINTS, PELVIS, Keypoints
from schemas.errors import InvalidInput

log = logging.getLogger(__name__)

# Daz/SecondLife names (CMU conversions by Bruce Hahne) first, then MotionBuilder-style names.
SOURCE_JOINTS: dict[str, tuple[str, ...]] = {
    "pelvis": ("hip", "Hips"),
    "spine": ("chest", "Spine1", "Spine"),
    "neck": ("neck", "Neck"),
    "head": ("head", "Head"),
    "l_shoulder": ("lShldr", "LeftArm"),
    "l_elbow": ("lForeArm", "LeftForeArm"),
    "l_wrist": ("lHand", "LeftHand"),
    "r_shoulder": ("rShldr", "RightArm"),
    "r_elbow": ("rForeArm", "RightForeArm"),
    "r_wrist": ("rHand", "RightHand"),
    "l_hip": ("lThigh", "LeftUpLeg"),
    "l_knee": ("lShin", "LeftLeg"),
    "l_ankle": ("lFoot", "LeftFoot"),
    "r_hip": ("rThigh", "RightUpLeg"),
    "r_knee": ("rShin", "RightLeg"),
    "r_ankle": ("rFoot", "RightFoot"),
}
PLAUSIBLE_CADENCE = (0.8, 2.8)  # steps per second for sustained social dancing
COMMON_RATES = (24.0, 25.0, 30.0, 48.0, 50.0, 60.0, 100.0, 120.0, 240.0)
ANKLE_HEIGHT_M = 0.08  # ankle joint above the floor when standing, as in skeleton.rest_pose


@dataclass(frozen=True)
class FrameRateFinding:
    """The frame rate chosen for a capture and the evidence for it."""

    fps: float
    header_fps: float
    steps: int
    cadence: dict[float, float]  # candidate fps -> steps per second
    pelvis_speed: dict[float, float]  # candidate fps -> median pelvis speed, m/s
    reason: str


def canonical_keypoints(motion: BvhMotion) -> Keypoints:
    """World positions ``(frames, joints, 3)`` of the canonical joints, float32."""
    names = {joint.name: i for i, joint in enumerate(motion.joints)}
    picks: list[int] = []
    for joint in JOINTS:
        found = next((names[n] for n in SOURCE_JOINTS[joint] if n in names), None)
        if found is None:
            raise InvalidInput(
                f"{motion.source}: no joint for canonical {joint!r} (looked for "
                f"{', '.join(SOURCE_JOINTS[joint])})"
            )
        picks.append(found)
    return world_positions(motion)[:, picks, :].astype(np.float32)


def count_steps(keypoints: Keypoints) -> int:
    """Foot-travel episodes of both ankles (a step = one foot moving across the floor)."""
    total = 0
    for ankle in ("l_ankle", "r_ankle"):
        floor_track = keypoints[:, JOINT_INDEX[ankle]][:, [0, 2]]
        speed = np.linalg.norm(np.diff(floor_track, axis=0), axis=-1)  # metres per frame
        speed = np.convolve(speed, np.ones(5) / 5, mode="same")
        reference = float(np.percentile(speed, 95)) if speed.size else 0.0
        total += _episodes(speed, high=0.35 * reference, low=0.15 * reference, min_frames=4)
    return total


def _episodes(signal: npt.NDArray[np.floating], high: float, low: float, min_frames: int) -> int:
    # Hysteresis: an episode starts above `high` and ends below `low`, so jitter is not a step.
    count, start, active = 0, 0, False
    for i, value in enumerate(signal):
        if not active and value > high:
            active, start = True, i
        elif active and value < low:
            active = False
            count += int(i - start >= min_frames)
    return count


def header_rate(frame_time_s: float) -> float:
    """Frames per second from a BVH ``Frame Time``, snapped to a common rate within 0.1 %."""
    fps = 1.0 / frame_time_s
    nearest = min(COMMON_RATES, key=lambda rate: abs(rate - fps))
    # Files print the frame time with ~6 digits (0.008333 is 120.005 fps): that is rounding.
    return nearest if abs(nearest - fps) / nearest < 1e-3 else fps


def detect_frame_rate(keypoints: Keypoints, header_fps: float) -> FrameRateFinding:
    """Choose between the header rate and half of it from the stepping cadence."""
    frames = keypoints.shape[0]
    steps = count_steps(keypoints)
    candidates = (header_fps, header_fps / 2)
    cadence = {fps: steps / (frames / fps) for fps in candidates}
    pelvis_step = np.linalg.norm(np.diff(keypoints[:, PELVIS], axis=0), axis=-1)
    median_step = float(np.median(pelvis_step)) if pelvis_step.size else 0.0
    pelvis_speed = {fps: median_step * fps for fps in candidates}
    low, high = PLAUSIBLE_CADENCE
    plausible = [fps for fps in candidates if low <= cadence[fps] <= high]
    if header_fps in plausible:
        chosen, why = header_fps, "header rate gives a plausible cadence"
    elif plausible:
        chosen = plausible[0]
        why = (
            f"header rate gives {cadence[header_fps]:.2f} steps/s (outside {low}-{high}); "
            f"{chosen:g} fps gives {cadence[chosen]:.2f} steps/s"
        )
    else:
        chosen, why = header_fps, "no candidate gives a plausible cadence; kept the header rate"
    return FrameRateFinding(chosen, header_fps, steps, cadence, pelvis_speed, why)


def facing_yaw(keypoints: Keypoints) -> float:
    """The yaw (radians) that turns the mean hip line of ``keypoints`` onto +x (facing +z)."""
    hips = keypoints[:, JOINT_INDEX["l_hip"]] - keypoints[:, JOINT_INDEX["r_hip"]]
    floor = hips[:, [0, 2]]
    directions = floor / np.maximum(np.linalg.norm(floor, axis=1)[:, None], 1e-9)
    left = directions.mean(axis=0)
    return float(np.arctan2(left[1], left[0]))


def canonical_frame(
    keypoints: Keypoints, fps: float, floor_y: float, yaw: float | None = None
) -> Keypoints:
    """Rotate about y by ``yaw`` (default: so the dancer faces +z at the start), pelvis over the
    origin, floor at 0."""
    window = max(1, round(0.1 * fps))
    angle = facing_yaw(keypoints[:window]) if yaw is None else yaw
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=np.float64)
    start = keypoints[:window, PELVIS].mean(axis=0)
    shifted = keypoints.astype(np.float64) - np.array([start[0], floor_y, start[2]])
    turned = shifted @ rotation.T
    turned[:, :, 1] += ANKLE_HEIGHT_M
    result: Keypoints = turned.astype(np.float32)
    return result


def floor_height(keypoints: Keypoints) -> float:
    """Height of the floor under the ankles: a low percentile, so one glitch frame cannot set it."""
    ankles = keypoints[:, [JOINT_INDEX["l_ankle"], JOINT_INDEX["r_ankle"]], 1]
    return float(np.percentile(ankles.min(axis=1), 5))


def split_counts(
    keypoints: Keypoints, fps: float, bpm: float, counts: int, start_s: float = 0.0
) -> list[tuple[float, Keypoints]]:
    """Consecutive windows of ``counts`` beats at ``bpm``: (start second, keypoints) each."""
    if bpm <= 0 or counts < 1:
        raise InvalidInput(f"bpm and counts must be positive, got bpm={bpm}, counts={counts}")
    length = round(counts * 60.0 / bpm * fps)
    first = round(start_s * fps)
    if length < 2 or first + length > keypoints.shape[0]:
        raise InvalidInput(
            f"a move of {counts} counts at {bpm} BPM needs {length} frames at {fps:g} fps from "
            f"{start_s} s; the capture has {keypoints.shape[0]} frames"
        )
    starts = range(first, keypoints.shape[0] - length + 1, length)
    return [(i / fps, keypoints[i : i + length]) for i in starts]


def slug(text: str) -> str:
    """A move-id-safe slug of ``text`` (lowercase, runs of other characters become '-')."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return cleaned[:48] or "bvh"


def drafts_from_bvh(
    path: Path,
    options: BvhSplitOptions,
) -> tuple[FrameRateFinding, list[MoveDraft]]:
    """Read a BVH capture and cut it into moves of ``options.counts`` beats, ready to render."""
    motion = read_bvh(path)
    keypoints = canonical_keypoints(motion) * np.float32(options.scale)
    finding = detect_frame_rate(keypoints, header_rate(motion.frame_time_s))
    if options.fps is not None:
        finding = replace(finding, fps=options.fps, reason=f"set by the caller ({options.fps:g})")
    log.info(
        "%s: %d frames, header %g fps; using %g fps: %s (steps %d, cadence %s, median pelvis "
        "speed %s)", path, motion.frames, finding.header_fps, finding.fps, finding.reason,
        finding.steps, {f"{k:g} fps": round(v, 2) for k, v in finding.cadence.items()},
        {f"{k:g} fps": f"{v:.2f} m/s" for k, v in finding.pelvis_speed.items()},
    )  # fmt: skip
    floor = floor_height(keypoints)
    head = float(np.median(keypoints[:, JOINT_INDEX["head"], 1])) - floor + ANKLE_HEIGHT_M
    log.info("%s: median head-joint height %.2f m (an adult's is about 1.5-1.6 m)", path, head)
    prefix = options.id_prefix or slug(path.stem)
    drafts = []
    parts = split_counts(keypoints, finding.fps, options.bpm, options.counts, options.start_s)
    for number, (start, part) in enumerate(parts, start=1):
        end = start + part.shape[0] / finding.fps
        drafts.append(
            MoveDraft(
                move_id=f"{prefix}-{number:02d}",
                name=f"{path.stem} part {number}",
                description=(
                    f"Motion capture {path.name}, {start:.2f}-{end:.2f} s at {finding.fps:g} fps "
                    f"(header said {finding.header_fps:g}); {options.counts} counts at "
                    f"{options.bpm:g} BPM."
                ),
                style=options.style,
                difficulty=options.difficulty,
                energy=options.energy,
                tempo_bpm=options.bpm,
                counts=options.counts,
                keypoints=canonical_frame(part, finding.fps, floor),
                fps=finding.fps,
                tags=("mocap", "bvh", slug(path.stem)),
            )
        )
    return finding, drafts


@dataclass(frozen=True)
class BvhSplitOptions:
    """How ``drafts_from_bvh`` cuts and labels a capture."""

    bpm: float
    counts: int = 8
    style: str = "salsa"
    difficulty: str = "intermediate"
    energy: str = "medium"
    start_s: float = 0.0
    fps: float | None = None  # overrides the frame-rate check
    scale: float = 1.0  # multiply positions, for captures whose unit is not metres
    id_prefix: str | None = None
