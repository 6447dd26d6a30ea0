"""BVH parsing, forward kinematics, and turning a capture into moves (no files, no ffmpeg)."""

from __future__ import annotations

import numpy as np
import pytest

from choreography.moves.bvh import parse_bvh, world_positions
from choreography.moves.bvh_import import (
    canonical_frame,
    canonical_keypoints,
    detect_frame_rate,
    header_rate,
    split_counts,
)
from choreography.moves.procedural_motion import MotionRecipe, generate_keypoints
from choreography.moves.skeleton import JOINT_INDEX, NUM_JOINTS, PELVIS
from schemas.errors import InvalidInput

ARM_BVH = """HIERARCHY
ROOT hip
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT chest
  {
    OFFSET 0 1 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    JOINT arm
    {
      OFFSET 1 0 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      End Site
      {
        OFFSET 1 0 0
      }
    }
  }
}
MOTION
Frames: 3
Frame Time: 0.0333333
0 0 0 0 0 0 0 0 0 0 0 0
1 2 3 90 0 0 0 0 90 0 0 0
0 0 0 0 0 0 90 90 0 0 0 0
"""


def _positions(text: str = ARM_BVH) -> dict[str, np.ndarray]:
    motion = parse_bvh(text)
    positions = world_positions(motion)
    return {joint.name: positions[:, i] for i, joint in enumerate(motion.joints)}


def test_parse_reads_hierarchy_channels_and_motion() -> None:
    """Joints come in file order with parents, channels and end sites; MOTION has every value."""
    motion = parse_bvh(ARM_BVH)
    assert [j.name for j in motion.joints] == ["hip", "chest", "arm", "arm_end"]
    assert [j.parent for j in motion.joints] == [-1, 0, 1, 2]
    assert motion.joints[0].channels[3:] == ("Zrotation", "Xrotation", "Yrotation")
    assert [j.channel_start for j in motion.joints[:3]] == [0, 6, 9]
    assert motion.values.shape == (3, 12)
    assert motion.frame_time_s == pytest.approx(1 / 30, rel=1e-5)


def test_rest_frame_positions_are_summed_offsets() -> None:
    """With zero channels every joint sits at the sum of its chain's offsets."""
    positions = _positions()
    assert np.allclose(positions["chest"][0], [0, 1, 0])
    assert np.allclose(positions["arm"][0], [1, 1, 0])
    assert np.allclose(positions["arm_end"][0], [2, 1, 0])


def test_root_translation_and_rotations_propagate_down_the_chain() -> None:
    """Root moves to (1,2,3) and turns 90 deg about z; chest turns 90 deg about y."""
    positions = _positions()
    assert np.allclose(positions["hip"][1], [1, 2, 3])
    assert np.allclose(positions["chest"][1], [0, 2, 3])  # Rz90 @ (0,1,0) = (-1,0,0)
    assert np.allclose(positions["arm"][1], [0, 2, 2])  # Rz90 @ Ry90 @ (1,0,0) = (0,0,-1)
    assert np.allclose(positions["arm_end"][1], [0, 2, 1])  # the arm adds no rotation


def test_rotation_channels_apply_in_the_listed_order() -> None:
    """Chest channels 'Zrotation Xrotation' at 90/90 mean Rz @ Rx, not Rx @ Rz."""
    # Rz90 @ Rx90 @ (1,0,0) = (0,1,0), so the arm sits above the chest at (0,1,0).
    assert np.allclose(_positions()["arm"][2], [0, 2, 0])
    swapped = ARM_BVH.replace(
        "CHANNELS 3 Zrotation Xrotation Yrotation", "CHANNELS 3 Xrotation Zrotation Yrotation", 1
    )
    # Read as X=90 then Z=90: Rx90 @ Rz90 @ (1,0,0) = (0,0,1).
    assert np.allclose(_positions(swapped)["arm"][2], [0, 1, 1])


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        (ARM_BVH.replace("Frames: 3", "Frames: 4"), "MOTION has 36 values, expected 4 frames"),
        (ARM_BVH.replace("OFFSET 0 1 0", "OFFSET 0 one 0"), r"<bvh>:8: expected y, found 'one'"),
        (ARM_BVH.replace("Xrotation Yrotation\n    JOINT arm", "Wobble Yrotation\n    JOINT arm"),
         "expected a channel name"),
        (ARM_BVH.replace("HIERARCHY", "HEIRARCHY"), "expected 'HIERARCHY'"),
        (ARM_BVH.replace("Frame Time: 0.0333333", "Frame Time: 0"), "Frame Time: must be positive"),
        (ARM_BVH.replace("1 2 3 90", "1 2 x 90"), r"<bvh>:25: not a number: 'x'"),
        (ARM_BVH.split("MOTION", maxsplit=1)[0], "unexpected end of file"),
    ],
)  # fmt: skip
def test_malformed_bvh_names_line_and_problem(broken: str, expected: str) -> None:
    """Each kind of malformed BVH raises InvalidInput saying where and what was expected."""
    with pytest.raises(InvalidInput, match=expected):
        parse_bvh(broken)


