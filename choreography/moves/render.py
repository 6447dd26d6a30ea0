"""Move clips: keypoints drawn as a shaded 3D dancer (``figure``), piped to one ffmpeg.

A clip is rendered once, when a library is built (``bundle.write_bundle``), at the output size
(1280x720 at 30 fps, ``planner.output``'s default), so the job never scales a clip up. Poses are
resampled to the clip frame rate by linear interpolation; frames stream to ffmpeg as they are
drawn, so a clip never sits in memory whole. Output is H.264, yuv420p, constant frame rate.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from choreography.moves.figure import render_figure
from choreography.moves.skeleton import NUM_JOINTS, Keypoints
from schemas.errors import ChoreoError

log = logging.getLogger(__name__)


class RenderError(ChoreoError):
    """ffmpeg could not encode a clip; the message carries its stderr."""


@dataclass(frozen=True)
class ClipFormat:
    """Size and frame rate of rendered clips; the default is the job's default output."""

    width: int = 1280
    height: int = 720
    fps: int = 30

    def __post_init__(self) -> None:
        if self.width < 16 or self.height < 16 or self.width % 2 or self.height % 2:
            raise ValueError(
                f"clip size must be even and at least 16x16, got {self.width}x{self.height}"
            )
        if self.fps <= 0:
            raise ValueError(f"clip frame rate must be positive, got {self.fps}")


def clip_frame_count(duration_s: float, fmt: ClipFormat) -> int:
    """Frames a clip of ``duration_s`` gets at the clip frame rate (at least one)."""
    return max(1, round(duration_s * fmt.fps))


def sample_poses(keypoints: Keypoints, fps: float, fmt: ClipFormat) -> Keypoints:
    """``keypoints`` at the clip frame rate, linearly interpolated between source frames."""
    keypoints = np.asarray(keypoints, dtype=np.float32)
    if keypoints.ndim != 3 or keypoints.shape[1:] != (NUM_JOINTS, 3) or keypoints.shape[0] == 0:
        raise ValueError(f"a clip needs (frames, {NUM_JOINTS}, 3) keypoints, got {keypoints.shape}")
    n = clip_frame_count(keypoints.shape[0] / fps, fmt)
    position = np.minimum(np.arange(n) / fmt.fps * fps, keypoints.shape[0] - 1)
    before = np.floor(position).astype(int)
    after = np.minimum(before + 1, keypoints.shape[0] - 1)
    weight = (position - before).astype(np.float32)[:, None, None]
    sampled: Keypoints = (keypoints[before] * (1 - weight) + keypoints[after] * weight).astype(
        np.float32
    )
    return sampled


def iter_frames(
    keypoints: Keypoints, fps: float, fmt: ClipFormat
) -> Iterator[npt.NDArray[np.uint8]]:
    """RGB frames ``(height, width, 3)`` of ``keypoints`` at the clip frame rate, one at a time."""
    yield from render_figure(sample_poses(keypoints, fps, fmt), fmt.fps, fmt.width, fmt.height)


def draw_frames(keypoints: Keypoints, fps: float, fmt: ClipFormat) -> npt.NDArray[np.uint8]:
    """All RGB frames ``(n, height, width, 3)`` of a clip at once (for tests and figures)."""
    return np.stack(list(iter_frames(keypoints, fps, fmt)))


def encode_h264(frames: Iterable[npt.NDArray[np.uint8]], fmt: ClipFormat, out_path: Path) -> int:
    """Encode RGB frames to an H.264/yuv420p MP4 with one ffmpeg fed on stdin; return the count."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{fmt.width}x{fmt.height}",
        "-r", str(fmt.fps), "-i", "pipe:0",
        "-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
        "-threads", "1", "-movflags", "+faststart", str(out_path),
    ]  # fmt: skip
    count = 0
    # stderr goes to a file, not a pipe: nobody reads it while frames are written.
    with tempfile.TemporaryFile() as stderr:
        try:
            process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=stderr)
        except FileNotFoundError as error:
            raise RenderError("ffmpeg is not installed or not on PATH") from error
        assert process.stdin is not None  # noqa: S101 - Popen with stdin=PIPE always sets it
        try:
            for frame in frames:
                if frame.shape != (fmt.height, fmt.width, 3) or frame.dtype != np.uint8:
                    raise ValueError(
                        f"frame {count} is {frame.shape} {frame.dtype}, "
                        f"not ({fmt.height}, {fmt.width}, 3) uint8"
                    )
                process.stdin.write(frame.tobytes())
                count += 1
        except BrokenPipeError:
            pass  # ffmpeg stopped reading: its exit code and stderr say why, below
        except BaseException:
            process.kill()
            process.wait()
            raise
        finally:
            if not process.stdin.closed:
                with contextlib.suppress(BrokenPipeError):  # ffmpeg exited: reported below
                    process.stdin.close()
        code = process.wait()
        if code != 0:
            stderr.seek(0)
            message = stderr.read().decode("utf-8", "replace").strip()
            raise RenderError(f"ffmpeg failed for {out_path} ({code}): {message}")
    log.debug("rendered %s: %d frames at %d fps", out_path, count, fmt.fps)
    return count


def render_clip(
    keypoints: Keypoints, fps: float, out_path: Path, fmt: ClipFormat | None = None
) -> int:
    """Render the dancer figure of ``keypoints`` to ``out_path``; return its frame count."""
    fmt = fmt or ClipFormat()
    return encode_h264(iter_frames(keypoints, fps, fmt), fmt, out_path)
