"""The real CMU salsa captures: parse, frame-rate finding, split into moves, one rendered clip."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from choreo_cli.main import app
from choreography.moves.bvh import read_bvh
from choreography.moves.bvh_import import (
    BvhSplitOptions,
    canonical_keypoints,
    detect_frame_rate,
    drafts_from_bvh,
    header_rate,
)
from choreography.moves.render import render_clip
from choreography.moves.skeleton import JOINT_INDEX, NUM_JOINTS, PELVIS

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "cmu-mocap-salsa"
# Frame counts from SOURCES.md section 7.
FILES = {"60_10": 1197, "61_10": 1197, "60_12": 1690, "61_12": 1690}


def _path(name: str) -> Path:
    path = CORPUS / f"{name}_scaled.bvh"
    if not path.is_file():
        pytest.fail(f"corpus file missing: {path}", pytrace=False)
    return path


def _probe(clip: Path) -> dict[str, str]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
         "stream=codec_name,pix_fmt,nb_read_frames,duration", "-of", "json", str(clip)],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    stream: dict[str, str] = json.loads(result.stdout)["streams"][0]
    return stream


@pytest.mark.parametrize(("name", "frames"), FILES.items())
def test_corpus_file_parses_with_the_documented_header(name: str, frames: int) -> None:
    """Each capture parses: documented frame count, 120 fps header, all canonical joints found."""
    motion = read_bvh(_path(name))
    assert motion.frames == frames
    assert header_rate(motion.frame_time_s) == 120.0
    assert sum(1 for j in motion.joints if not j.name.endswith("_end")) == 43
    keypoints = canonical_keypoints(motion)
    assert keypoints.shape == (frames, NUM_JOINTS, 3)
    assert np.isfinite(keypoints).all()


@pytest.mark.parametrize("name", FILES)
def test_frame_rate_check_finds_60_fps(name: str) -> None:
    """At the 120 fps header the dancers would step over 2.8 times a second; 60 fps is chosen."""
    motion = read_bvh(_path(name))
    finding = detect_frame_rate(canonical_keypoints(motion), header_rate(motion.frame_time_s))
    assert finding.header_fps == 120.0
    assert finding.fps == 60.0
    assert finding.cadence[120.0] > 2.8
    assert 1.2 < finding.cadence[60.0] < 2.2
    assert "outside" in finding.reason


def test_lead_and_follow_of_one_take_step_together() -> None:
    """Lead (60) and follow (61) of the same take count the same number of steps."""
    steps = [
        detect_frame_rate(canonical_keypoints(read_bvh(_path(name))), 120.0).steps
        for name in ("60_10", "61_10")
    ]
    assert steps[0] == steps[1]


def test_split_gives_moves_of_whole_counts_in_the_canonical_frame() -> None:
    """60_10 at 180 BPM, 8 counts: seven 160-frame moves at 60 fps, facing +z, on the floor."""
    finding, drafts = drafts_from_bvh(_path("60_10"), BvhSplitOptions(bpm=180.0))
    assert finding.fps == 60.0
    assert len(drafts) == 1197 // 160
    assert [d.move_id for d in drafts[:2]] == ["60-10-scaled-01", "60-10-scaled-02"]
    for draft in drafts:
        move = draft.as_move(f"moves/salsa/{draft.move_id}.mp4")
        assert move.keypoints.shape == (160, NUM_JOINTS, 3)
        assert move.duration_s == pytest.approx(8 * 60 / 180, abs=1 / 60)
        assert (move.style, move.tempo_bpm, move.counts, move.fps) == ("salsa", 180.0, 8, 60.0)
        hips = move.keypoints[0, JOINT_INDEX["l_hip"]] - move.keypoints[0, JOINT_INDEX["r_hip"]]
        assert hips[0] > 0.1 and abs(hips[2]) < 0.05  # dancer's left is +x
        assert np.allclose(move.keypoints[:6, PELVIS, [0, 2]].mean(axis=0), 0.0, atol=0.02)
        ankles = move.keypoints[:, [JOINT_INDEX["l_ankle"], JOINT_INDEX["r_ankle"]], 1]
        assert -0.05 < float(np.median(ankles.min(axis=1))) < 0.2


def test_rendered_corpus_clip_is_h264_of_the_move_length(tmp_path: Path) -> None:
    """A move's clip plays as H.264 yuv420p, 80 frames at 30 fps = 8 counts at 180 BPM."""
    _, drafts = drafts_from_bvh(_path("61_12"), BvhSplitOptions(bpm=180.0, start_s=1.0))
    clip = tmp_path / "move.mp4"
    frames = render_clip(drafts[0].keypoints, drafts[0].fps, clip)
    stream = _probe(clip)
    assert (stream["codec_name"], stream["pix_fmt"]) == ("h264", "yuv420p")
    assert int(stream["nb_read_frames"]) == frames == 80
    assert float(stream["duration"]) == pytest.approx(8 * 60 / 180, abs=1 / 30)


def test_import_bvh_command_writes_a_bundle(tmp_path: Path) -> None:
    """`choreo moves import-bvh --bundle-only` reports the rate finding and writes every move."""
    result = CliRunner().invoke(
        app,
        ["moves", "import-bvh", str(_path("60_10")), "--bpm", "180", "--split-counts", "16",
         "--difficulty", "advanced", "--energy", "high", "--out", str(tmp_path), "--bundle-only"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "using 60 fps" in result.output
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert len(manifest["moves"]) == 1197 // 320
    entry = manifest["moves"][0]
    assert (entry["counts"], entry["difficulty"], entry["energy"]) == (16, "advanced", "high")
    assert (tmp_path / entry["clip"]).stat().st_size > 0
    assert np.load(tmp_path / entry["keypoints"]).shape == (320, NUM_JOINTS, 3)


def test_import_bvh_reports_a_bad_style_without_rendering(tmp_path: Path) -> None:
    """An unknown style fails with exit 1 and a message naming it, and writes no manifest."""
    result = CliRunner().invoke(
        app, ["moves", "import-bvh", str(_path("60_10")), "--bpm", "180", "--style", "polka",
              "--out", str(tmp_path), "--bundle-only"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "unknown style 'polka'" in result.output
    assert not (tmp_path / "manifest.json").exists()
