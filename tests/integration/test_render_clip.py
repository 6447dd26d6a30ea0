"""Rendered move clips through the real ffmpeg: size, frame count, codec, and the error paths."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from choreography.moves.bvh_import import BvhSplitOptions, drafts_from_bvh
from choreography.moves.render import ClipFormat, RenderError, encode_h264, render_clip
from choreography.moves.skeleton import rest_pose

pytestmark = pytest.mark.integration

SALSA = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "cmu-mocap-salsa"


def _probe(clip: Path) -> dict[str, str]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
         "stream=codec_name,pix_fmt,width,height,nb_read_frames,r_frame_rate", "-of", "json",
         str(clip)],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    stream: dict[str, str] = json.loads(result.stdout)["streams"][0]
    return stream


def test_a_motion_capture_move_renders_at_the_output_size(tmp_path: Path) -> None:
    """A CMU salsa window (8 counts at 150 BPM) becomes 96 frames of 1280x720 H.264 at 30 fps."""
    path = SALSA / "60_01_scaled.bvh"
    if not path.is_file():
        pytest.fail(f"corpus file missing: {path}", pytrace=False)
    _, drafts = drafts_from_bvh(path, BvhSplitOptions(bpm=150.0, fps=60.0))
    clip = tmp_path / "salsa.mp4"
    frames = render_clip(drafts[0].keypoints, drafts[0].fps, clip)
    stream = _probe(clip)
    assert (stream["codec_name"], stream["pix_fmt"]) == ("h264", "yuv420p")
    assert (int(stream["width"]), int(stream["height"]), stream["r_frame_rate"]) == (
        1280, 720, "30/1",
    )  # fmt: skip
    assert int(stream["nb_read_frames"]) == frames == 96


def test_a_small_format_renders_small(tmp_path: Path) -> None:
    """ClipFormat(64, 64, 12) still gives a 64x64 clip at 12 fps, one frame per 1/12 s."""
    keypoints = np.repeat(rest_pose()[None], 60, axis=0)
    clip = tmp_path / "small.mp4"
    frames = render_clip(keypoints, 30.0, clip, ClipFormat(64, 64, 12))
    stream = _probe(clip)
    assert (int(stream["width"]), int(stream["height"]), stream["r_frame_rate"]) == (64, 64, "12/1")
    assert int(stream["nb_read_frames"]) == frames == 24


def test_ffmpeg_failing_names_the_clip_and_its_error(tmp_path: Path) -> None:
    """An output ffmpeg cannot write raises RenderError with the path and ffmpeg's message."""
    frames = [np.zeros((16, 16, 3), np.uint8)] * 3
    with pytest.raises(RenderError, match=r"ffmpeg failed for .*clip\.nosuchformat .*format"):
        encode_h264(frames, ClipFormat(16, 16, 12), tmp_path / "clip.nosuchformat")


def test_a_frame_of_the_wrong_size_stops_the_encode(tmp_path: Path) -> None:
    """A frame that does not match the clip format is refused, naming its index and shape."""
    frames = [np.zeros((16, 16, 3), np.uint8), np.zeros((16, 18, 3), np.uint8)]
    with pytest.raises(ValueError, match=r"frame 1 is \(16, 18, 3\)"):
        encode_h264(frames, ClipFormat(16, 16, 12), tmp_path / "clip.mp4")
