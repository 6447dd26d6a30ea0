"""Estimates from a move's motion alone: tempo, where its counts start, energy, difficulty.

For clips that arrive without labels (``choreo moves import-video``). Motion beats are the local
minima of the smoothed joint speed, as in the Beat Align Score (``planner.candidates``), so an
imported move is measured the way the planner scores it. Energy and difficulty thresholds are
calibrated on the procedural demo library, whose moves carry their labels by construction
(docs/MOVE_LIBRARY.md gives the agreement).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from choreography.moves.skeleton import JOINT_INDEX, PELVIS, Keypoints, centre_on_pelvis
from choreography.planner.candidates import (
    MOTION_SMOOTHING_S,
    joint_speed,
    local_minima,
    smoothed,
)
from schemas.errors import InvalidInput

Floats = npt.NDArray[np.float64]

TEMPO_RANGE: Final = (80.0, 160.0)  # motion tempos are folded (x2, /2) into this octave
STRONG_DEPTH: Final = 0.3  # a strong motion beat dips this share of the peaks beside it
INTERVAL_TOLERANCE: Final = 0.15  # beat intervals within 15 % of each other are one group
QUIET_SHARE: Final = 0.05  # ... and at least this share of the clip's 90th-percentile speed
COUNTS_PER_PHRASE: Final = 8
MIN_COUNTS: Final = 4  # a clip too short for one 8-count may still hold one bar of 4
# Energy: the median speed (joints about the pelvis plus the pelvis's travel) in body heights
# per second; demo-calibrated.
ENERGY_THRESHOLDS: Final = (0.19, 0.45)  # low < first <= medium < second <= high
# Difficulty: a complexity score (see `complexity`); demo-calibrated.
DIFFICULTY_THRESHOLDS: Final = (0.8, 3.8)
TWIST_UNIT: Final = 0.1  # radians of shoulder-against-hip twist (std) worth one point
TURN_WEIGHT: Final = 3.0  # points per whole turn


@dataclass(frozen=True)
class MotionTempo:
    """A tempo found in the motion, and the beats it was read from (seconds)."""

    bpm: float
    beats_s: tuple[float, ...]
    strong_beats_s: tuple[float, ...]


@dataclass(frozen=True)
class CountWindow:
    """Where a move's counts sit in its clip: the first frame and how many frames."""

    start_frame: int
    frames: int
    counts: int


def body_height(keypoints: Keypoints) -> float:
    """Median head-over-lower-ankle height in metres (the scale speeds are measured in)."""
    head = keypoints[:, JOINT_INDEX["head"], 1]
    ankles = keypoints[:, [JOINT_INDEX["l_ankle"], JOINT_INDEX["r_ankle"]], 1].min(axis=1)
    height = float(np.median(head - ankles))
    return height if height > 0.1 else 1.0


def speed_curve(keypoints: Keypoints, fps: float) -> Floats:
    """Mean joint speed (pelvis-centred) smoothed as Bailando's ``calc_db``, in m/s."""
    return smoothed(joint_speed(keypoints, fps), MOTION_SMOOTHING_S * fps)


def strong_minima(speed: Floats) -> npt.NDArray[np.intp]:
    """Local minima of ``speed`` where the motion nearly stops: strong motion beats.

    A minimum is strong when it dips at least ``STRONG_DEPTH`` of the lower of the two peaks
    beside it (the highest points between it and its neighbouring minima), and by at least
    ``QUIET_SHARE`` of the clip's 90th-percentile speed, so a wobble inside one stroke or
    jitter while standing still is no beat. Relative depths keep the beats of a quiet passage
    when the clip also holds a burst (a jump, a flip).
    """
    minima = local_minima(speed)
    if minima.size == 0:
        return minima
    floor = QUIET_SHARE * float(np.percentile(speed, 90))
    bounds = np.concatenate([[0], minima, [speed.size - 1]])
    keep = []
    for k, index in enumerate(minima):
        peak = min(speed[bounds[k] : index + 1].max(), speed[index : bounds[k + 2] + 1].max())
        depth = peak - speed[index]
        if depth >= STRONG_DEPTH * peak and depth >= floor:
            keep.append(index)
    return np.asarray(keep, dtype=np.intp)


def motion_tempo(keypoints: Keypoints, fps: float) -> MotionTempo | None:
    """The tempo of the motion's strong beats (None: fewer than three of them).

    60 / the most common interval between strong motion beats (:func:`beat_interval`), folded
    by octaves into ``TEMPO_RANGE`` (a body marks every beat, every other one, or every half
    beat).
    """
    speed = speed_curve(keypoints, fps)
    beats = tuple(float((i + 0.5) / fps) for i in local_minima(speed))
    strong = tuple(float((i + 0.5) / fps) for i in strong_minima(speed))
    if len(strong) < 3:
        return None
    interval = beat_interval(np.diff(strong))
    if interval <= 0:
        return None
    return MotionTempo(fold_tempo(60.0 / interval), beats, strong)


def beat_interval(intervals: Floats) -> float:
    """The most common interval: the mean of the largest group within ``INTERVAL_TOLERANCE``.

    A clip that dances only part of the time (a walk in, a jump) has a few odd intervals; the
    plain median would be pulled between the groups.
    """
    if intervals.size == 0:
        return 0.0
    near = (
        np.abs(intervals[:, None] - intervals[None, :]) <= INTERVAL_TOLERANCE * intervals[:, None]
    )
    best = int(np.argmax(near.sum(axis=1)))  # first of the largest groups
    return float(np.median(intervals[near[best]]))


