"""The figure's stage: a dark backdrop, a tiled floor lit around the dancer, a contact shadow.

The camera only translates (``figure_camera``), so where every pixel's ray meets the floor,
relative to the followed point, is the same in every frame: it is worked out once per frame size
(cached), and a frame only shifts the tile pattern by the camera's floor position and darkens the
floor under the dancer.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import numpy as np
import numpy.typing as npt

from choreography.moves.figure_camera import Camera, FloatArray

_BACKDROP_TOP: Final = np.array([16, 17, 22], dtype=np.float32)
_BACKDROP_HORIZON: Final = np.array([52, 54, 62], dtype=np.float32)
_FLOOR: Final = np.array([150, 140, 128], dtype=np.float32)  # warm studio floor, lit
_GROUT_M: Final = 0.012  # grout line width
_SPOT_SIGMA_M: Final = 2.6  # the light pool around the dancer
_FOG_M: Final = 10.0  # floor fades into the backdrop over this distance


@dataclass(frozen=True)
class ShadowBlob:
    """A soft elliptical shadow on the floor at (x, z), Gaussian with the given spreads."""

    x: float
    z: float
    sigma_x: float
    sigma_z: float
    strength: float  # 0..1: share of light removed at the centre


@dataclass(frozen=True, eq=False)
class Stage:
    """Everything about the floor and backdrop that does not change between frames."""

    camera: Camera
    first_floor_row: int
    offset_x: FloatArray  # (floor rows, width): floor point x minus the followed x
    offset_z: FloatArray
    grid_weight: FloatArray  # tile contrast per pixel: fades with distance and pixel footprint
    inverse_footprint: FloatArray  # 1 / metres of floor a pixel spans: grout edge softness
    pattern_rows: slice  # the floor rows where the tiles are visible at all (not faded out)
    base: npt.NDArray[np.uint8]  # (height, width, 3): backdrop and the untextured, lit floor
    lit_floor: FloatArray  # (floor rows, width, 3): the same floor in float, for the tiles

    def frame(
        self, followed_xz: tuple[float, float], shadows: list[ShadowBlob]
    ) -> npt.NDArray[np.uint8]:
        """A fresh RGB frame: the backdrop and the floor seen from ``followed_xz``."""
        frame = self.base.copy()  # C order: the figure is drawn through flat views of it
        floor = frame[self.first_floor_row :]
        fx, fz = np.float32(followed_xz[0]), np.float32(followed_xz[1])
        rows = self.pattern_rows
        wx, wz = self.offset_x[rows] + fx, self.offset_z[rows] + fz
        # Distance to the nearest grout line (tiles are 1 m), for a line that fades out softly.
        edge = np.minimum(np.abs(wx - np.round(wx)), np.abs(wz - np.round(wz)))
        grout = np.clip((_GROUT_M - edge) * self.inverse_footprint[rows] + 0.5, 0.0, 1.0)
        checker = (np.floor(wx).astype(np.int32) + np.floor(wz).astype(np.int32)) & 1
        tiles = 1.0 + self.grid_weight[rows] * (0.05 * checker - 0.025 - 0.22 * grout)
        floor[rows] = self.lit_floor[rows] * tiles[..., None] + 0.5  # rounded to uint8
        for blob in shadows:
            self._darken(floor, blob, float(fx), float(fz))
        return frame

    def _darken(self, floor: npt.NDArray[np.uint8], blob: ShadowBlob, fx: float, fz: float) -> None:
        """Multiply the floor by the blob's remaining light, over the rows and columns it spans."""
        bx, bz = blob.x - fx, blob.z - fz  # relative to the followed point, as the offsets are
        # The blob's 3-sigma rectangle on the floor, projected: its corners bound it on screen.
        reach_x, reach_z = 3.0 * blob.sigma_x, 3.0 * blob.sigma_z
        corners = np.array(
            [[bx + sx * reach_x, 0.0, bz + sz * reach_z] for sx in (-1, 1) for sz in (-1, 1)]
        )
        pixels, _ = self.camera.project(corners, self.camera.eye([[0.0, 0.0]]))
        r0 = max(int(pixels[:, 1].min()) - self.first_floor_row, 0)
        r1 = min(int(pixels[:, 1].max()) + 2 - self.first_floor_row, floor.shape[0])
        c0, c1 = max(int(pixels[:, 0].min()), 0), min(int(pixels[:, 0].max()) + 2, floor.shape[1])
        if r0 >= r1 or c0 >= c1:
            return
        dx = (self.offset_x[r0:r1, c0:c1] - bx) / blob.sigma_x
        dz = (self.offset_z[r0:r1, c0:c1] - bz) / blob.sigma_z
        light = 1.0 - blob.strength * np.exp(-0.5 * (dx * dx + dz * dz))
        region = floor[r0:r1, c0:c1]
        region[...] = region * light[..., None] + 0.5


