"""The dancer figure: shaded, depth-tested body parts on a stage, one RGB frame per pose.

Every body part is a tapered capsule (a sphere swept along a segment) between two anchor points
derived from the skeleton's joints: a torso and hips of elliptical cross-section, a shoulder
yoke, neck, a head with hair on its crown and back, sleeves, arms, hands, thighs, shins and
shoes. Capsules are drawn as impostors, per part
over its bounding box with numpy: each pixel near the projected segment gets a coverage (for
smooth edges), a depth and a normal on the capsule's camera-facing surface, a per-pixel depth
test decides what is in front (a hand in front of the chest covers it, behind it is hidden), and
a key light, a fill light and a rim light shade it. Parts are drawn far to near each frame so
smooth edges blend over what is behind them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import numpy as np
import numpy.typing as npt

from choreography.moves.figure_camera import FloatArray, follow_path
from choreography.moves.figure_stage import contact_shadows, stage_for
from choreography.moves.skeleton import JOINT_INDEX, JOINTS, NUM_JOINTS, PELVIS, rest_pose

_SKIN: Final = (214.0, 160.0, 128.0)
_SHIRT: Final = (176.0, 50.0, 62.0)
_TROUSERS: Final = (44.0, 52.0, 78.0)
_HAIR: Final = (44.0, 31.0, 27.0)
_SHOES: Final = (30.0, 30.0, 34.0)
# The dancer's left limbs a touch cooler, the right a touch warmer, so a learner tells sides.
_TINT: Final = {"": (1.0, 1.0, 1.0), "l": (0.94, 0.98, 1.08), "r": (1.07, 1.0, 0.93)}
# The sole is this far below the ankle joint (standing in the rest pose, the floor is y = 0).
_ANKLE_HEIGHT_M: Final = float(rest_pose()[JOINT_INDEX["l_ankle"], 1])

# Lights in camera coordinates (x right, y up, z towards the viewer): a key from the upper left
# in front, a weaker fill from the right, a cool rim that separates the figure from the backdrop.
_KEY: Final = np.array([-0.45, 0.65, 0.62], dtype=np.float32) / np.float32(
    np.linalg.norm([-0.45, 0.65, 0.62])
)
_FILL: Final = np.array([0.7, 0.1, 0.7], dtype=np.float32) / np.float32(
    np.linalg.norm([0.7, 0.1, 0.7])
)
_AMBIENT, _KEY_GAIN, _FILL_GAIN, _RIM_GAIN = 0.30, 0.85, 0.22, 70.0
_RIM_COLOUR: Final = np.array([0.75, 0.85, 1.0], dtype=np.float32)

# (start anchor, end anchor, start radius, end radius, colour, side, flat) in metres; anchors
# below. A flat part's cross-section is an ellipse: its radius across the body (shoulder to
# shoulder) and ``flat`` times that front to back; other parts are round.
_PART_SPECS: Final[
    tuple[tuple[str, str, float, float, tuple[float, float, float], str, float], ...]
] = (
    ("hip_low", "hip_high", 0.165, 0.16, _TROUSERS, "", 0.68),
    ("belly", "chest", 0.14, 0.165, _SHIRT, "", 0.64),
    ("l_yoke", "r_yoke", 0.068, 0.068, _SHIRT, "", 1.0),
    ("neck_low", "neck_high", 0.047, 0.045, _SKIN, "", 1.0),
    ("head_low", "head_high", 0.079, 0.082, _SKIN, "", 1.18),
    ("hair_low", "hair_high", 0.079, 0.082, _HAIR, "", 1.18),
    ("l_shoulder", "l_sleeve", 0.058, 0.052, _SHIRT, "l", 1.0),
    ("r_shoulder", "r_sleeve", 0.058, 0.052, _SHIRT, "r", 1.0),
    ("l_shoulder", "l_elbow", 0.045, 0.038, _SKIN, "l", 1.0),
    ("r_shoulder", "r_elbow", 0.045, 0.038, _SKIN, "r", 1.0),
    ("l_elbow", "l_wrist", 0.038, 0.03, _SKIN, "l", 1.0),
    ("r_elbow", "r_wrist", 0.038, 0.03, _SKIN, "r", 1.0),
    ("l_wrist", "l_hand", 0.034, 0.029, _SKIN, "l", 1.0),
    ("r_wrist", "r_hand", 0.034, 0.029, _SKIN, "r", 1.0),
    ("l_hip", "l_knee", 0.082, 0.058, _TROUSERS, "l", 1.0),
    ("r_hip", "r_knee", 0.082, 0.058, _TROUSERS, "r", 1.0),
    ("l_knee", "l_ankle", 0.056, 0.043, _TROUSERS, "l", 1.0),
    ("r_knee", "r_ankle", 0.056, 0.043, _TROUSERS, "r", 1.0),
    ("l_heel", "l_toe", 0.042, 0.035, _SHOES, "l", 1.0),
    ("r_heel", "r_toe", 0.042, 0.035, _SHOES, "r", 1.0),
)


def _unit(v: FloatArray, fallback: tuple[float, float, float]) -> FloatArray:
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    safe = np.where(norm > 1e-6, v / np.maximum(norm, 1e-6), np.asarray(fallback, np.float32))
    return safe.astype(np.float32)


def anchors(poses: FloatArray) -> dict[str, FloatArray]:
    """Joints and the points derived from them that the parts run between, ``(n, 3)`` each."""
    a = {name: poses[:, JOINT_INDEX[name]] for name in JOINTS}
    up = np.array([0.0, 1.0, 0.0], dtype=np.float32)
    facing = _unit(np.cross(a["l_hip"] - a["r_hip"], up), (0.0, 0.0, 1.0))
    chest_facing = _unit(np.cross(a["l_shoulder"] - a["r_shoulder"], up), (0.0, 0.0, 1.0))
    torso_up = _unit(a["neck"] - a["pelvis"], (0.0, 1.0, 0.0))
    head_up = _unit(a["head"] - a["neck"], (0.0, 1.0, 0.0))
    a["hip_low"] = a["pelvis"] + 0.02 * torso_up
    a["hip_high"] = a["pelvis"] + 0.06 * torso_up
    a["belly"] = a["pelvis"] + 0.16 * torso_up
    a["chest"] = a["neck"] - 0.2 * torso_up
    for side in ("l", "r"):
        shoulder = a[f"{side}_shoulder"]
        a[f"{side}_yoke"] = shoulder + 0.2 * (a["neck"] - shoulder) - 0.04 * torso_up
        a[f"{side}_sleeve"] = shoulder + 0.38 * (a[f"{side}_elbow"] - shoulder)
        wrist = a[f"{side}_wrist"]
        a[f"{side}_hand"] = wrist + 0.085 * _unit(wrist - a[f"{side}_elbow"], (0.0, -1.0, 0.0))
        ankle = a[f"{side}_ankle"]
        a[f"{side}_heel"] = ankle - 0.035 * facing - 0.045 * up
        a[f"{side}_toe"] = ankle + 0.13 * facing - 0.05 * up
    a["neck_low"] = a["neck"] - 0.03 * torso_up
    a["neck_high"] = a["neck"] + 0.45 * (a["head"] - a["neck"])
    a["head_low"] = a["head"] - 0.035 * head_up
    a["head_high"] = a["head"] + 0.02 * head_up
    # Hair: the head's own shape moved back and up, so it shows on the crown and the back of the
    # head (which way the dancer faces) and never through the face.
    hair = 0.026 * _unit(0.5 * head_up - 0.85 * chest_facing, (0.0, 0.5, -0.85))
    a["hair_low"], a["hair_high"] = a["head_low"] + hair, a["head_high"] + hair
    return a


def _lateral(poses: FloatArray) -> FloatArray:
    """The body's left-right direction per frame ``(n, 3)``: shoulders and hips together."""
    j = JOINT_INDEX
    across = (poses[:, j["l_shoulder"]] - poses[:, j["r_shoulder"]]) + (
        poses[:, j["l_hip"]] - poses[:, j["r_hip"]]
    )
    return _unit(across, (1.0, 0.0, 0.0))


