"""The salsa library's logic on synthetic motion: 8-count grid, glitch checks, labels, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from choreography.moves.salsa import (
    COUNTS,
    GlitchLimits,
    basic_template,
    difficulty_of,
    feet_in_body_frame,
    find_eight_counts,
    find_takes,
    salsa_drafts,
    turning_deg,
    window_problems,
)
from choreography.moves.skeleton import JOINT_INDEX, PELVIS, rest_pose
from schemas.errors import InvalidInput

FPS = 60.0


def feet_signals(bpm: float, count_one_s: float, seconds: float, follow: bool) -> np.ndarray:
    """Foot signals (frames, 4) of a dancer doing the on-1 basic with count 1 at ``count_one_s``."""
    t = np.arange(int(seconds * FPS)) / FPS
    counts = (t - count_one_s) / (60.0 / bpm)
    template = basic_template(counts)
    left_forward = np.clip(template, 0, None) * 0.25
    right_forward = np.clip(template, None, 0) * 0.25
    if follow:  # the follow mirrors the lead: right back on 1, left forward on 5
        left_forward, right_forward = -right_forward, -left_forward
    noise = np.random.default_rng(3).normal(0, 0.01, (t.size, 4))
    signals = np.stack([left_forward, 0 * t + 0.1, right_forward, 0 * t - 0.1], axis=1)
    return signals + noise


def test_the_basic_template_is_forward_on_one_and_back_on_five() -> None:
    values = basic_template(np.array([1.0, 3.0, 5.0, 7.0]))  # counts 2, 4, 6, 8
    assert values.tolist() == [1.0, 0.0, -1.0, 0.0]


@pytest.mark.parametrize(("bpm", "count_one_s"), [(170.0, 0.9), (184.0, 2.1), (150.0, 0.2)])
def test_the_grid_finds_the_tempo_and_count_one_of_a_basic(bpm: float, count_one_s: float) -> None:
    feet = {
        "60": feet_signals(bpm, count_one_s, 30.0, follow=False),
        "61": feet_signals(bpm, count_one_s, 30.0, follow=True),
    }
    grid = find_eight_counts(feet, FPS)
    period = COUNTS * 60.0 / bpm
    assert grid.bpm == pytest.approx(bpm, rel=0.01)
    phase_error = (grid.starts_s[0] - count_one_s + period / 2) % period - period / 2
    assert abs(phase_error) <= 3 / FPS  # count 1, not count 5 (half a period away)
    steps = np.diff(grid.starts_s)
    assert np.allclose(steps, steps[0])  # back to back, a whole number of frames each
    assert grid.starts_s[-1] + grid.period_s <= 30.0


def test_one_dancer_alone_gives_the_same_grid() -> None:
    grid = find_eight_counts({"61": feet_signals(176.0, 1.3, 30.0, follow=True)}, FPS)
    period = COUNTS * 60.0 / 176.0
    assert grid.bpm == pytest.approx(176.0, rel=0.01)
    assert abs((grid.starts_s[0] - 1.3 + period / 2) % period - period / 2) <= 3 / FPS


def test_a_take_too_short_for_two_eight_counts_is_refused() -> None:
    with pytest.raises(InvalidInput, match="too short"):
        find_eight_counts({"60": feet_signals(170.0, 0.0, 4.0, follow=False)}, FPS)


def stepping_window(seconds: float = 2.8) -> np.ndarray:
    """A standing figure stepping side to side (feet travel), on a floor at 0."""
    frames = int(seconds * FPS)
    t = np.arange(frames) / FPS
    pose = np.repeat(rest_pose()[None], frames, axis=0).copy()
    for ankle, sign in (("l_ankle", 1.0), ("r_ankle", -1.0)):
        pose[:, JOINT_INDEX[ankle], 0] += sign * 0.15 * np.sin(2 * np.pi * 1.5 * t)
    return pose.astype(np.float32)


def problems(part: np.ndarray) -> list[str]:
    return window_problems(part, FPS, 0.0, 1.0, GlitchLimits())


def test_a_clean_stepping_window_has_no_problems() -> None:
    assert problems(stepping_window()) == []


def test_each_glitch_is_named() -> None:
    spike = stepping_window()
    spike[50, JOINT_INDEX["l_wrist"]] += 0.5  # a marker swap: half a metre in one frame
    assert any(p.startswith("speed spike") for p in problems(spike))

    tremble = stepping_window()
    tremble += np.random.default_rng(1).normal(0, 0.02, tremble.shape).astype(np.float32)
    assert any(p.startswith("tremble") for p in problems(tremble))

    still = np.repeat(rest_pose()[None], 168, axis=0)
    assert any(p.startswith("not stepping") for p in problems(still))

    crouch = stepping_window()
    crouch[:, :, 1] -= 0.4  # pelvis far below standing height, ankles under the floor
    found = problems(crouch)
    assert any(p.startswith("bending down") for p in found)
    assert any(p.startswith("foot under the floor") for p in found)

    head = stepping_window()
    head[:, JOINT_INDEX["head"]] = head[:, JOINT_INDEX["neck"]] + np.array([0.18, -0.02, 0.0])
    assert any(p.startswith("head off the neck") for p in problems(head))


def test_turning_counts_the_hip_line_rotation() -> None:
    part = np.repeat(rest_pose()[None], 120, axis=0).copy()
    angles = np.linspace(0, 2 * np.pi, 120)
    for joint in ("l_hip", "r_hip"):
        x = part[:, JOINT_INDEX[joint], 0].copy()
        part[:, JOINT_INDEX[joint], 0] = x * np.cos(angles)
        part[:, JOINT_INDEX[joint], 2] = x * np.sin(angles)
    assert turning_deg(part) == pytest.approx(360.0, abs=4.0)
    assert difficulty_of(360.0, 0.9) == "advanced"
    assert difficulty_of(60.0, 0.7) == "beginner"
    assert difficulty_of(60.0, 0.2) == "intermediate"
    assert difficulty_of(200.0, 0.9) == "intermediate"


def test_feet_in_body_frame_ignore_turning_and_travel() -> None:
    frames = 90
    pose = np.repeat(rest_pose()[None], frames, axis=0).astype(np.float64)
    angle = np.pi / 2  # the same stance turned a quarter and moved across the floor
    c, s = np.cos(angle), np.sin(angle)
    turn = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    moved = pose @ turn.T + np.array([1.0, 0.0, -2.0])
    straight = feet_in_body_frame(pose.astype(np.float32))
    turned = feet_in_body_frame(moved.astype(np.float32))
    assert np.allclose(straight, turned, atol=1e-5)
    assert straight[0, 1] > 0 > straight[0, 3]  # left ankle to the left, right to the right
    assert PELVIS == 0


def test_bad_corpus_folders_are_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not a folder"):
        find_takes(tmp_path / "absent")
    (tmp_path / "notes.txt").write_text("no captures")
    with pytest.raises(InvalidInput, match=r"no 60_NN_scaled\.bvh"):
        find_takes(tmp_path)
    (tmp_path / "60_03_scaled.bvh").write_text("HIERARCHY\n")
    with pytest.raises(InvalidInput, match="no captures of trial 99"):
        salsa_drafts(tmp_path, trials=["99"])
