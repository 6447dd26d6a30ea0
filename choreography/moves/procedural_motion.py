"""Procedural dance motion on the canonical skeleton, for the demo library.

A move is a leg pattern (a looping schedule of foot steps) plus an arm pattern, timed in beats.
Every part of the body is driven by a beat clock eased per count (``_hit_counts``), so each limb
arrives on a count and is still there for an instant: the joint-speed minima (motion beats) sit
on the counts. Energy scales amplitude and bounce rate; difficulty adds independent limbs:
beginner arms mirror each other on the beat, intermediate arms run a beat apart with a torso
counter-twist, advanced moves add syncopation (in the second half the arms also hit every "and")
and a full turn on counts 5-6. Knees come from two-bone IK, and the pelvis drops whenever a foot
would be out of reach.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from choreography.moves.skeleton import JOINTS, Keypoints

Array = npt.NDArray[np.float64]

AMPLITUDE: Final = {"low": 0.5, "medium": 0.8, "high": 1.1}
BOUNCE_PERIOD_BEATS: Final = {"low": 2.0, "medium": 1.0, "high": 0.5}
UPPER_ARM, FOREARM, THIGH, SHIN = 0.28, 0.25, 0.43, 0.44
STANCE_X, ANKLE_Y, STANDING_PELVIS_Y = 0.12, 0.08, 0.97
HOLD: Final = 0.1  # share of a count, on each side of it, that a hit holds still

# (foot, start beat, end beat, dx, dz) per loop; every foot's steps sum to zero so loops close.
# dx/dz are in units of the step size; +x is the dancer's left, +z forward. Steps start and land
# on counts (kicks extend on the "and"), so a foot is never still between counts.
LEG_PATTERNS: Final[dict[str, tuple[float, tuple[tuple[str, float, float, float, float], ...]]]] = {
    "bounce": (4.0, ()),
    "step-touch": (4.0, (("r", 0, 1, -1, 0), ("l", 1, 2, -1, 0),
                         ("l", 2, 3, 1, 0), ("r", 3, 4, 1, 0))),
    "rock": (4.0, (("l", 0, 1, 0, 1), ("l", 1, 2, 0, -1),
                   ("r", 2, 3, 0, 1), ("r", 3, 4, 0, -1))),
    # Salsa: break, replace (a weight change in place), close, hold on 4 and 8.
    "salsa-basic": (8.0, (("l", 0, 1, 0, 1), ("r", 1, 2, 0, 0), ("l", 2, 3, 0, -1),
                          ("r", 4, 5, 0, -1), ("l", 5, 6, 0, 0), ("r", 6, 7, 0, 1))),
    "side-basic": (8.0, (("l", 0, 1, 1, 0), ("r", 1, 2, 0, 0), ("l", 2, 3, -1, 0),
                         ("r", 4, 5, -1, 0), ("l", 5, 6, 0, 0), ("r", 6, 7, 1, 0))),
    "kick": (4.0, (("r", 1, 1.5, 0, 1.4), ("r", 1.5, 2, 0, -1.4),
                   ("l", 3, 3.5, 0, 1.4), ("l", 3.5, 4, 0, -1.4))),
    "lunge": (8.0, (("r", 0, 2, -1.6, 0), ("r", 2, 4, 1.6, 0),
                    ("l", 4, 6, 1.6, 0), ("l", 6, 8, -1.6, 0))),
}  # fmt: skip
ARM_PATTERNS: Final = ("pump", "wave", "punch", "clap", "reach", "frame")


@dataclass(frozen=True)
class MotionRecipe:
    """Everything that decides a procedural move's motion."""

    leg_pattern: str
    arm_pattern: str
    difficulty: str
    energy: str
    bpm: float
    counts: int = 8
    fps: float = 30.0
    seed: int = 0