def test_missing_canonical_joint_is_named() -> None:
    """A skeleton without a joint the canonical skeleton needs says which one is missing."""
    with pytest.raises(InvalidInput, match="no joint for canonical 'neck'"):
        canonical_keypoints(parse_bvh(ARM_BVH))


@pytest.mark.parametrize(
    ("frame_time", "fps"),
    [(0.008333, 120.0), (0.0083333, 120.0), (0.0333333, 30.0), (0.01, 100.0), (0.007, 1 / 0.007)],
)
def test_header_rate_snaps_rounded_frame_times(frame_time: float, fps: float) -> None:
    """A frame time printed with few digits snaps to the common rate it stands for."""
    assert header_rate(frame_time) == pytest.approx(fps)


def _stepping(bpm: float = 112.0, fps: float = 30.0) -> np.ndarray:
    recipe = MotionRecipe("step-touch", "pump", "beginner", "high", bpm, counts=32, fps=fps)
    return generate_keypoints(recipe)


def test_frame_rate_check_keeps_a_plausible_header() -> None:
    """Side steps at 112 BPM (1.9 steps/s) keep the true 30 fps header rate."""
    finding = detect_frame_rate(_stepping(), 30.0)
    assert finding.fps == 30.0
    assert 1.5 < finding.cadence[30.0] < 2.3


def test_frame_rate_check_halves_a_doubled_header() -> None:
    """The same motion labelled 60 fps steps implausibly fast, so 30 fps is chosen and why."""
    finding = detect_frame_rate(_stepping(), 60.0)
    assert finding.fps == 30.0
    assert finding.cadence[60.0] > 2.8
    assert "outside" in finding.reason


def test_split_counts_cuts_whole_windows_of_beats() -> None:
    """8 counts at 120 BPM and 60 fps are 240-frame moves; the leftover tail is dropped."""
    keypoints = np.zeros((1000, NUM_JOINTS, 3), np.float32)
    parts = split_counts(keypoints, 60.0, 120.0, 8)
    assert [start for start, _ in parts] == [0.0, 4.0, 8.0, 12.0]
    assert all(part.shape == (240, NUM_JOINTS, 3) for _, part in parts)
    assert split_counts(keypoints, 60.0, 120.0, 8, start_s=2.0)[0][0] == 2.0


def test_split_counts_refuses_a_capture_shorter_than_one_move() -> None:
    """A capture too short for one move is an error saying how many frames were needed."""
    with pytest.raises(InvalidInput, match="needs 240 frames"):
        split_counts(np.zeros((100, NUM_JOINTS, 3), np.float32), 60.0, 120.0, 8)


def test_canonical_frame_faces_forward_from_the_origin() -> None:
    """A dancer facing +x, standing at (5, 0, 5), is turned to face +z with the pelvis at x=z=0."""
    keypoints = _stepping()[:60]
    turned = keypoints.copy()
    turned[..., 0], turned[..., 2] = keypoints[..., 2] + 5.0, -keypoints[..., 0] + 5.0
    result = canonical_frame(turned, 30.0, floor_y=0.0)
    hips = result[0, JOINT_INDEX["l_hip"]] - result[0, JOINT_INDEX["r_hip"]]
    assert hips[0] > 0.15 and abs(hips[2]) < 1e-3
    assert np.allclose(result[:3, PELVIS, [0, 2]].mean(axis=0), 0.0, atol=1e-3)
