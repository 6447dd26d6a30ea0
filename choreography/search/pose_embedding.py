"""Pose embedding: what the body does over the move, independent of where and how tall.

Recipe (space ``pose-v1-{joints}j-{dim}``): centre every frame on the pelvis, divide by the
sequence's RMS joint distance (scale-normalised), subtract the equally normalised rest pose (so
cosine compares deviations from standing, not the shared body shape), resample to 16 frames;
add per-joint velocity mean/std and the pelvis travel velocity; weight each block, then project
with a fixed-seed Gaussian matrix to ``dim`` and L2-normalise.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from choreography.moves.skeleton import NUM_JOINTS, PELVIS, Keypoints, rest_pose
from choreography.search.spaces import Embedding, FloatArray, l2_normalise
from schemas.errors import InvalidInput

POSE_DIM = 128
RESAMPLED_FRAMES = 16
_PROJECTION_SEED = 20_240_401
# Shape matters most; how fast joints move and whether the dancer travels refine it.
_BLOCK_WEIGHTS = {"shape": 0.65, "speed": 0.15, "jitter": 0.1, "travel": 0.1}


def pose_space(dim: int = POSE_DIM, joints: int = NUM_JOINTS) -> str:
    """Name of the pose embedding space for a skeleton size and output dimension."""
    return f"pose-v1-{joints}j-{dim}"


def embed_pose(keypoints: Keypoints, fps: float, dim: int = POSE_DIM) -> Embedding:
    """Pose embedding of a ``(frames, joints, 3)`` keypoint sequence sampled at ``fps``."""
    points = _checked(keypoints, fps)
    centred = points - points[:, PELVIS : PELVIS + 1, :]
    scale = float(np.sqrt(np.mean(np.sum(centred**2, axis=-1))))
    if scale == 0.0:
        raise InvalidInput("keypoints: every joint sits on the pelvis; the pose has no extent")
    normalised = centred / scale
    shape = resample_frames(normalised - _normalised_rest_pose(), RESAMPLED_FRAMES)
    if points.shape[0] > 1:
        velocity = np.diff(normalised, axis=0) * fps
        travel = (points[-1, PELVIS] - points[0, PELVIS]) / scale / (points.shape[0] / fps)
    else:
        velocity = np.zeros((1, *normalised.shape[1:]))
        travel = np.zeros(3)
    speed = np.abs(velocity).mean(axis=0)
    jitter = velocity.std(axis=0)
    blocks = {"shape": shape, "speed": speed, "jitter": jitter, "travel": travel}
    features = np.concatenate(
        [_unit_or_zero(block) * _BLOCK_WEIGHTS[name] for name, block in blocks.items()]
    )
    projected = features @ _projection(features.shape[0], dim)
    return Embedding("pose", pose_space(dim, points.shape[1]), l2_normalise(projected, "pose"))


def resample_frames(sequence: np.ndarray, frames: int) -> np.ndarray:
    """Linearly resample ``(n, ...)`` along the first axis to ``frames`` rows."""
    count = sequence.shape[0]
    if count == 1:
        return np.repeat(sequence, frames, axis=0)
    positions = np.linspace(0.0, count - 1, frames)
    low = np.floor(positions).astype(int)
    high = np.minimum(low + 1, count - 1)
    frac = (positions - low).reshape(-1, *([1] * (sequence.ndim - 1)))
    resampled: np.ndarray = sequence[low] * (1.0 - frac) + sequence[high] * frac
    return resampled


def _checked(keypoints: Keypoints, fps: float) -> np.ndarray:
    points = np.asarray(keypoints, dtype=np.float64)
    if points.ndim != 3 or points.shape[0] < 1 or points.shape[1:] != (NUM_JOINTS, 3):
        raise InvalidInput(
            f"keypoints: expected shape (frames>=1, {NUM_JOINTS}, 3), got {points.shape}"
        )
    if not np.all(np.isfinite(points)):
        raise InvalidInput("keypoints: contains NaN or infinite values")
    if not (fps > 0 and np.isfinite(fps)):
        raise InvalidInput(f"fps: must be a positive number, got {fps!r}")
    return points


def _unit_or_zero(block: np.ndarray) -> np.ndarray:
    flat = block.reshape(-1)
    norm = float(np.linalg.norm(flat))
    # A still move has zero velocity: keep the block at zero rather than inventing a direction.
    return flat / norm if norm > 0 else flat


@lru_cache(maxsize=1)
def _normalised_rest_pose() -> np.ndarray:
    rest = rest_pose().astype(np.float64)
    centred = rest - rest[PELVIS]
    normalised: np.ndarray = centred / np.sqrt(np.mean(np.sum(centred**2, axis=-1)))
    return normalised


@lru_cache(maxsize=8)
def _projection(rows: int, dim: int) -> FloatArray:
    rng = np.random.default_rng(_PROJECTION_SEED + rows * 7919 + dim)
    matrix: FloatArray = (rng.standard_normal((rows, dim)) / np.sqrt(dim)).astype(np.float32)
    return matrix