def fold_tempo(bpm: float, tempo_range: tuple[float, float] = TEMPO_RANGE) -> float:
    """``bpm`` doubled or halved until it lies in ``[low, high)``."""
    low, high = tempo_range
    while bpm < low:
        bpm *= 2
    while bpm >= high:
        bpm /= 2
    return bpm


def count_window(
    total_frames: int,
    fps: float,
    bpm: float,
    *,
    first_beat_s: float | None,
    counts: int | None = None,
) -> CountWindow:
    """The frames a move of whole counts occupies, starting at the first strong motion beat.

    With ``counts`` given, that many counts; otherwise as many whole 8-counts as fit after the
    first strong beat (one bar of ``MIN_COUNTS`` when not even one 8-count fits). When the
    counts asked for do not fit after the first strong beat, the window starts as late as it
    can. ``InvalidInput`` when the clip is too short.
    """
    if not (bpm > 0 and math.isfinite(bpm)):
        raise InvalidInput(f"bpm: must be a positive number, got {bpm!r}")
    beat_frames = 60.0 / bpm * fps
    start = round(first_beat_s * fps) if first_beat_s is not None else 0
    start = min(max(start, 0), total_frames)
    if counts is None:
        phrases = int((total_frames - start) / (beat_frames * COUNTS_PER_PHRASE) + 1e-6)
        counts = phrases * COUNTS_PER_PHRASE
        if counts == 0:
            counts = MIN_COUNTS
    frames = round(counts * beat_frames)
    if frames > total_frames or frames < 2:
        raise InvalidInput(
            f"counts: {counts} counts at {bpm:g} BPM need {frames / fps:.2f} s; the clip has "
            f"{total_frames / fps:.2f} s with a person (give --bpm and --counts that fit)"
        )
    return CountWindow(min(start, total_frames - frames), frames, counts)


def energy_score(keypoints: Keypoints, fps: float) -> float:
    """Median speed in body heights per second: joints about the pelvis plus its travel."""
    speed = joint_speed(keypoints, fps)
    if speed.size == 0:
        return 0.0
    pelvis = keypoints[:, PELVIS].astype(np.float64)
    travel = np.linalg.norm(np.diff(pelvis, axis=0), axis=-1) * fps
    return float(np.median(speed + travel)) / body_height(keypoints)


def energy_level(keypoints: Keypoints, fps: float) -> str:
    """``low``, ``medium`` or ``high`` from :func:`energy_score`."""
    score = energy_score(keypoints, fps)
    low, high = ENERGY_THRESHOLDS
    return "low" if score < low else "medium" if score < high else "high"


def complexity(keypoints: Keypoints, fps: float) -> float:
    """How much happens at once: limbs moving independently, torso twist and turns.

    Half the independence of the limbs (one minus the correlation of the two wrists' speeds,
    plus the same for the ankles: mirrored limbs move together), plus the torso twist (the
    standard deviation of the shoulder line's yaw against the hip line's, per ``TWIST_UNIT``),
    plus ``TURN_WEIGHT`` per whole turn of the hip line (the range of its yaw). Every curve is
    smoothed as the motion beats are, so landmark jitter does not read as complexity.
    """
    centred = centre_on_pelvis(keypoints).astype(np.float64)
    if centred.shape[0] < 3:
        return 0.0

    sigma = MOTION_SMOOTHING_S * fps

    def limb_speed(joint: str) -> Floats:
        track = centred[:, JOINT_INDEX[joint]]
        return smoothed(np.linalg.norm(np.diff(track, axis=0), axis=-1) * fps, sigma)

    independence = 0.0
    for left, right in (("l_wrist", "r_wrist"), ("l_ankle", "r_ankle")):
        a, b = limb_speed(left), limb_speed(right)
        if a.std() > 1e-6 and b.std() > 1e-6:
            independence += 1.0 - float(np.corrcoef(a, b)[0, 1])
    hips = smoothed(line_yaw(centred, "l_hip", "r_hip"), sigma)
    shoulders = smoothed(line_yaw(centred, "l_shoulder", "r_shoulder"), sigma)
    twist = float(np.std(np.angle(np.exp(1j * (shoulders - hips)))))
    turns = float(np.ptp(hips)) / (2 * np.pi)
    return 0.5 * independence + twist / TWIST_UNIT + TURN_WEIGHT * turns


def difficulty_level(keypoints: Keypoints, fps: float) -> str:
    """A suggested difficulty from :func:`complexity`."""
    score = complexity(keypoints, fps)
    low, high = DIFFICULTY_THRESHOLDS
    return "beginner" if score < low else "intermediate" if score < high else "advanced"


def line_yaw(points: Floats, left: str, right: str) -> Floats:
    """Unwrapped yaw (radians) of the line from joint ``right`` to joint ``left``, per frame."""
    line = points[:, JOINT_INDEX[left]] - points[:, JOINT_INDEX[right]]
    return np.unwrap(np.arctan2(line[:, 2], line[:, 0]))
