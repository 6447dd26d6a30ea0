"""The assembled motion: stitching on the timeline, Bailando's motion beats, cut jumps, sliding."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from scipy.signal import argrelextrema

from choreography.moves.model import Move
from choreography.moves.skeleton import JOINT_INDEX, NUM_JOINTS, PELVIS, rest_pose
from choreography.planner.assembled_motion import (
    PLANT_SPEED_M_S,
    assemble_motion,
    bailando_motion_beats,
    cut_jumps,
    foot_sliding,
)
from choreography.planner.candidates import mirror_pose
from schemas.blueprint import Blueprint, parse_blueprint
from schemas.errors import InvalidInput
from tests.fixtures.blueprints import MovePlan, build_blueprint

FPS = 60.0
L_ANKLE, R_ANKLE, L_WRIST = JOINT_INDEX["l_ankle"], JOINT_INDEX["r_ankle"], JOINT_INDEX["l_wrist"]


def move(index: int, keypoints: np.ndarray, fps: float = FPS) -> Move:
    """A library move with id ``move-<index>``, as ``build_blueprint`` names its moves."""
    return Move(
        move_id=f"move-{index:03d}",
        name=f"Move {index}",
        style="salsa",
        difficulty="beginner",
        energy="medium",
        tempo_bpm=120.0,
        counts=4,
        clip_uri=f"moves/salsa/move-{index:03d}.mp4",
        keypoints=keypoints.astype(np.float32),
        fps=fps,
    )


def still(seconds: float, shift: tuple[float, float, float] = (0, 0, 0)) -> np.ndarray:
    """The rest pose held for ``seconds``, moved by ``shift``."""
    frames = round(seconds * FPS)
    return np.repeat(rest_pose()[None] + np.asarray(shift, dtype=np.float32), frames, axis=0)


def blueprint(*plans: MovePlan) -> Blueprint:
    """Moves back to back at 120 BPM (2 counts = 1 s each by default)."""
    return parse_blueprint(json.dumps(build_blueprint(plans, song_duration_s=30.0)).encode())


def test_frames_follow_the_timeline_and_the_clip_spans() -> None:
    """Each frame shows its move at clip time clip_in + (t - start) * speed, at 60 fps."""
    ramp = still(6.0)
    ramp[:, L_WRIST, 0] = np.arange(len(ramp)) / FPS  # the wrist's x is the clip time
    bp = blueprint(MovePlan("moves/a.mp4", clip_in_s=0.5), MovePlan("moves/b.mp4", speed=1.1))
    motion = assemble_motion(bp, {"move-000": move(0, ramp), "move-001": move(1, ramp)})
    assert motion.keypoints.shape == (120, NUM_JOINTS, 3)
    assert motion.cut_frames == [60]
    wrist = motion.keypoints[:, L_WRIST, 0] - motion.keypoints[:, PELVIS, 0]
    assert wrist[:60] == pytest.approx(0.5 + np.arange(60) / FPS, abs=1e-5)
    assert wrist[60:] == pytest.approx(0.25 + np.arange(60) / FPS * 1.1, abs=1e-5)


def test_a_mirrored_move_is_seen_in_a_mirror() -> None:
    """A mirrored move swaps left and right and negates x, pose by pose."""
    raised = still(3.0)
    raised[:, L_WRIST, 1] += 0.8  # the left hand up
    bp = blueprint(MovePlan("moves/a.mp4", mirror=True))
    motion = assemble_motion(bp, {"move-000": move(0, raised)})
    assert motion.keypoints[10] == pytest.approx(mirror_pose(raised[10]), abs=1e-6)
    assert motion.keypoints[10, JOINT_INDEX["r_wrist"], 1] > motion.keypoints[10, L_WRIST, 1]


def test_the_pelvis_carries_on_across_a_cut_and_heights_stay() -> None:
    """The next move starts one step on from the last pelvis position, at its own height."""
    walk = still(3.0)
    walk[:, :, 2] += np.arange(len(walk))[:, None] * 0.01  # 1 cm a frame towards the camera
    far = still(3.0, shift=(5.0, 0.02, -4.0))
    bp = blueprint(MovePlan("moves/a.mp4"), MovePlan("moves/b.mp4"))
    motion = assemble_motion(bp, {"move-000": move(0, walk), "move-001": move(1, far)})
    pelvis = motion.keypoints[:, PELVIS]
    assert pelvis[60] - pelvis[59] == pytest.approx([0.0, 0.02, 0.01], abs=1e-5)


def test_moves_missing_from_the_library_are_named() -> None:
    """A blueprint move the library lacks fails with InvalidInput naming it."""
    bp = blueprint(MovePlan("moves/a.mp4"), MovePlan("moves/b.mp4"))
    with pytest.raises(InvalidInput, match="move-001"):
        assemble_motion(bp, {"move-000": move(0, still(3.0))})


def test_motion_beats_are_bailandos_calc_db() -> None:
    """Motion beats equal Bailando's calc_db (scipy's gaussian_filter, argrelextrema) / 60 fps."""
    rng = np.random.default_rng(4)
    wobbly = still(6.0) + rng.normal(0, 0.02, (360, NUM_JOINTS, 3)).cumsum(axis=0).astype(
        np.float32
    )
    motion = assemble_motion(
        blueprint(MovePlan("moves/a.mp4", counts=8)), {"move-000": move(0, wobbly)}
    )
    points = motion.keypoints.astype(np.float64)
    kinetic_vel = np.mean(np.sqrt(np.sum((points[1:] - points[:-1]) ** 2, axis=2)), axis=1)
    expected = argrelextrema(gaussian_filter(kinetic_vel, 5), np.less)[0]
    assert len(expected) >= 8
    assert bailando_motion_beats(motion.keypoints, motion.fps) == pytest.approx(
        list(expected / FPS)
    )


def test_travel_counts_in_the_motion_beats() -> None:
    """A body gliding with pauses has motion beats though its pose never changes (world speed)."""
    glide = still(4.0)
    t = np.arange(len(glide)) / FPS
    glide[:, :, 0] += (0.2 * np.sin(2 * np.pi * t)).astype(np.float32)[:, None]
    motion = assemble_motion(
        blueprint(MovePlan("moves/a.mp4", counts=6)), {"move-000": move(0, glide)}
    )
    beats = bailando_motion_beats(motion.keypoints, motion.fps)
    assert len(beats) == 5
    assert beats == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.5], abs=2 / FPS)


def test_a_cut_between_poses_jumps_by_their_distance() -> None:
    """Held poses whose hands are 0.8 m apart jump by the mean over joints; neither move moves."""
    other = still(3.0)
    other[:, [L_WRIST, JOINT_INDEX["r_wrist"]], 2] += 0.8  # both hands forward by 0.8 m
    bp = blueprint(MovePlan("moves/a.mp4"), MovePlan("moves/b.mp4"))
    motion = assemble_motion(bp, {"move-000": move(0, still(3.0)), "move-001": move(1, other)})
    (jump,) = cut_jumps(motion)
    assert jump.time_s == pytest.approx(1.0)
    assert jump.jump_m == pytest.approx(2 * 0.8 / NUM_JOINTS, abs=1e-6)
    assert jump.median_step_m == pytest.approx(0.0, abs=1e-7)
    assert not jump.below_median_step


def test_a_seamless_cut_is_below_the_median_step() -> None:
    """Cutting one steady swing into two moves at the seam jumps by a normal frame step or less."""
    swing = still(6.0)
    t = np.arange(len(swing)) / FPS
    swing[:, L_WRIST, 0] += (0.3 * np.sin(2 * np.pi * t / 3.0)).astype(np.float32)
    bp = blueprint(MovePlan("moves/a.mp4", clip_in_s=0.0), MovePlan("moves/b.mp4", clip_in_s=1.0))
    motion = assemble_motion(bp, {"move-000": move(0, swing), "move-001": move(1, swing)})
    (jump,) = cut_jumps(motion)
    assert 0 < jump.jump_m <= jump.median_step_m * 1.01


def test_feet_planted_apart_slide_at_the_cut_only() -> None:
    """Feet held still inside moves but 20 cm apart across the cut slide only near the cut."""
    wide = still(3.0)
    wide[:, L_ANKLE, 0] += 0.2
    bp = blueprint(MovePlan("moves/a.mp4"), MovePlan("moves/b.mp4"))
    motion = assemble_motion(bp, {"move-000": move(0, still(3.0)), "move-001": move(1, wide)})
    assert motion.planted.all()
    sliding = foot_sliding(motion)
    assert sliding.inside_moves_m_s == pytest.approx(0.0, abs=1e-6)
    # one cut step of 0.2 m at 60 fps among 2 feet x 13 steps within 0.1 s of the cut
    assert sliding.near_cut_steps == 2 * 13
    assert sliding.near_cuts_m_s == pytest.approx(0.2 * FPS / 26, rel=1e-4)
    assert sliding.cuts_add_sliding


def test_a_slow_slide_of_a_planted_foot_is_measured_and_a_raised_foot_is_not() -> None:
    """A foot on the floor creeping at 10 cm/s counts; the same foot 10 cm up does not."""
    creep = still(3.0)
    creep[:, L_ANKLE, 2] += np.arange(len(creep)) / FPS * 0.10
    raised = creep.copy()
    raised[:, L_ANKLE, 1] += 0.10
    for keypoints, expected in ((creep, 0.05), (raised, 0.0)):  # the right foot stands still
        motion = assemble_motion(
            blueprint(MovePlan("moves/a.mp4", counts=4)), {"move-000": move(0, keypoints)}
        )
        sliding = foot_sliding(motion)
        assert sliding.mean_m_s == pytest.approx(expected, abs=1e-4)
        assert sliding.near_cuts_m_s is None and sliding.cuts_add_sliding is None


def test_a_fast_foot_is_not_planted() -> None:
    """A foot on the floor moving faster than the contact speed is in flight, not sliding."""
    fast = still(3.0)
    fast[:, L_ANKLE, 2] += np.arange(len(fast)) / FPS * (PLANT_SPEED_M_S + 0.1)
    motion = assemble_motion(
        blueprint(MovePlan("moves/a.mp4", counts=4)), {"move-000": move(0, fast)}
    )
    assert not motion.planted[:, 0].any()
    assert motion.planted[:, 1].all()
