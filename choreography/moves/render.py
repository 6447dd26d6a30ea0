"""Stick-figure clips: keypoints drawn with numpy into raw RGB frames, piped to one ffmpeg.

Front view, orthographic: x to the right, y up, depth (z) ignored except that it sets nothing;
the camera is fixed for the clip (centred on the mean pelvis position, floor near the bottom)
so travel across the floor stays visible. Output is H.264, yuv420p, constant frame rate.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from choreography.moves.skeleton import BONES, JOINT_INDEX, PELVIS, Keypoints
from schemas.errors import ChoreoError

log = logging.getLogger(__name__)

_BACKGROUND = np.array([24, 26, 33], dtype=np.uint8)
_FLOOR = np.array([70, 74, 88], dtype=np.uint8)
_CENTRE = np.array([235, 235, 240], dtype=np.uint8)
_LEFT = np.array([80, 200, 255], dtype=np.uint8)  # dancer's left limbs
_RIGHT = np.array([255, 140, 80], dtype=np.uint8)
# The visible window is this tall in metres; a 1.7 m dancer fills about 80 % of it.
_VIEW_HEIGHT_M = 2.1


class RenderError(ChoreoError):
    """ffmpeg could not encode a clip; the message carries its stderr."""


@dataclass(frozen=True)
class ClipFormat:
    """Size and frame rate of rendered clips."""

    width: int = 480
    height: int = 480
    fps: int = 30


def clip_frame_count(duration_s: float, fmt: ClipFormat) -> int:
    """Frames a clip of ``duration_s`` gets at the clip frame rate (at least one)."""
    return max(1, round(duration_s * fmt.fps))


def draw_frames(keypoints: Keypoints, fps: float, fmt: ClipFormat) -> npt.NDArray[np.uint8]:
    """RGB frames ``(n, height, width, 3)`` sampling ``keypoints`` at the clip frame rate."""
    n = clip_frame_count(keypoints.shape[0] / fps, fmt)
    source = np.minimum((np.arange(n) / fmt.fps * fps).astype(int), keypoints.shape[0] - 1)
    poses = keypoints[source]
    scale = fmt.height / _VIEW_HEIGHT_M
    centre_x = float(np.mean(keypoints[:, PELVIS, 0]))
    floor_y = float(np.min(keypoints[:, :, 1]))
    columns = (poses[:, :, 0] - centre_x) * scale + fmt.width / 2
    rows = fmt.height * 0.92 - (poses[:, :, 1] - floor_y) * scale
    pixels = np.stack([columns, rows], axis=-1)  # (n, joints, 2)
    canvas = np.empty((n, fmt.height, fmt.width, 3), dtype=np.uint8)
    canvas[:] = _BACKGROUND
    canvas[:, int(fmt.height * 0.92) + 2 :, :] = _FLOOR
    thickness = max(2, fmt.height // 80)
    for a, b in BONES:
        colour = _LEFT if a.startswith("l_") or b.startswith("l_") else _CENTRE
        colour = _RIGHT if a.startswith("r_") or b.startswith("r_") else colour
        start, end = pixels[:, JOINT_INDEX[a]], pixels[:, JOINT_INDEX[b]]
        _stamp_segments(canvas, start, end, thickness, colour)
    head = pixels[:, JOINT_INDEX["head"]]
    _stamp_segments(canvas, head, head, max(4, fmt.height // 24), _CENTRE)
    return canvas


def _stamp_segments(
    canvas: npt.NDArray[np.uint8],
    start: npt.NDArray[np.floating],
    end: npt.NDArray[np.floating],
    radius: int,
    colour: npt.NDArray[np.uint8],
) -> None:
    """Draw one thick segment per frame by stamping a disc at points along it (vectorised)."""
    n, height, width, _ = canvas.shape
    x0, y0, x1, y1 = start[:, 0], start[:, 1], end[:, 0], end[:, 1]
    length = np.hypot(x1 - x0, y1 - y0)
    # A disc every `radius` pixels overlaps its neighbours enough to leave no gaps.
    samples = int(np.ceil(float(np.max(length, initial=0.0)) / radius)) + 2
    t = np.linspace(0.0, 1.0, samples, dtype=np.float32)
    xs = np.rint(x0[:, None] + (x1 - x0)[:, None] * t).astype(np.int32)  # (n, samples)
    ys = np.rint(y0[:, None] + (y1 - y0)[:, None] * t).astype(np.int32)
    dy, dx = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.int32)
    disc = dx**2 + dy**2 <= radius**2
    cols = (xs[:, :, None] + dx[disc]).reshape(n, -1)
    rows = (ys[:, :, None] + dy[disc]).reshape(n, -1)
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    flat = (np.arange(n, dtype=np.int64)[:, None] * height + rows) * width + cols
    canvas.reshape(-1, 3)[flat[inside]] = colour


def encode_h264(frames: npt.NDArray[np.uint8], fps: int, out_path: Path) -> None:
    """Encode RGB frames to an H.264/yuv420p MP4 with one ffmpeg process fed on stdin."""
    n, height, width, _ = frames.shape
    out_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps),
        "-i", "pipe:0",
        "-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
        "-threads", "1", "-movflags", "+faststart", str(out_path),
    ]  # fmt: skip
    try:
        result = subprocess.run(command, input=frames.tobytes(), capture_output=True, check=False)
    except FileNotFoundError as error:
        raise RenderError("ffmpeg is not installed or not on PATH") from error
    if result.returncode != 0:
        stderr = result.stderr.decode("utf-8", "replace").strip()
        raise RenderError(f"ffmpeg failed for {out_path} ({result.returncode}): {stderr}")
    log.debug("rendered %s: %d frames at %d fps", out_path, n, fps)


def render_clip(
    keypoints: Keypoints, fps: float, out_path: Path, fmt: ClipFormat | None = None
) -> int:
    """Render a stick-figure clip of ``keypoints`` to ``out_path``; return its frame count."""
    fmt = fmt or ClipFormat()
    frames = draw_frames(keypoints, fps, fmt)
    encode_h264(frames, fmt.fps, out_path)
    return int(frames.shape[0])
