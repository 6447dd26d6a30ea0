"""A blueprint's motion as one keypoint sequence, and the figures only that sequence shows.

``assemble_motion`` stitches the used span of every move along the timeline: at window time
``t`` a move plays clip time ``clip_in_s + (t - timeline_start_s) * speed_factor``, linearly
interpolated from its keypoints, mirrored when the blueprint mirrors it, sampled at 60 fps
(AIST++'s rate, which Bailando's Beat Align Score is defined at). A crossfade counts as a cut at
its midpoint, where the blueprint puts it: the dissolve blends pictures, not poses.

Positions are **pelvis-continuous**: each move is shifted on the floor (x, z) so its pelvis
carries on from the previous move's last step; heights are kept (every library move stands on
its own floor). Bailando's motion beats come from the speed of world joint positions, travel
included, so a pelvis-centred sequence would not be Bailando's measure, and one whose moves keep
their own floor positions would add a jump of metres at every cut that nobody sees (each clip is
framed on its own). Foot sliding needs world positions too. The yaw is not carried on: every
library move starts facing +z and its clip shows it so, and the pelvis-centred pose jump at a
cut counts that turn as the viewer sees it.

Figures: the pelvis-centred pose jump at each cut against the median frame step of the two
moves; horizontal ankle speed while a foot is planted, near cuts and inside moves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from choreography.moves.bvh_import import floor_height
from choreography.moves.model import Move
from choreography.moves.skeleton import (
    JOINT_INDEX,
    PELVIS,
    Keypoints,
    centre_on_pelvis,
)
from choreography.planner.candidates import (
    BAS_FPS,
    MOTION_SMOOTHING_S,
    local_minima,
    mirror_pose,
    smoothed,
)
from schemas.blueprint import Blueprint
from schemas.errors import InvalidInput

Floats = npt.NDArray[np.float64]

ANKLES: Final[tuple[int, int]] = (JOINT_INDEX["l_ankle"], JOINT_INDEX["r_ankle"])
# A foot is planted when its ankle is within 5 cm of the height it stands at (GMD's foot-contact
# height, Karunratanakul et al. 2023, taken relative to the standing ankle since the skeleton has
# no toe joint) and moves slower than 0.30 m/s (EDGE's contact label, Tseng et al. 2023: under
# 1 cm a frame at 30 fps).
PLANT_HEIGHT_M: Final[float] = 0.05
PLANT_SPEED_M_S: Final[float] = 0.30
# Steps within 0.1 s of a cut are "near the cut": the cut step and about a third of a beat around
# it at salsa tempi (a beat is 0.27-0.375 s at 160-220 BPM).
CUT_WINDOW_S: Final[float] = 0.1


@dataclass(frozen=True, eq=False)
class AssembledMotion:
    """The whole timeline's keypoints at ``fps``, which move each frame shows, planted feet."""

    keypoints: Keypoints
    """``(frames, joints, 3)``, world coordinates, pelvis-continuous."""
    fps: float
    move_of_frame: npt.NDArray[np.intp]
    """Index into ``moves_used`` of the move each frame shows."""
    planted: npt.NDArray[np.bool_]
    """``(frames, 2)``: left and right foot planted, judged inside each move's own motion."""

    @property
    def cut_frames(self) -> list[int]:
        """First frame of every move after the first."""
        return [int(i) + 1 for i in np.flatnonzero(np.diff(self.move_of_frame) != 0)]


@dataclass(frozen=True)
class CutJump:
    """The pose jump at one cut against how far the two moves move in one frame."""

    time_s: float
    """Window time of the cut (its first new frame)."""
    jump_m: float
    """Mean joint distance between the last pose before and the first after, pelvis-centred."""
    median_step_m: float
    """Median pelvis-centred frame step (mean joint distance) of the two moves' used spans."""

    @property
    def below_median_step(self) -> bool:
        """Whether the cut moves the body less than a typical frame of the two moves does."""
        return self.jump_m < self.median_step_m


@dataclass(frozen=True)
class FootSliding:
    """Mean horizontal ankle speed (m/s) over frame steps with the foot planted at both ends."""

    planted_steps: int
    mean_m_s: float | None
    near_cut_steps: int
    near_cuts_m_s: float | None
    """Steps within ``CUT_WINDOW_S`` of a cut (the cut step included)."""
    inside_steps: int
    inside_moves_m_s: float | None
    """Every other planted step."""

    @property
    def cuts_add_sliding(self) -> bool | None:
        """Whether feet slide faster near cuts than inside moves; ``None`` without both."""
        if self.near_cuts_m_s is None or self.inside_moves_m_s is None:
            return None
        return self.near_cuts_m_s > self.inside_moves_m_s


def assemble_motion(
    blueprint: Blueprint, moves: Mapping[str, Move], fps: float = BAS_FPS
) -> AssembledMotion:
    """Stitch the moves' keypoints along the timeline (see the module docstring)."""
    require_moves(blueprint, moves)
    used = blueprint.moves_used
    times = np.arange(round(used[-1].timeline_end_s * fps)) / fps
    starts = np.array([m.timeline_start_s for m in used])
    which = np.clip(np.searchsorted(starts, times + 1e-9, side="right") - 1, 0, len(used) - 1)
    parts: list[Keypoints] = []
    planted: list[npt.NDArray[np.bool_]] = []
    for index, placed in enumerate(used):
        t = times[which == index]
        if t.size == 0:
            continue
        move = moves[placed.move_id]
        clip_t = placed.clip_in_s + (t - placed.timeline_start_s) * placed.speed_factor
        points = _sample(move, np.clip(clip_t, placed.clip_in_s, placed.clip_out_s))
        if placed.mirror:
            points = np.stack([mirror_pose(pose) for pose in points])
        if parts:
            points = _continue_pelvis(parts[-1], points)
        planted.append(_planted(points, fps, floor_height(move.keypoints)))
        parts.append(points)
    return AssembledMotion(
        keypoints=np.concatenate(parts).astype(np.float32),
        fps=fps,
        move_of_frame=which.astype(np.intp),
        planted=np.concatenate(planted),
    )


