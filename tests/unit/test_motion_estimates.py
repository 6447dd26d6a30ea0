"""Estimates from motion: tempo from motion beats, the counted window, energy, difficulty."""

from __future__ import annotations

import numpy as np
import pytest

from choreography.moves import motion_estimates as me
from choreography.moves.bundle import MoveDraft
from choreography.moves.demo_library import demo_drafts
from choreography.moves.pose_landmarks import one_euro
from choreography.moves.skeleton import JOINT_INDEX as J
from choreography.moves.skeleton import rest_pose
from schemas.errors import InvalidInput


def _pumping(bpm: float, seconds: float, fps: float = 30.0, delay_s: float = 0.0) -> np.ndarray:
    """Arms pumping up and down, stopping on every beat (speed minima on the beats)."""
    t = np.arange(round(seconds * fps)) / fps
    phase = np.clip(t - delay_s, 0, None) * bpm / 60.0
    lift = 0.15 * (1 - np.cos(np.pi * phase))  # one stroke per beat, still at each beat
    if delay_s:
        lift[t < delay_s] = 0.0
    keypoints = np.repeat(rest_pose()[None], t.size, axis=0).astype(np.float64)
    for joint in ("l_wrist", "r_wrist", "l_elbow", "r_elbow"):
        keypoints[:, J[joint], 1] += lift * (1.0 if "wrist" in joint else 0.5)
    return keypoints.astype(np.float32)


@pytest.mark.parametrize("bpm", [92.0, 110.0, 128.0])
def test_tempo_from_a_periodic_motion(bpm: float) -> None:
    """Arms that stop on every beat give the tempo within 3 % (30 fps quantises intervals)."""
    tempo = me.motion_tempo(_pumping(bpm, 8.0), 30.0)
    assert tempo is not None
    assert tempo.bpm == pytest.approx(bpm, rel=0.03)
    assert len(tempo.strong_beats_s) >= 10


def test_tempo_survives_landmark_jitter_after_smoothing() -> None:
    """2 mm of jitter on every joint, One Euro-smoothed as the import does, adds no beats."""
    noisy = _pumping(110.0, 8.0) + np.random.default_rng(2).normal(0, 0.002, (240, 16, 3))
    smooth = one_euro(noisy, 30.0, min_cutoff=3.0, beta=1.0)
    tempo = me.motion_tempo(smooth.astype(np.float32), 30.0)
    assert tempo is not None
    assert tempo.bpm == pytest.approx(110.0, rel=0.03)


def test_no_tempo_from_a_still_pose() -> None:
    """Standing still has no motion beats, so no tempo (the caller asks for --bpm)."""
    still = np.repeat(rest_pose()[None], 120, axis=0)
    assert me.motion_tempo(still, 30.0) is None


def test_tempo_folds_into_one_octave() -> None:
    """A body marking every other beat (50 BPM) reads as 100; 240 reads as 120."""
    assert me.fold_tempo(50.0) == 100.0
    assert me.fold_tempo(240.0) == 120.0


def test_counts_start_at_the_first_strong_beat_in_whole_eight_counts() -> None:
    """After a still second, the window starts at the first strong beat and holds 8-counts."""
    keypoints = _pumping(120.0, 12.0, delay_s=1.0)
    tempo = me.motion_tempo(keypoints, 30.0)
    assert tempo is not None
    first = tempo.strong_beats_s[0]
    assert 1.0 <= first <= 1.6
    window = me.count_window(len(keypoints), 30.0, 120.0, first_beat_s=first)
    assert window.counts == 16  # 11 s left: two 8-counts of 4 s
    assert window.start_frame == round(first * 30)
    assert window.frames == 240


def test_counts_given_fit_the_clip_or_fail_naming_the_lengths() -> None:
    """Counts given start as late as needed to fit; too many counts is one clear error."""
    window = me.count_window(100, 60.0, 144.0, first_beat_s=0.5, counts=4)
    assert (window.start_frame, window.frames, window.counts) == (0, 100, 4)
    with pytest.raises(InvalidInput, match=r"8 counts at 144 BPM need 3.33 s; the clip has 1.67"):
        me.count_window(100, 60.0, 144.0, first_beat_s=None, counts=8)


def test_short_clip_gets_one_bar_of_four() -> None:
    """A clip too short for one 8-count but long enough for 4 counts gets 4."""
    window = me.count_window(90, 30.0, 120.0, first_beat_s=0.2)
    assert window.counts == 4
    assert window.start_frame + window.frames <= 90


@pytest.fixture(scope="module")
def demo() -> list[MoveDraft]:
    """The procedural demo library's 48 labelled moves."""
    return demo_drafts()


def test_energy_agrees_with_the_demo_library_labels(demo: list[MoveDraft]) -> None:
    """The motion's energy matches the demo library's label on at least 44 of 48 moves (45)."""
    agree = sum(me.energy_level(d.keypoints, d.fps) == d.energy for d in demo)
    assert agree >= 44


def test_difficulty_suggestion_agrees_with_the_demo_library(demo: list[MoveDraft]) -> None:
    """The suggested difficulty matches the label on at least 44 of 48 moves (48)."""
    agree = sum(me.difficulty_level(d.keypoints, d.fps) == d.difficulty for d in demo)
    assert agree >= 44


def test_motion_tempo_matches_the_demo_library_tempo(demo: list[MoveDraft]) -> None:
    """Every demo move's motion tempo is within 4 % of its recorded tempo."""
    off = [d.move_id for d in demo
           if (t := me.motion_tempo(d.keypoints, d.fps)) is None
           or abs(t.bpm - d.tempo_bpm) > 0.04 * d.tempo_bpm]  # fmt: skip
    assert off == []


def test_energy_rises_with_speed() -> None:
    """The same pumping motion faster has more energy."""
    slow = me.energy_score(_pumping(80.0, 6.0), 30.0)
    fast = me.energy_score(_pumping(150.0, 6.0), 30.0)
    assert fast > slow > 0


def test_beat_interval_ignores_odd_intervals_and_alternating_frames() -> None:
    """The biggest group of similar intervals wins (a walk-in or a jump does not pull it), and
    17/19-frame alternation (100 BPM at 30 fps) averages to the beat."""
    assert me.beat_interval(np.array([0.6, 0.6, 0.77, 0.9, 1.17])) == pytest.approx(0.6)
    alternating = np.array([19, 17, 19, 17, 19, 17]) / 30.0
    assert me.beat_interval(alternating) == pytest.approx(0.6)
