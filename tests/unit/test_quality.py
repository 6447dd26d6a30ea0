"""Quality figures: Beat Align Score, motion beats, cut-on-beat error, repeats, pose jumps."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest

from choreography.moves.model import Move
from choreography.moves.skeleton import JOINT_INDEX, NUM_JOINTS, rest_pose
from choreography.planner.candidates import MoveCandidate, motion_beats
from choreography.planner.output import video_output
from choreography.planner.planner import plan_choreography
from choreography.planner.quality import (
    beat_align_score,
    distinct_moves_per_minute,
    move_beat_align_score,
    quality_report,
    window_music_beats,
)
from schemas.blueprint import Blueprint
from tests.fixtures.synthetic_library import SectionSpec, grid_analysis, synthetic_candidates

CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def test_perfectly_aligned_beats_score_one() -> None:
    """Motion beats on every music beat give a Beat Align Score of exactly 1."""
    beats = [0.5 * k for k in range(20)]
    assert beat_align_score(beats, beats) == 1.0


def test_offset_motion_scores_lower_and_as_bailando_defines() -> None:
    """Motion three frames (at 60 fps) late scores exp(-1/2); half a beat late scores ~0."""
    beats = [0.5 * k for k in range(20)]
    late = [b + 3 / 60 for b in beats]
    assert beat_align_score(beats, late) == pytest.approx(math.exp(-0.5))
    half = [b + 0.25 for b in beats]
    assert beat_align_score(beats, half) < 1e-5


def test_no_motion_beats_score_zero_and_no_music_beats_is_an_error() -> None:
    """Motion that never pauses scores 0; a window without music beats raises ValueError."""
    assert beat_align_score([1.0, 2.0], []) == 0.0
    with pytest.raises(ValueError, match="at least one music beat"):
        beat_align_score([], [1.0])


def test_motion_beats_are_the_pauses_of_the_motion() -> None:
    """A joint swinging so that it stops on every beat yields motion beats on the beats."""
    fps, beat_s = 60.0, 0.5
    t = np.arange(int(4 * fps)) / fps
    keypoints = np.zeros((t.size, NUM_JOINTS, 3), dtype=np.float32)
    keypoints[:, 6, 0] = 0.3 * np.cos(np.pi * t / beat_s)  # the left wrist turns at each beat
    found = motion_beats(keypoints, fps)
    expected = [1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
    assert len(found) >= len(expected)
    for beat in expected:
        assert min(abs(f - beat) for f in found) <= 1 / fps


def on_beat(candidates: list[MoveCandidate], shift_beats: float) -> list[MoveCandidate]:
    """Candidates whose motion beats sit on their counts, shifted by a fraction of a beat."""
    out = []
    for c in candidates:
        period = 60.0 / c.tempo_bpm
        beats = tuple((k + shift_beats) * period for k in range(c.counts))
        out.append(replace(c, motion_beats_s=beats))
    return out


def planned(candidates: list[MoveCandidate]) -> Blueprint:
    """A plan over a steady 120 BPM song with a repeated chorus."""
    analysis = grid_analysis(
        120, [SectionSpec("v", 2, 0.2), SectionSpec("c", 2, 0.9), SectionSpec("c", 2, 0.9)]
    )
    return plan_choreography(
        analysis,
        None,
        candidates,
        task_id="t",
        audio_uri="songs/a.wav",
        output=video_output("videos/t.mp4"),
        created_at=CREATED,
    )


def test_a_plan_of_on_beat_moves_scores_near_one() -> None:
    """Moves that pause on their counts, warped onto the beat grid, score at least 0.99."""
    candidates = on_beat(synthetic_candidates(6, seed=2), 0.0)
    blueprint = planned(candidates)
    report = quality_report(blueprint, {c.move_id: c for c in candidates})
    assert report.beat_align_score is not None
    assert report.beat_align_score >= 0.99


def test_a_plan_of_off_beat_moves_scores_near_zero() -> None:
    """The same moves pausing half a beat late score below 0.05."""
    candidates = on_beat(synthetic_candidates(6, seed=2), 0.5)
    blueprint = planned(candidates)
    report = quality_report(blueprint, {c.move_id: c for c in candidates})
    assert report.beat_align_score is not None
    assert report.beat_align_score < 0.05


def test_cut_errors_measure_the_distance_to_the_nearest_beat() -> None:
    """Shifting the beat grid by 20 ms keeps cuts within a frame; by 50 ms puts all outside."""
    blueprint = planned(synthetic_candidates(6, seed=2))
    report = quality_report(blueprint)
    assert report.cuts_on_beat_share == 1.0
    assert report.max_cut_error_s == pytest.approx(0, abs=1e-9)
    for shift, share in ((0.02, 1.0), (0.05, 0.0)):
        song = blueprint.song.model_copy(
            update={"beats_s": [b + shift for b in blueprint.song.beats_s]}
        )
        shifted = quality_report(blueprint.model_copy(update={"song": song}))
        assert shifted.cuts_on_beat_share == share
        assert shifted.max_cut_error_s == pytest.approx(shift)


def test_repeated_sections_are_counted_and_checked() -> None:
    """The repeated chorus is counted, and counted as danced the same only when it is."""
    blueprint = planned(synthetic_candidates(6, seed=2))
    report = quality_report(blueprint)
    assert (report.repeated_sections, report.repeated_with_same_moves) == (1, 1)
    moves = list(blueprint.moves_used)
    first_repeat = next(i for i, m in enumerate(moves) if m.section.repeat_of is not None)
    moves[first_repeat] = moves[first_repeat].model_copy(update={"move_id": "someone-else"})
    broken = quality_report(blueprint.model_copy(update={"moves_used": moves}))
    assert (broken.repeated_sections, broken.repeated_with_same_moves) == (1, 0)


def test_pose_jumps_from_candidates_match_the_recorded_reasons() -> None:
    """Recomputed pose jumps at cuts equal the transition costs the planner recorded."""
    candidates = synthetic_candidates(6, seed=2)
    blueprint = planned(candidates)
    from_library = quality_report(blueprint, {c.move_id: c for c in candidates})
    from_reasons = quality_report(blueprint)
    assert from_library.mean_pose_jump_m == pytest.approx(from_reasons.mean_pose_jump_m, abs=1e-4)
    assert from_library.max_pose_jump_m is not None and from_library.max_pose_jump_m > 0


def test_repeated_sections_report_the_share_of_identical_moves() -> None:
    """Changing one move of the repeated chorus leaves the others counted as identical."""
    blueprint = planned(synthetic_candidates(6, seed=2))
    report = quality_report(blueprint)
    compared = report.repeated_moves_compared
    assert compared >= 2
    assert (report.repeated_moves_identical, report.repeated_identical_share) == (compared, 1.0)
    moves = list(blueprint.moves_used)
    first_repeat = next(i for i, m in enumerate(moves) if m.section.repeat_of is not None)
    moves[first_repeat] = moves[first_repeat].model_copy(update={"move_id": "someone-else"})
    broken = quality_report(blueprint.model_copy(update={"moves_used": moves}))
    assert broken.repeated_moves_identical == compared - 1
    assert broken.repeated_identical_share == pytest.approx((compared - 1) / compared)
    assert f"{compared - 1} of {compared} moves identical" in "\n".join(broken.lines())


def test_distinct_moves_per_minute_counts_each_move_once() -> None:
    """Three distinct ids (one used twice) over 30 s are 6 per minute; no duration is an error."""
    assert distinct_moves_per_minute(["a", "b", "a", "c"], 30.0) == pytest.approx(6.0)
    with pytest.raises(ValueError, match="duration_s"):
        distinct_moves_per_minute(["a"], 0.0)


def test_the_report_counts_distinct_moves_over_the_window() -> None:
    """The report's variety is the blueprint's distinct move ids per window minute."""
    blueprint = planned(synthetic_candidates(6, seed=2))
    report = quality_report(blueprint)
    ids = {m.move_id for m in blueprint.moves_used}
    assert report.distinct_moves == len(ids)
    minutes = blueprint.song.window.length_s / 60
    assert report.distinct_moves_per_minute == pytest.approx(len(ids) / minutes)


def swinging_moves(candidates: list[MoveCandidate], shift_beats: float) -> dict[str, Move]:
    """Library moves whose left wrist swings and stops on each count (shifted by a fraction)."""
    fps, out = 60.0, {}
    for c in candidates:
        period = 60.0 / c.tempo_bpm
        t = np.arange(round(c.clip_duration_s * fps) + 2) / fps
        keypoints = np.repeat(rest_pose()[None], t.size, axis=0)
        swing = 0.3 * np.cos(np.pi * (t / period - shift_beats))
        keypoints[:, JOINT_INDEX["l_wrist"], 0] += swing.astype(np.float32)
        out[c.move_id] = Move(
            move_id=c.move_id,
            name=c.name,
            style=c.style,
            difficulty=c.difficulty,
            energy=c.energy,
            tempo_bpm=c.tempo_bpm,
            counts=c.counts,
            clip_uri=c.clip_uri,
            keypoints=keypoints,
            fps=fps,
        )
    return out


def test_the_assembled_motion_scores_on_beat_moves_high_and_off_beat_moves_low() -> None:
    """Stitched moves that stop on their counts score >= 0.9; half a beat late, < 0.1."""
    candidates = synthetic_candidates(6, seed=2)
    blueprint = planned(candidates)
    on = quality_report(blueprint, moves=swinging_moves(candidates, 0.0)).motion
    off = quality_report(blueprint, moves=swinging_moves(candidates, 0.5)).motion
    assert on is not None and off is not None
    assert on.beat_align_score >= 0.9
    assert off.beat_align_score < 0.1
    assert on.music_beats == len(window_music_beats(blueprint))


def test_the_report_lists_every_cut_with_its_jump() -> None:
    """With the moves, the lines carry the assembled BAS, sliding, and one line per cut."""
    candidates = synthetic_candidates(6, seed=2)
    blueprint = planned(candidates)
    report = quality_report(blueprint, moves=swinging_moves(candidates, 0.0))
    assert report.motion is not None
    assert len(report.motion.cut_lines()) == len(blueprint.moves_used) - 1
    text = "\n".join(report.lines())
    assert "BAS, assembled" in text and "foot sliding" in text and "cut pose jumps" in text
    assert report.motion.cuts_below_median_step_share is not None


def test_a_move_alone_scores_against_its_own_counts() -> None:
    """A move stopping on its counts scores 7/8 (count 1 is its first frame, never a minimum)."""
    (candidate,) = synthetic_candidates(1, seed=3)
    on = swinging_moves([candidate], 0.0)[candidate.move_id]
    off = swinging_moves([candidate], 0.5)[candidate.move_id]
    assert move_beat_align_score(on) == pytest.approx(7 / 8, abs=0.02)
    assert move_beat_align_score(off) < 0.1