def require_moves(blueprint: Blueprint, library: Mapping[str, object]) -> None:
    """``InvalidInput`` naming the blueprint's moves that ``library`` (by move id) lacks."""
    missing = sorted({m.move_id for m in blueprint.moves_used} - set(library))
    if missing:
        raise InvalidInput(f"moves {missing} are not in the move library given")


def _sample(move: Move, clip_t: Floats) -> Keypoints:
    """Keypoints at clip times, linearly interpolated between the move's frames."""
    position = np.clip(clip_t * move.fps, 0, move.frames - 1)
    low = np.floor(position).astype(np.intp)
    high = np.minimum(low + 1, move.frames - 1)
    weight = (position - low)[:, None, None]
    points = move.keypoints.astype(np.float64)
    sampled: Keypoints = ((1 - weight) * points[low] + weight * points[high]).astype(np.float32)
    return sampled


def _continue_pelvis(before: Keypoints, points: Keypoints) -> Keypoints:
    """``points`` shifted on the floor so the pelvis continues ``before``'s last step."""
    last = before[-1, PELVIS].astype(np.float64)
    step = last - before[-2, PELVIS] if len(before) >= 2 else np.zeros(3)
    shift = last + step - points[0, PELVIS]
    shift[1] = 0.0  # heights stay: each move stands on its own floor
    shifted: Keypoints = (points + shift).astype(np.float32)
    return shifted


def _planted(points: Keypoints, fps: float, floor_y: float) -> npt.NDArray[np.bool_]:
    """Per frame and ankle: near the standing height and slow, within this move's frames."""
    ankles = points[:, list(ANKLES)].astype(np.float64)
    low = ankles[:, :, 1] - floor_y < PLANT_HEIGHT_M
    if len(points) < 2:
        return low
    speed = np.linalg.norm(np.gradient(ankles, axis=0), axis=-1) * fps
    planted: npt.NDArray[np.bool_] = low & (speed < PLANT_SPEED_M_S)
    return planted


def bailando_motion_beats(keypoints: Keypoints, fps: float) -> list[float]:
    """Motion beats in seconds, as Bailando's ``calc_db``.

    Mean joint speed of world positions (travel included), Gaussian-smoothed with sigma 5 frames
    at 60 fps, local minima; beat ``i`` is the step from frame ``i`` to ``i + 1``, at ``i / fps``.
    """
    points = np.asarray(keypoints, dtype=np.float64)
    speed = np.linalg.norm(np.diff(points, axis=0), axis=2).mean(axis=1)
    beats = local_minima(smoothed(speed, MOTION_SMOOTHING_S * fps))
    return [float(i / fps) for i in beats]


def frame_steps(motion: AssembledMotion) -> Floats:
    """Pelvis-centred mean joint distance (m) between each frame and the next."""
    centred = centre_on_pelvis(motion.keypoints).astype(np.float64)
    steps: Floats = np.linalg.norm(np.diff(centred, axis=0), axis=2).mean(axis=1)
    return steps


def cut_jumps(motion: AssembledMotion) -> list[CutJump]:
    """The pose jump at every cut, with the median frame step of the moves either side."""
    steps = frame_steps(motion)
    which = motion.move_of_frame
    inside = which[:-1] == which[1:]
    jumps = []
    for cut in motion.cut_frames:
        around = inside & np.isin(which[:-1], (which[cut - 1], which[cut]))
        jumps.append(
            CutJump(
                time_s=cut / motion.fps,
                jump_m=float(steps[cut - 1]),
                median_step_m=float(np.median(steps[around])) if around.any() else 0.0,
            )
        )
    return jumps


def foot_sliding(motion: AssembledMotion, cut_window_s: float = CUT_WINDOW_S) -> FootSliding:
    """Horizontal ankle speed over steps where the foot is planted before and after."""
    ankles = motion.keypoints[:, list(ANKLES)][:, :, [0, 2]].astype(np.float64)
    slide = np.linalg.norm(np.diff(ankles, axis=0), axis=-1) * motion.fps
    planted = motion.planted[:-1] & motion.planted[1:]
    # Step k (frame k to k + 1) is near a cut at frame c when |k + 1 - c| <= the window in frames;
    # the cut step itself is k = c - 1.
    step_index = np.arange(len(slide)) + 1
    near = np.zeros(len(slide), dtype=bool)
    for cut in motion.cut_frames:
        near |= np.abs(step_index - cut) <= cut_window_s * motion.fps
    near_planted = planted & near[:, None]
    inside_planted = planted & ~near[:, None]
    return FootSliding(
        planted_steps=int(planted.sum()),
        mean_m_s=_mean(slide[planted]),
        near_cut_steps=int(near_planted.sum()),
        near_cuts_m_s=_mean(slide[near_planted]),
        inside_steps=int(inside_planted.sum()),
        inside_moves_m_s=_mean(slide[inside_planted]),
    )


def _mean(values: Floats) -> float | None:
    return float(values.mean()) if values.size else None