@lru_cache(maxsize=8)
def stage_for(width: int, height: int) -> Stage:
    """The stage for one frame size (cached: every clip of a library shares it)."""
    camera = Camera(width, height)
    first, offset_x, offset_z, distance = camera.floor_under_pixels()
    rows = np.arange(height, dtype=np.float32)[:, None] + 0.5
    cols = np.arange(width, dtype=np.float32)[None, :] + 0.5
    # Backdrop: dark at the top, lighter towards the horizon, a soft vignette at the sides.
    rise = np.clip(rows / max(first, 1), 0.0, 1.0) ** 2
    base = _BACKDROP_TOP + (_BACKDROP_HORIZON - _BACKDROP_TOP) * rise[..., None]
    base = np.broadcast_to(base, (height, width, 3)).astype(np.float32)
    side = np.abs(cols - width / 2) / (width / 2)
    base *= (1.0 - 0.35 * side**2)[..., None]
    # Floor: a pool of light around the followed point, fogging into the horizon colour.
    spot = np.exp(-0.5 * (offset_x**2 + offset_z**2) / _SPOT_SIGMA_M**2)
    lit = _FLOOR * (0.45 + 0.55 * spot)[..., None]
    fog = (1.0 - np.exp(-distance / _FOG_M))[..., None]
    floor = lit * (1.0 - fog) + _BACKDROP_HORIZON * fog
    base[first:] = floor * (1.0 - 0.35 * side[0] ** 2)[None, :, None]
    footprint = np.maximum(
        np.abs(np.gradient(offset_z, axis=0)), np.abs(np.gradient(offset_x, axis=1))
    )
    grid_weight = np.clip(1.5 - footprint / 0.03, 0.0, 1.0) * (1.0 - fog[..., 0])
    visible = np.flatnonzero(grid_weight.max(axis=1) > 0.01)
    pattern_rows = slice(int(visible[0]), int(visible[-1]) + 1) if visible.size else slice(0, 0)
    return Stage(
        camera=camera,
        first_floor_row=first,
        offset_x=offset_x,
        offset_z=offset_z,
        grid_weight=grid_weight.astype(np.float32),
        inverse_footprint=(1.0 / np.maximum(footprint, 1e-4)).astype(np.float32),
        pattern_rows=pattern_rows,
        base=np.ascontiguousarray(np.clip(base + 0.5, 0, 255), dtype=np.uint8),
        lit_floor=np.ascontiguousarray(base[first:], dtype=np.float32),
    )


def contact_shadows(
    feet: npt.NDArray[np.float32], pelvis: npt.NDArray[np.float32]
) -> list[ShadowBlob]:
    """Shadow blobs for one frame: one per foot ``(2, 3)`` and a wide one under the pelvis ``(3,)``.

    A foot's blob is dark and tight when the foot is on the floor and fades and spreads as it
    lifts; the pelvis blob is a faint ambient shadow of the whole body.
    """
    blobs = []
    for foot in feet:
        lift = max(float(foot[1]), 0.0)
        spread = 0.07 + 0.5 * lift
        strength = 0.62 * float(np.exp(-lift / 0.18))
        blobs.append(
            ShadowBlob(float(foot[0]), float(foot[2]), spread * 1.1, spread * 1.6, strength)
        )
    # The body's shadow is widest and faintest when it is high (a jump), fullest when low.
    height = max(float(pelvis[1]), 0.3)
    strength = 0.28 * float(np.exp(-max(height - 1.0, 0.0) / 0.35))
    blobs.append(
        ShadowBlob(float(pelvis[0]), float(pelvis[2]), 0.26 * height, 0.2 * height, strength)
    )
    return blobs
