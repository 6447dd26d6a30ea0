"""A real motion-capture move rendered through ffmpeg at the output size, checked with ffprobe."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from choreography.moves.bvh_import import BvhSplitOptions, drafts_from_bvh
from choreography.moves.render import render_clip

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
