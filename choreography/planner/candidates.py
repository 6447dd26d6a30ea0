"""What the planner knows about a candidate move: metadata, edge poses, motion beats, score.

A ``MoveCandidate`` is built from a library ``Move`` and its search score
(:func:`candidate_from_move`) or directly (tests, other sources). It keeps a motion summary
(pelvis-centred start/end poses and the motion beats in clip seconds) rather than the whole
keypoint array, so candidate sets stay small and the planner stays cheap.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from choreography.moves.model import DIFFICULTIES, ENERGIES, ENERGY_VALUES, Move, next_move_of
from choreography.moves.skeleton import JOINTS, NUM_JOINTS, centre_on_pelvis
from schemas.errors import InvalidInput

Pose = npt.NDArray[np.float32]
Floats = npt.NDArray[np.float64]

# Bailando's Beat Align Score works in frames at AIST++'s 60 fps with a Gaussian of 3 frames.
BAS_FPS: Final[float] = 60.0
BAS_SIGMA_FRAMES: Final[float] = 3.0
# Bailando smooths joint speed with a Gaussian of 5 frames at AIST++'s 60 fps: 1/12 s.
MOTION_SMOOTHING_S: Final[float] = 5 / 60
# A trailing "(...)" in a move's name names a variant of its family.
_VARIANT: Final = re.compile(r"\s*\([^()]*\)\s*$")
# Left/right joint pairs swap places when a pose is mirrored.
_MIRROR_ORDER: Final[list[int]] = [
    JOINTS.index(name.replace("l_", "\0").replace("r_", "l_").replace("\0", "r_"))
    for name in JOINTS
]


@dataclass(frozen=True, eq=False)
class MoveCandidate:
    """A move the search returned for this request, with its score and motion summary."""

    move_id: str
    name: str
    clip_uri: str
    style: str
    difficulty: str
    energy: str
    tempo_bpm: float
    counts: int
    clip_duration_s: float
    start_pose: Pose
    end_pose: Pose
    score: float
    motion_beats_s: tuple[float, ...] = field(default_factory=tuple)
    next_move_id: str | None = None
    """The move that continues this one in the capture both were cut from (``next:`` tag)."""
    """Local minima of joint speed, in clip seconds (for the Beat Align Score)."""

    def __post_init__(self) -> None:
        if self.difficulty not in DIFFICULTIES:
            raise InvalidInput(f"candidate {self.move_id}: unknown difficulty {self.difficulty!r}")
        if self.energy not in ENERGIES:
            raise InvalidInput(f"candidate {self.move_id}: unknown energy {self.energy!r}")
        for name in ("tempo_bpm", "clip_duration_s", "score"):
            value = getattr(self, name)
            if not math.isfinite(value) or (name != "score" and value <= 0):
                raise InvalidInput(f"candidate {self.move_id}: {name} must be finite and > 0")
        if isinstance(self.counts, bool) or not isinstance(self.counts, int) or self.counts < 1:
            raise InvalidInput(f"candidate {self.move_id}: counts must be a positive integer")
        for name in ("start_pose", "end_pose"):
            pose = np.asarray(getattr(self, name), dtype=np.float32)
            if pose.shape != (NUM_JOINTS, 3) or not np.all(np.isfinite(pose)):
                raise InvalidInput(
                    f"candidate {self.move_id}: {name} must be finite with shape "
                    f"({NUM_JOINTS}, 3), got {pose.shape}"
                )
            object.__setattr__(self, name, pose)

    @property
    def beat_alignment(self) -> float:
        """How well the motion beats sit on the move's own counts: Beat Align Score in [0, 1].

        Bailando's BA with the counts (``k * 60 / tempo_bpm``) as music beats, sigma 3 frames at
        60 fps; a uniform speed change scales both, so this carries over to the song's beats.
        """
        if not self.motion_beats_s:
            return 0.0
        counts = np.arange(self.counts) * 60.0 / self.tempo_bpm * BAS_FPS
        motion = np.asarray(self.motion_beats_s) * BAS_FPS
        nearest = np.min((motion[None, :] - counts[:, None]) ** 2, axis=1)
        return float(np.mean(np.exp(-nearest / (2 * BAS_SIGMA_FRAMES**2))))

    @property
    def family(self) -> str:
        """Variants of one move share it and count as one for variety (``move_family``)."""
        return move_family(self.name) or self.move_id

    @property
    def energy_value(self) -> float:
        """The energy level as a number in [0, 1] (the middle of its third)."""
        return ENERGY_VALUES[self.energy]


def move_family(name: str) -> str:
    """The family of a move named ``name``: the name without a trailing parenthesised variant.

    The demo library names variants "Rock Punch (advanced, low)", so its variants share the
    family ``rock-punch``; a library whose names carry no variant (a motion-capture take's
    "salsa-03 part 2") gives every move a family of its own.
    """
    stem = _VARIANT.sub("", name)
    return "-".join(re.findall(r"[a-z0-9]+", stem.lower()))


def candidate_from_move(move: Move, score: float) -> MoveCandidate:
    """A candidate from a library move and its search score (poses and beats from keypoints)."""
    return MoveCandidate(
        move_id=move.move_id,
        name=move.name,
        clip_uri=move.clip_uri,
        style=move.style,
        difficulty=move.difficulty,
        energy=move.energy,
        tempo_bpm=move.tempo_bpm,
        counts=move.counts,
        clip_duration_s=move.duration_s,
        start_pose=move.start_pose,
        end_pose=move.end_pose,
        score=float(score),
        motion_beats_s=tuple(motion_beats(move.keypoints, move.fps)),
        next_move_id=next_move_of(move.tags),
    )


def joint_speed(keypoints: npt.ArrayLike, fps: float) -> Floats:
    """Mean joint speed per frame step (m/s), pelvis-centred so travel does not count."""
    points = centre_on_pelvis(np.asarray(keypoints, dtype=np.float32))
    if points.shape[0] < 2:
        return np.zeros(0)
    steps = np.linalg.norm(np.diff(points.astype(np.float64), axis=0), axis=2)
    speed: Floats = steps.mean(axis=1) * fps
    return speed


def smoothed(values: Floats, sigma_samples: float) -> Floats:
    """Gaussian smoothing as ``scipy.ndimage.gaussian_filter1d`` (reflect edges, 4 sigma)."""
    if values.size == 0 or sigma_samples <= 0:
        return values.astype(np.float64)
    radius = max(1, int(4.0 * sigma_samples + 0.5))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma_samples) ** 2)
    kernel /= kernel.sum()
    # "symmetric" padding is scipy's "reflect" mode (the edge sample is repeated).
    padded = np.pad(values.astype(np.float64), radius, mode="symmetric")
    if padded.size < values.size + 2 * radius:  # very short input: pad by repetition
        padded = np.resize(padded, values.size + 2 * radius)
    out: Floats = np.convolve(padded, kernel, mode="valid")
    return out


def local_minima(values: Floats) -> npt.NDArray[np.intp]:
    """Indices strictly lower than both neighbours (``argrelextrema(values, np.less)``)."""
    if values.size < 3:
        return np.zeros(0, dtype=np.intp)
    inner = values[1:-1]
    return np.flatnonzero((inner < values[:-2]) & (inner < values[2:])) + 1


def motion_beats(keypoints: npt.ArrayLike, fps: float) -> list[float]:
    """Motion beats in seconds: local minima of smoothed joint speed, as Bailando's ``calc_db``."""
    speed = smoothed(joint_speed(keypoints, fps), MOTION_SMOOTHING_S * fps)
    # speed[i] is the step from frame i to i + 1; its time is the midpoint of the step.
    return [float((i + 0.5) / fps) for i in local_minima(speed)]


def mirror_pose(pose: Pose) -> Pose:
    """The pose seen in a mirror: x negated and left/right joints swapped."""
    mirrored = np.asarray(pose, dtype=np.float32)[_MIRROR_ORDER].copy()
    mirrored[:, 0] *= -1
    return mirrored


def pose_distance(a: Pose, b: Pose) -> float:
    """Mean joint distance in metres between two pelvis-centred poses."""
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b), axis=1).mean())
