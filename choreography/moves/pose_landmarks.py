"""From MediaPipe Pose landmarks to the project's 16-joint skeleton: map, fill gaps, smooth.

MediaPipe's ``pose_world_landmarks`` are 33 points in metres, centred on the hips, with x to
the image's right, y **down** and z growing away from the camera. The skeleton
(:mod:`choreography.moves.skeleton`) has y up and the dancer facing +z (towards the camera), so
a point maps as ``(x, -y, -z)`` (a half turn about x: still right-handed). MediaPipe's "left"
landmarks are the person's left, which faces the camera on the image's right: +x, the
skeleton's left. Nothing is mirrored.

World landmarks lose the body's travel (every frame is hip-centred), so the pelvis's travel
across the picture and up (a jump) comes back from the image landmarks, scaled to metres by the
torso's length in both (a steady camera is assumed; docs/MOVE_LIBRARY.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from choreography.moves.skeleton import JOINT_INDEX, NUM_JOINTS, PELVIS, Keypoints
from schemas.errors import InvalidInput

Floats = npt.NDArray[np.float64]

# MediaPipe Pose landmark indices (the 33-point BlazePose topology).
NOSE: Final = 0
LEFT_EAR, RIGHT_EAR = 7, 8
LEFT_SHOULDER, RIGHT_SHOULDER = 11, 12
LEFT_ELBOW, RIGHT_ELBOW = 13, 14
LEFT_WRIST, RIGHT_WRIST = 15, 16
LEFT_HIP, RIGHT_HIP = 23, 24
LEFT_KNEE, RIGHT_KNEE = 25, 26
LEFT_ANKLE, RIGHT_ANKLE = 27, 28
NUM_LANDMARKS: Final = 33
# Skeleton joints read straight from one landmark each.
DIRECT: Final[dict[str, int]] = {
    "l_shoulder": LEFT_SHOULDER,
    "l_elbow": LEFT_ELBOW,
    "l_wrist": LEFT_WRIST,
    "r_shoulder": RIGHT_SHOULDER,
    "r_elbow": RIGHT_ELBOW,
    "r_wrist": RIGHT_WRIST,
    "l_hip": LEFT_HIP,
    "l_knee": LEFT_KNEE,
    "l_ankle": LEFT_ANKLE,
    "r_hip": RIGHT_HIP,
    "r_knee": RIGHT_KNEE,
    "r_ankle": RIGHT_ANKLE,
}
SPINE_FRACTION: Final = 0.5  # spine between pelvis and neck, as in skeleton.rest_pose
NOSE_WEIGHT: Final = 0.25  # head: the ears' midpoint (skull centre) pulled a little to the nose
# MediaPipe axes -> skeleton axes: x kept, y (down) and z (away from the camera) negated.
AXES: Final = np.array([1.0, -1.0, -1.0])


def skeleton_from_landmarks(world: npt.ArrayLike) -> Keypoints:
    """``(frames, 16, 3)`` skeleton joints from ``(frames, 33, 3)`` MediaPipe world landmarks."""
    points = np.asarray(world, dtype=np.float64)
    if points.ndim != 3 or points.shape[1:] != (NUM_LANDMARKS, 3):
        raise InvalidInput(f"landmarks: expected shape (frames, 33, 3), got {points.shape}")
    points = points * AXES
    out = np.empty((points.shape[0], NUM_JOINTS, 3))
    for joint, landmark in DIRECT.items():
        out[:, JOINT_INDEX[joint]] = points[:, landmark]
    pelvis = (points[:, LEFT_HIP] + points[:, RIGHT_HIP]) / 2
    neck = (points[:, LEFT_SHOULDER] + points[:, RIGHT_SHOULDER]) / 2
    ears = (points[:, LEFT_EAR] + points[:, RIGHT_EAR]) / 2
    out[:, PELVIS] = pelvis
    out[:, JOINT_INDEX["spine"]] = pelvis + SPINE_FRACTION * (neck - pelvis)
    out[:, JOINT_INDEX["neck"]] = neck
    out[:, JOINT_INDEX["head"]] = ears + NOSE_WEIGHT * (points[:, NOSE] - ears)
    result: Keypoints = out.astype(np.float32)
    return result


def pelvis_travel(
    world: npt.ArrayLike, image: npt.ArrayLike, present: npt.ArrayLike, width: int, height: int
) -> Floats:
    """``(frames, 3)`` pelvis travel in metres (x right, y up, z 0) from the image landmarks.

    Pixels become metres by the median ratio of the torso (mid-shoulders to mid-hips) in the
    world and in the image, so a dancer's jump or side step shows; depth travel is not seen.
    Travel starts at 0; between two frames with a person (gaps between them included), a step
    longer than a torso is the tracker changing people, not travel, and is left out. Frames
    without a person get the travel interpolated.
    """
    mask = np.asarray(present, dtype=bool)
    world_pts = np.asarray(world, dtype=np.float64)[mask]
    pixels = np.asarray(image, dtype=np.float64)[mask] * np.array([width, height])
    frames = np.flatnonzero(mask)
    travel = np.zeros((mask.shape[0], 3))
    if frames.size < 2:
        return travel

    def torso(points: Floats) -> Floats:
        hips = (points[:, LEFT_HIP] + points[:, RIGHT_HIP]) / 2
        shoulders = (points[:, LEFT_SHOULDER] + points[:, RIGHT_SHOULDER]) / 2
        return np.asarray(np.linalg.norm(shoulders - hips, axis=-1))

    torso_px = torso(pixels)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = torso(world_pts) / torso_px
    valid = np.isfinite(ratio) & (ratio > 0)
    if not valid.any():
        return travel
    metres_per_pixel = float(np.median(ratio[valid]))
    hips_px = (pixels[:, LEFT_HIP] + pixels[:, RIGHT_HIP]) / 2
    steps = np.diff(hips_px, axis=0, prepend=hips_px[:1])
    jumps = np.linalg.norm(steps, axis=-1) > np.median(torso_px[valid])
    steps[jumps | ~np.isfinite(steps).all(axis=-1)] = 0.0
    seen = np.cumsum(steps, axis=0) * metres_per_pixel
    every = np.arange(mask.shape[0])
    travel[:, 0] = np.interp(every, frames, seen[:, 0])
    travel[:, 1] = -np.interp(every, frames, seen[:, 1])  # image y grows downwards
    return travel


@dataclass(frozen=True)
class Gap:
    """Consecutive frames without a person, ``first`` to ``last`` inclusive (0-based)."""

    first: int
    last: int

    @property
    def frames(self) -> int:
        """How many frames the gap lasts."""
        return self.last - self.first + 1

    def __str__(self) -> str:
        return f"frames {self.first}-{self.last}"


def gaps(present: npt.ArrayLike) -> list[Gap]:
    """Runs of frames where ``present`` is false, in order."""
    mask = np.asarray(present, dtype=bool)
    # A gap starts where "absent" goes 0 -> 1 and ends where it goes 1 -> 0.
    absent = np.concatenate([[False], ~mask, [False]])
    starts = np.flatnonzero(~absent[:-1] & absent[1:])
    ends = np.flatnonzero(absent[:-1] & ~absent[1:]) - 1
    return [Gap(int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def fill_gaps(values: npt.ArrayLike, present: npt.ArrayLike) -> Floats:
    """Linear interpolation over time of every frame where ``present`` is false.

    ``values`` is ``(frames, ...)``; frames before the first and after the last present frame
    repeat the nearest present one. At least one frame must be present.
    """
    data = np.asarray(values, dtype=np.float64)
    mask = np.asarray(present, dtype=bool)
    if not mask.any():
        raise ValueError("fill_gaps needs at least one present frame")
    frames = np.arange(data.shape[0])
    flat = data.reshape(data.shape[0], -1)
    out = np.empty_like(flat)
    for column in range(flat.shape[1]):
        out[:, column] = np.interp(frames, frames[mask], flat[mask, column])
    return out.reshape(data.shape)


def one_euro(
    values: npt.ArrayLike,
    fps: float,
    *,
    min_cutoff: float,
    beta: float,
    d_cutoff: float = 1.0,
) -> Floats:
    """The One Euro filter (Casiez, Roussel and Vogel, CHI 2012) along axis 0, per channel.

    A low-pass filter whose cutoff rises with the signal's speed: ``min_cutoff`` (Hz) sets how
    still a held pose stays, ``beta`` how quickly a fast limb is followed (less lag). Each
    channel (every joint coordinate) is filtered independently; the first frame passes as is.
    """
    data = np.asarray(values, dtype=np.float64)
    if data.shape[0] == 0:
        return data.copy()
    out = np.empty_like(data)
    out[0] = data[0]
    derivative = np.zeros_like(data[0])
    alpha_d = _alpha(d_cutoff, fps)
    for i in range(1, data.shape[0]):
        raw_derivative = (data[i] - out[i - 1]) * fps
        derivative = alpha_d * raw_derivative + (1 - alpha_d) * derivative
        alpha = _alpha(min_cutoff + beta * np.abs(derivative), fps)
        out[i] = alpha * data[i] + (1 - alpha) * out[i - 1]
    return out


def _alpha(cutoff: float | Floats, fps: float) -> Floats:
    tau = 1.0 / (2 * np.pi * np.asarray(cutoff, dtype=np.float64))
    return np.asarray(1.0 / (1.0 + tau * fps))