def _smoothstep(b: Array, start: float, end: float) -> Array:
    x = np.clip((b - start) / (end - start), 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _hit_counts(b: Array, every: float = 1.0) -> Array:
    """Beats eased within each ``every`` beats: motion driven by it holds briefly on that grid."""
    whole = np.floor(b / every)
    # A short hold centres the speed minimum on the count even when limbs arrive faster than
    # they leave (the Gaussian-smoothed speed would otherwise drift towards the slower side).
    return every * (whole + _smoothstep(b / every - whole, HOLD, 1.0 - HOLD))


def _pulse(b: Array, period: float, phase: float = 0.0) -> Array:
    """0 on the beat grid of ``period``, 1 half-way between: a knee bounce."""
    return (1.0 - np.cos(2.0 * np.pi * (b - phase) / period)) / 2.0


def _rotation_y(angle: Array) -> Array:
    c, s, one, zero = np.cos(angle), np.sin(angle), np.ones_like(angle), np.zeros_like(angle)
    return np.stack([np.stack([c, zero, s], -1), np.stack([zero, one, zero], -1),
                     np.stack([-s, zero, c], -1)], -2)  # fmt: skip


def _rotation_z(angle: Array) -> Array:
    c, s, one, zero = np.cos(angle), np.sin(angle), np.ones_like(angle), np.zeros_like(angle)
    return np.stack([np.stack([c, -s, zero], -1), np.stack([s, c, zero], -1),
                     np.stack([zero, zero, one], -1)], -2)  # fmt: skip


def _apply(rotation: Array, vector: Array | tuple[float, float, float]) -> Array:
    vec = np.broadcast_to(np.asarray(vector, dtype=np.float64), rotation.shape[:-1])
    rotated: Array = np.einsum("fij,fj->fi", rotation, vec)
    return rotated


def _feet(pattern: str, b: Array, step: float, lift: float) -> tuple[Array, Array]:
    period, schedule = LEG_PATTERNS[pattern]
    loop = np.mod(b, period)
    feet = {side: np.zeros((b.size, 3)) for side in ("l", "r")}
    feet["l"][:, 0], feet["r"][:, 0] = STANCE_X, -STANCE_X
    for side, start, end, dx, dz in schedule:
        progress = _smoothstep(loop, start, end)
        feet[side][:, 0] += dx * step * progress
        feet[side][:, 2] += dz * step * progress
        within = (loop >= start) & (loop <= end)
        # sin^2, not sin: the foot leaves and lands with zero vertical speed, on the count.
        arc = lift * np.sin(np.pi * (loop - start) / (end - start)) ** 2
        feet[side][:, 1] += np.where(within, arc, 0.0)
    feet["l"][:, 1] += ANKLE_Y
    feet["r"][:, 1] += ANKLE_Y
    return feet["l"], feet["r"]


def _arm_angles(pattern: str, b: Array, amp: float, side: int) -> tuple[Array, Array, Array]:
    """Elevation (0 = hanging), azimuth (0 = sideways, pi/2 = forward) and elbow bend."""
    ones = np.ones_like(b)
    if pattern == "pump":
        return 0.5 + 0.9 * amp * _pulse(b, 1.0), 0.9 * ones, 1.6 * ones
    if pattern == "wave":
        wave = np.sin(2 * np.pi * b / 4 + (0 if side > 0 else np.pi / 2))
        return 1.4 + 0.7 * amp * wave, 0.2 * ones, 0.7 + 0.5 * np.cos(np.pi * b)
    if pattern == "punch":  # out on odd counts, back on even ones; arms a beat apart alternate
        extension = _pulse(b, 2.0) * min(1.0, amp)
        return 1.2 + 0.3 * extension, 1.45 * ones, 2.0 - 1.8 * extension
    if pattern == "clap":
        meet = 1.0 - _pulse(b, 1.0)
        return 0.9 + 0.5 * amp * meet, 1.1 + 0.5 * meet, 0.9 * ones
    if pattern == "reach":
        return 0.5 + 2.0 * amp * _pulse(b, 8.0), 0.5 * ones, 0.3 + 0.3 * _pulse(b, 4.0)
    if pattern == "frame":
        return 0.9 + 0.2 * amp * _pulse(b, 2.0), 1.2 * ones, 1.3 + 0.2 * np.cos(np.pi * b)
    raise ValueError(f"unknown arm pattern {pattern!r}; one of {list(ARM_PATTERNS)}")


def _arm(
    shoulder: Array, torso: Array, angles: tuple[Array, Array, Array], side: int
) -> tuple[Array, Array]:
    elevation, azimuth, bend = angles
    upper = np.stack([side * np.sin(elevation) * np.cos(azimuth), -np.cos(elevation),
                      np.sin(elevation) * np.sin(azimuth)], -1)  # fmt: skip
    # The forearm bends towards forward-and-up, like a dancer's elbow does.
    target = np.array([0.0, 0.6, 0.8])
    toward = target - (upper @ target)[:, None] * upper
    norm = np.linalg.norm(toward, axis=-1, keepdims=True)
    toward = np.where(norm > 1e-6, toward / np.maximum(norm, 1e-6), [0.0, 1.0, 0.0])
    fore = np.cos(bend)[:, None] * upper + np.sin(bend)[:, None] * toward
    elbow = shoulder + UPPER_ARM * _apply(torso, upper)
    return elbow, elbow + FOREARM * _apply(torso, fore)


def _knee(hip: Array, ankle: Array, forward: Array) -> tuple[Array, Array]:
    reach = ankle - hip
    distance = np.linalg.norm(reach, axis=-1, keepdims=True)
    limit = (THIGH + SHIN) * 0.999
    along = reach / np.maximum(distance, 1e-6)
    distance = np.clip(distance, abs(THIGH - SHIN) + 1e-3, limit)
    x = (THIGH**2 - SHIN**2 + distance**2) / (2 * distance)
    height = np.sqrt(np.maximum(THIGH**2 - x**2, 0.0))
    bend = forward - np.sum(forward * along, axis=-1, keepdims=True) * along
    bend /= np.maximum(np.linalg.norm(bend, axis=-1, keepdims=True), 1e-6)
    return hip + along * x + bend * height, hip + along * distance


def generate_keypoints(recipe: MotionRecipe) -> Keypoints:
    """Keypoints ``(frames, joints, 3)`` of one procedural move, deterministic for a recipe."""
    rng = np.random.default_rng(recipe.seed)
    frames = max(2, round(recipe.counts * 60.0 / recipe.bpm * recipe.fps))
    raw = np.arange(frames) / recipe.fps * recipe.bpm / 60.0
    b = _hit_counts(raw)  # everything below stops on the counts
    amp = AMPLITUDE[recipe.energy] * rng.uniform(0.92, 1.08)
    advanced, independent = recipe.difficulty == "advanced", recipe.difficulty != "beginner"
    # Syncopation: in the second half the arms also hit every "and"; both clocks meet at the
    # middle count, so the switch is seamless, and the counts stay the strongest stops.
    accent = np.where(advanced & (raw >= recipe.counts / 2), _hit_counts(raw, 0.5), b)
    yaw = 2 * np.pi * _smoothstep(b, 4.0, 6.0) if advanced else np.zeros_like(b)
    twist = 0.3 * amp * np.cos(np.pi * b) if independent else np.zeros_like(b)
    sway = 0.06 * amp * np.sin(np.pi * b / 2 + rng.uniform(0, 0.5))
    left_foot, right_foot = _feet(recipe.leg_pattern, b, 0.22 * amp, 0.05 + 0.05 * amp)
    if recipe.leg_pattern == "kick":
        right_foot[:, 1] += 0.15 * amp * np.clip(right_foot[:, 2], 0, None) / 0.3
        left_foot[:, 1] += 0.15 * amp * np.clip(left_foot[:, 2], 0, None) / 0.3
    body_yaw = _rotation_y(yaw)
    ground = (left_foot + right_foot) / 2 * np.array([1.0, 0.0, 1.0])
    period = BOUNCE_PERIOD_BEATS[recipe.energy]
    bounce = 0.05 * amp * _pulse(b, period, period / 2)  # down on the counts
    pelvis_y = np.full(frames, STANDING_PELVIS_Y) - bounce
    for foot in (left_foot, right_foot):  # drop the pelvis until each foot is within reach
        offset = foot - ground
        lateral = np.hypot(offset[:, 0] - np.sign(offset[:, 0]) * 0.10, offset[:, 2])
        reach = np.sqrt(np.maximum((0.97 * (THIGH + SHIN)) ** 2 - lateral**2, 0.01))
        pelvis_y = np.minimum(pelvis_y, foot[:, 1] + 0.05 + reach)
    # Turns pivot about the point between the feet, so a turn does not also travel.
    pelvis = ground + np.stack([np.zeros(frames), pelvis_y, np.zeros(frames)], -1)
    torso = _rotation_y(yaw + twist) @ _rotation_z(sway)
    neck = pelvis + _apply(torso, (0.0, 0.5, 0.0))
    joints: dict[str, Array] = {
        "pelvis": pelvis,
        "spine": pelvis + _apply(torso, (0.0, 0.25, 0.0)),
        "neck": neck,
        "head": neck + _apply(torso, (0.0, 0.18, 0.0)),
    }
    forward = _apply(body_yaw, (0.0, 0.0, 1.0))
    for prefix, side, foot in (("l", 1, left_foot), ("r", -1, right_foot)):
        shoulder = neck + _apply(torso, (side * 0.19, -0.03, 0.0))
        phase = accent + (1.0 if independent and side < 0 else 0.0)
        angles = _arm_angles(recipe.arm_pattern, phase, amp, side)
        joints[f"{prefix}_shoulder"] = shoulder
        joints[f"{prefix}_elbow"], joints[f"{prefix}_wrist"] = _arm(shoulder, torso, angles, side)
        hip = pelvis + _apply(body_yaw, (side * 0.10, -0.05, 0.0))
        ankle_target = ground + _apply(body_yaw, foot - ground)
        joints[f"{prefix}_hip"] = hip
        joints[f"{prefix}_knee"], joints[f"{prefix}_ankle"] = _knee(hip, ankle_target, forward)
    out = np.stack([joints[name] for name in JOINTS], axis=1)
    result: Keypoints = out.astype(np.float32)
    return result
