"""The figure's camera: a pinhole in front of the dancer that follows the pelvis on the floor.

Front view as the skeleton defines it (the dancer faces +z, towards the camera, at rest): the
camera sits ``DISTANCE_M`` in front of the point it follows, at ``HEIGHT_M`` (a little above hip
height), and looks slightly down at ``LOOK_AT_HEIGHT_M``. It only translates, never turns, so
the floor under it and the light stay fixed in its own frame. Its floor position is a critically
damped spring pulled by the pelvis's floor position (x, z): no overshoot, no jitter from a
trembling pelvis, the same path for the same clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

HEIGHT_M: Final = 1.30
LOOK_AT_HEIGHT_M: Final = 0.92
DISTANCE_M: Final = 4.3
VERTICAL_FOV_DEG: Final = 33.0
# Angular frequency of the follow spring (rad/s): it settles in about 4.7 / omega = 2 s, slow
# enough that a salsa basic's back-and-forth hardly moves it, fast enough to keep travel framed.
FOLLOW_OMEGA: Final = 2.4

FloatArray = npt.NDArray[np.float32]


def follow_path(target_xz: npt.ArrayLike, fps: float, omega: float = FOLLOW_OMEGA) -> FloatArray:
    """Floor positions ``(n, 2)`` of a critically damped spring chasing ``target_xz`` ``(n, 2)``.

    It starts at rest on the first target. Each step is the spring's exact solution for a target
    held over the step, so it is stable at any frame rate.
    """
    target = np.asarray(target_xz, dtype=np.float64)
    if target.ndim != 2 or target.shape[1] != 2 or target.shape[0] == 0:
        raise ValueError(f"follow_path needs (frames, 2) floor positions, got {target.shape}")
    if fps <= 0:
        raise ValueError(f"follow_path needs a positive frame rate, got {fps}")
    dt = 1.0 / fps
    decay = math.exp(-omega * dt)
    path = np.empty_like(target)
    position, velocity = target[0].copy(), np.zeros(2)
    for i, goal in enumerate(target):
        offset = position - goal
        drift = (velocity + omega * offset) * dt
        position = goal + (offset + drift) * decay
        velocity = (velocity - omega * drift) * decay
        path[i] = position
    return path.astype(np.float32)


@dataclass(frozen=True)
class Camera:
    """The pinhole's intrinsics and its fixed orientation; positions come per frame."""

    width: int
    height: int

    @property
    def focal_px(self) -> float:
        """Focal length in pixels for the vertical field of view."""
        return self.height / 2 / math.tan(math.radians(VERTICAL_FOV_DEG) / 2)

    @property
    def basis(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Right, up and forward unit vectors in world coordinates."""
        forward = np.array([0.0, LOOK_AT_HEIGHT_M - HEIGHT_M, -DISTANCE_M])
        forward /= np.linalg.norm(forward)
        right = np.array([1.0, 0.0, 0.0])
        up = np.cross(right, forward)
        return right.astype(np.float32), up.astype(np.float32), forward.astype(np.float32)

    def eye(self, followed_xz: npt.ArrayLike) -> FloatArray:
        """Camera positions ``(n, 3)`` for followed floor points ``(n, 2)``."""
        xz = np.asarray(followed_xz, dtype=np.float32).reshape(-1, 2)
        eye = np.empty((xz.shape[0], 3), dtype=np.float32)
        eye[:, 0], eye[:, 1], eye[:, 2] = xz[:, 0], HEIGHT_M, xz[:, 1] + DISTANCE_M
        return eye

    def project(self, points: npt.ArrayLike, eye: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Pixel positions ``(..., 2)`` (column, row) and depths ``(...)`` of world points.

        ``eye`` broadcasts against ``points``' leading axes (one camera position per frame).
        """
        right, up, forward = self.basis
        rel = np.asarray(points, dtype=np.float32) - np.asarray(eye, dtype=np.float32)
        depth = np.maximum(rel @ forward, 1e-3)
        scale = self.focal_px / depth
        pixels = np.stack(
            [self.width / 2 + (rel @ right) * scale, self.height / 2 - (rel @ up) * scale], axis=-1
        )
        return pixels.astype(np.float32), depth.astype(np.float32)

    def floor_under_pixels(self) -> tuple[int, FloatArray, FloatArray, FloatArray]:
        """Where each pixel's ray meets the floor, relative to the followed point.

        Returns the first row below the horizon and, for the rows from it down, ``(rows, width)``
        arrays of the floor point's x and z offsets and the ray's length (metres).
        """
        right, up, forward = self.basis
        f = self.focal_px
        # The horizon is where a ray runs level: forward_y + up_y * s = 0 for s = (H/2 - row) / f.
        horizon = self.height / 2 + f * forward[1] / up[1]
        first = int(np.clip(math.floor(horizon) + 1, 0, self.height))
        rows = np.arange(first, self.height, dtype=np.float32) + 0.5
        cols = np.arange(self.width, dtype=np.float32) + 0.5
        sx = (cols - self.width / 2) / f
        sy = (self.height / 2 - rows) / f
        ray = (
            forward[None, None, :]
            + sx[None, :, None] * right[None, None, :]
            + sy[:, None, None] * up[None, None, :]
        )
        t = HEIGHT_M / np.maximum(-ray[..., 1], 1e-4)
        offset_x = t * ray[..., 0]
        offset_z = t * ray[..., 2] + DISTANCE_M
        distance = t * np.linalg.norm(ray, axis=-1)
        return (
            first,
            offset_x.astype(np.float32),
            offset_z.astype(np.float32),
            distance.astype(np.float32),
        )