def _ellipse_scales(
    starts: FloatArray, ends: FloatArray, lateral: FloatArray, forward: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """How much of each part's radius shows across the screen and towards the camera.

    Per frame and part ``(n, parts)``: for a flat part, its ellipse's half-width seen along the
    camera's view and its half-depth along it, each divided by the radius; 1 for round parts.
    """
    flat = np.array([s[6] for s in _PART_SPECS], dtype=np.float32)[None, :]
    axis = _unit(ends - starts, (0.0, 1.0, 0.0))  # (n, parts, 3)
    side = lateral[:, None, :]
    across = _unit(side - np.sum(side * axis, -1, keepdims=True) * axis, (1.0, 0.0, 0.0))
    depth_dir = np.cross(axis, across)
    screen_side = _unit(np.cross(axis, forward), (1.0, 0.0, 0.0))
    width = np.hypot(np.sum(across * screen_side, -1), flat * np.sum(depth_dir * screen_side, -1))
    towards = np.hypot(np.sum(across * forward, -1), flat * np.sum(depth_dir * forward, -1))
    return width.astype(np.float32), towards.astype(np.float32)


def body_scale(poses: FloatArray) -> float:
    """The skeleton's size relative to ``skeleton.rest_pose`` (spine and legs, median over frames).

    Motion capture comes in other sizes (the CMU salsa takes are about two thirds of it); the
    figure's parts have human proportions in metres, so poses are scaled to this size first.
    """
    rest = rest_pose()[None]
    return float(np.median(_trunk_and_legs(poses)) / _trunk_and_legs(rest)[0])


def _trunk_and_legs(poses: FloatArray) -> FloatArray:
    j = JOINT_INDEX
    pairs = [("pelvis", "neck"), ("l_hip", "l_knee"), ("l_knee", "l_ankle"),
             ("r_hip", "r_knee"), ("r_knee", "r_ankle")]  # fmt: skip
    lengths = [np.linalg.norm(poses[:, j[a]] - poses[:, j[b]], axis=-1) for a, b in pairs]
    total: FloatArray = np.sum(lengths, axis=0)
    return total


def render_figure(
    keypoints: npt.ArrayLike, fps: float, width: int, height: int
) -> Iterator[npt.NDArray[np.uint8]]:
    """RGB frames ``(height, width, 3)``, one per pose ``(n, 16, 3)``.

    The camera follows the pelvis's floor position (``figure_camera.follow_path`` at ``fps``);
    the floor is y = 0, where the skeleton's feet stand. Poses are scaled about the origin to the
    rest pose's size (``body_scale``), so every figure is drawn at one human size.
    """
    poses: FloatArray = np.asarray(keypoints, dtype=np.float32)
    if poses.ndim != 3 or poses.shape[1:] != (NUM_JOINTS, 3) or poses.shape[0] == 0:
        raise ValueError(
            f"render_figure needs (frames, {NUM_JOINTS}, 3) keypoints, got {poses.shape}"
        )
    if not np.isfinite(poses).all():
        raise ValueError("render_figure got keypoints that are not finite (NaN or inf)")
    scale = body_scale(poses)
    if scale > 1e-3:
        poses = (poses / np.float32(scale)).astype(np.float32)
    stage = stage_for(width, height)
    camera = stage.camera
    followed = follow_path(poses[:, PELVIS][:, [0, 2]], fps)
    eye = camera.eye(followed)
    points = anchors(poses)
    starts = np.stack([points[s[0]] for s in _PART_SPECS], axis=1)  # (n, parts, 3)
    ends = np.stack([points[s[1]] for s in _PART_SPECS], axis=1)
    start_px, start_depth = camera.project(starts, eye[:, None, :])
    end_px, end_depth = camera.project(ends, eye[:, None, :])
    width_scale, depth_scale = _ellipse_scales(starts, ends, _lateral(poses), camera.basis[2])
    radius0 = np.array([s[2] for s in _PART_SPECS], dtype=np.float32)
    radius1 = np.array([s[3] for s in _PART_SPECS], dtype=np.float32)
    colours = np.array(
        [np.multiply(s[4], _TINT[s[5]]) for s in _PART_SPECS], dtype=np.float32
    ).clip(0, 255)
    feet = (points["l_heel"] + points["l_toe"]) / 2, (points["r_heel"] + points["r_toe"]) / 2
    soles = np.stack(feet, axis=1)  # (n, 2, 3), with y the sole's height above the floor
    soles[..., 1] = np.stack([points["l_ankle"][:, 1], points["r_ankle"][:, 1]], axis=1)
    soles[..., 1] -= _ANKLE_HEIGHT_M
    focal = np.float32(camera.focal_px)
    for i in range(poses.shape[0]):
        frame = stage.frame(
            (float(followed[i, 0]), float(followed[i, 1])),
            contact_shadows(soles[i], poses[i, PELVIS]),
        )
        zbuffer = np.full((height, width), np.inf, dtype=np.float32)
        order = np.argsort(-(start_depth[i] + end_depth[i]))  # far to near
        for p in order:
            _draw_capsule(
                frame,
                zbuffer,
                ends_px=(start_px[i, p], end_px[i, p]),
                depths=(start_depth[i, p], end_depth[i, p]),
                radii_m=(radius0[p], radius1[p]),
                scales=(width_scale[i, p] * focal, depth_scale[i, p]),
                colour=colours[p],
            )
        yield frame


def _draw_capsule(
    frame: npt.NDArray[np.uint8],
    zbuffer: FloatArray,
    *,
    ends_px: tuple[FloatArray, FloatArray],
    depths: tuple[np.float32, np.float32],
    radii_m: tuple[np.float32, np.float32],
    scales: tuple[np.float32, np.float32],
    colour: FloatArray,
) -> None:
    """Shade one tapered capsule into ``frame`` where it is nearer than ``zbuffer``.

    ``scales``: pixels per metre of radius across the screen at unit depth (the focal length
    times the part's width scale), and the part's depth scale.
    """
    height, width = zbuffer.shape
    (ua, va), (ub, vb) = ends_px
    za, zb = depths
    ra, rb = radii_m[0] * scales[0] / za, radii_m[1] * scales[0] / zb  # radii in pixels
    reach = max(ra, rb) + 1.0
    x0, x1 = max(int(min(ua, ub) - reach), 0), min(int(max(ua, ub) + reach) + 1, width)
    y0, y1 = max(int(min(va, vb) - reach), 0), min(int(max(va, vb) + reach) + 1, height)
    if x0 >= x1 or y0 >= y1:
        return
    abx, aby = ub - ua, vb - va
    inv_len2 = np.float32(1.0 / max(abx * abx + aby * aby, 1e-6))
    ex = np.arange(x0, x1, dtype=np.float32)[None, :] + np.float32(0.5 - ua)
    ey = np.arange(y0, y1, dtype=np.float32)[:, None] + np.float32(0.5 - va)
    t = np.clip((ex * abx + ey * aby) * inv_len2, 0.0, 1.0)
    dx = ex - t * abx
    dy = ey - t * aby
    radius = ra + t * (rb - ra)
    dist2 = dx * dx + dy * dy
    reach2 = radius + 0.5
    inside = np.flatnonzero(dist2 < reach2 * reach2)  # some coverage: nearer than radius + 0.5
    if inside.size == 0:
        return
    t, dx, dy = t.ravel()[inside], dx.ravel()[inside], dy.ravel()[inside]
    radius = radius.ravel()[inside]
    dist = np.sqrt(dist2.ravel()[inside])
    cover = radius + 0.5 - dist
    box_width = x1 - x0
    flat = (y0 + inside // box_width) * width + (x0 + inside % box_width)
    reach_px = np.maximum(dist, radius)
    s = dist / reach_px
    nz = np.sqrt(np.maximum(1.0 - s * s, 0.0))
    depth = za + t * (zb - za) - (radii_m[0] + t * (radii_m[1] - radii_m[0])) * scales[1] * nz
    zflat = zbuffer.reshape(-1)
    front = depth < zflat[flat]
    if not front.any():
        return
    flat, depth, cover, nz = flat[front], depth[front], np.minimum(cover[front], 1.0), nz[front]
    nx, ny = dx[front] / reach_px[front], -dy[front] / reach_px[front]
    key = np.maximum(nx * _KEY[0] + ny * _KEY[1] + nz * _KEY[2], 0.0)
    fill = np.maximum(nx * _FILL[0] + ny * _FILL[1] + nz * _FILL[2], 0.0)
    light = _AMBIENT + _KEY_GAIN * key + _FILL_GAIN * fill
    rim = _RIM_GAIN * (1.0 - nz) ** 3
    shaded = colour[None, :] * light[:, None] + rim[:, None] * _RIM_COLOUR[None, :]
    pixels = frame.reshape(-1, 3)
    old = pixels[flat].astype(np.float32)
    blended = old + (np.minimum(shaded, 255.0) - old) * cover[:, None]  # a rim can pass 255
    pixels[flat] = blended + 0.5
    solid = cover >= 0.5
    zflat[flat[solid]] = depth[solid]
