"""Planner behaviours on hand-made songs: energy, tempo fitting, pose continuity, errors."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest

from choreography.music.model import MusicAnalysis
from choreography.planner.candidates import MoveCandidate, mirror_pose
from choreography.planner.costs import PlannerSettings
from choreography.planner.output import video_output
from choreography.planner.planner import plan_choreography
from schemas.blueprint import Blueprint, Practice
from schemas.errors import InvalidInput
from schemas.events import Constraints, OutputSpec
from tests.fixtures.synthetic_library import SectionSpec, grid_analysis, synthetic_candidates

CREATED = datetime(2026, 1, 1, tzinfo=UTC)
VERSE_CHORUS = [
    SectionSpec("verse", 4, 0.1),
    SectionSpec("chorus", 4, 0.95),
    SectionSpec("verse", 4, 0.1),
    SectionSpec("chorus", 4, 0.95),
]


def plan(
    analysis: MusicAnalysis,
    candidates: list[MoveCandidate],
    constraints: Constraints | None = None,
    settings: PlannerSettings | None = None,
) -> Blueprint:
    """The planner with fixed ids and creation time."""
    return plan_choreography(
        analysis,
        constraints or Constraints(style="hip-hop", difficulty="beginner"),
        candidates,
        task_id="t-1",
        audio_uri="songs/test.wav",
        output=video_output("videos/t-1.mp4"),
        seed=1,
        settings=settings,
        created_at=CREATED,
    )


def with_energy(candidates: list[MoveCandidate], energies: list[str]) -> list[MoveCandidate]:
    """The candidates with the given energies, cycling, and equal search scores."""
    return [
        replace(c, energy=energies[i % len(energies)], score=0.5) for i, c in enumerate(candidates)
    ]


def test_calm_sections_get_calmer_moves_than_the_chorus() -> None:
    """Mean move energy in the loud chorus is above that of the quiet verse."""
    analysis = grid_analysis(120, VERSE_CHORUS)
    candidates = with_energy(synthetic_candidates(12, seed=3), ["low", "medium", "high"])
    blueprint = plan(analysis, candidates)
    energy = {c.move_id: c.energy_value for c in candidates}
    by_label: dict[str, list[float]] = {}
    for move in blueprint.moves_used:
        by_label.setdefault(move.section.label, []).append(energy[move.move_id])
    assert np.mean(by_label["chorus"]) > np.mean(by_label["verse"]) + 0.3


def test_requested_high_energy_raises_the_moves_energy() -> None:
    """Asking for high energy gives more energetic moves than asking for low energy."""
    analysis = grid_analysis(120, VERSE_CHORUS)
    candidates = with_energy(synthetic_candidates(12, seed=3), ["low", "medium", "high"])
    energy = {c.move_id: c.energy_value for c in candidates}

    def mean_energy(level: str) -> float:
        constraints = Constraints(style="hip-hop", difficulty="beginner", energy=level)
        return float(
            np.mean([energy[m.move_id] for m in plan(analysis, candidates, constraints).moves_used])
        )

    assert mean_energy("high") > mean_energy("low")


def test_a_slow_move_is_danced_at_half_time_on_a_fast_song() -> None:
    """Moves recorded at half the song's tempo span twice their counts, at speed near 1."""
    analysis = grid_analysis(140, [SectionSpec("a", 4, 0.5)])
    slow = synthetic_candidates(4, seed=2, tempo_bpm=70, tempo_spread=0.02)
    blueprint = plan(analysis, slow)
    assert all(m.counts == 16 for m in blueprint.moves_used)
    assert all(abs(m.speed_factor - 1) < 0.05 for m in blueprint.moves_used)
    assert "half-time counting" in blueprint.moves_used[0].reason.text


def test_moves_whose_tempo_fits_no_counting_are_refused_with_the_tempo_named() -> None:
    """A library recorded far from the song's tempo raises InvalidInput naming the tempo."""
    analysis = grid_analysis(120, [SectionSpec("a", 4, 0.5)])
    fast = synthetic_candidates(4, seed=2, tempo_bpm=170, tempo_spread=0.01)
    with pytest.raises(InvalidInput, match=r"tempo 120\.0 BPM.*speed band"):
        plan(analysis, fast)


def test_no_candidate_of_the_requested_style_names_the_style() -> None:
    """Filters that admit no candidate raise InvalidInput naming style and difficulty."""
    analysis = grid_analysis(120, [SectionSpec("a", 2, 0.5)])
    candidates = synthetic_candidates(4, style="salsa")
    with pytest.raises(InvalidInput, match=r"style 'hip-hop' and difficulty at most 'beginner'"):
        plan(analysis, candidates)


def test_an_empty_candidate_list_is_refused() -> None:
    """No candidates at all is a clear InvalidInput, not an index error."""
    analysis = grid_analysis(120, [SectionSpec("a", 2, 0.5)])
    with pytest.raises(InvalidInput, match="no candidate moves"):
        plan(analysis, [])


def test_a_song_without_a_complete_phrase_is_refused() -> None:
    """An analysis with no 8-count phrase raises InvalidInput saying there is nothing to dance."""
    analysis = grid_analysis(120, [SectionSpec("a", 1, 0.5)]).model_copy(
        update={"phrases": [], "sections": []}
    )
    with pytest.raises(InvalidInput, match="no complete 8-count phrase"):
        plan(analysis, synthetic_candidates(4))


def test_unfillable_sections_name_the_section_and_move_lengths() -> None:
    """Only 16-count moves cannot fill a one-phrase section; the error says so."""
    analysis = grid_analysis(120, [SectionSpec("a", 1, 0.5)])
    long_moves = synthetic_candidates(4, seed=1, counts=(16,), tempo_spread=0.01)
    with pytest.raises(InvalidInput, match=r"section 0 \(a, 2 bars\).*\[16\] beats"):
        plan(analysis, long_moves)


def test_pose_continuity_lowers_the_pose_jump_at_cuts() -> None:
    """With the pose term on, the mean pose jump is lower than with it off."""
    analysis = grid_analysis(120, [SectionSpec("a", 8, 0.5), SectionSpec("b", 8, 0.5)])
    candidates = synthetic_candidates(12, seed=5)

    def mean_jump(w_pose: float) -> float:
        blueprint = plan(analysis, candidates, settings=PlannerSettings(w_pose=w_pose))
        return float(np.mean([m.reason.transition_cost for m in blueprint.moves_used[1:]]))

    assert mean_jump(20.0) < mean_jump(0.0)


def test_small_pose_jumps_are_cuts_and_large_ones_crossfades() -> None:
    """The transition type follows the recorded pose jump and the cut threshold."""
    analysis = grid_analysis(120, [SectionSpec("a", 6, 0.5)])
    settings = PlannerSettings()
    blueprint = plan(analysis, synthetic_candidates(8, seed=9), settings=settings)
    for move in blueprint.moves_used[1:]:
        jump = move.reason.transition_cost
        assert jump is not None
        expected = "cut" if jump <= settings.cut_max_jump_m else "crossfade"
        assert move.transition_in.type == expected
    assert blueprint.moves_used[0].transition_in.type == "cut"


def test_repeats_can_be_mirrored() -> None:
    """With mirror_repeats, the repeated chorus is the same moves, mirrored."""
    analysis = grid_analysis(120, VERSE_CHORUS)
    blueprint = plan(
        analysis, synthetic_candidates(10, seed=4), settings=PlannerSettings(mirror_repeats=True)
    )
    repeated = [m for m in blueprint.moves_used if m.section.repeat_of is not None]
    originals = [m for m in blueprint.moves_used if m.section.index in (0, 1)]
    assert repeated and all(m.mirror for m in repeated)
    assert [m.move_id for m in repeated] == [m.move_id for m in originals]
    assert not any(m.mirror for m in originals)


def test_mirror_pose_swaps_sides_and_flips_x() -> None:
    """Mirroring twice is the identity; once, the left wrist lands where the right one was."""
    pose = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    once = mirror_pose(pose)
    assert np.allclose(mirror_pose(once), pose)
    assert np.isclose(once[6, 0], -pose[9, 0])  # l_wrist <- mirrored r_wrist


def test_different_seeds_can_give_different_plans() -> None:
    """The seed breaks ties between equally scored moves, so seeds vary the plan."""
    analysis = grid_analysis(120, [SectionSpec("a", 8, 0.5)])
    candidates = [replace(c, score=0.5, energy="medium") for c in synthetic_candidates(10)]
    plans = {
        tuple(m.move_id for m in plan_choreography(
            analysis, None, candidates, task_id="t", audio_uri="songs/a.wav",
            output=video_output("videos/t.mp4"), seed=seed, created_at=CREATED,
            settings=PlannerSettings(jitter=1.0),
        ).moves_used)
        for seed in range(6)
    }  # fmt: skip
    assert len(plans) > 1


def test_defaults_follow_the_best_candidate_and_the_whole_song() -> None:
    """Without constraints the plan uses the best move's style and difficulty and the whole song."""
    analysis = grid_analysis(120, [SectionSpec("a", 2, 0.5), SectionSpec("b", 2, 0.5)])
    candidates = [replace(c, score=0.1) for c in synthetic_candidates(4, style="pop")]
    best = replace(synthetic_candidates(1, style="salsa", difficulty="advanced")[0], score=0.9)
    more = synthetic_candidates(3, seed=8, style="salsa", difficulty="advanced")
    renamed = [replace(c, move_id=f"x-{i}") for i, c in enumerate(more)]
    blueprint = plan_choreography(
        analysis, None, [*candidates, best, *renamed],
        task_id="t", audio_uri="songs/a.wav", output=video_output("videos/t.mp4"),
        created_at=CREATED,
    )  # fmt: skip
    constraints = blueprint.request.constraints
    assert (constraints.style, constraints.difficulty, constraints.energy) == (
        "salsa",
        "advanced",
        "medium",
    )
    span = analysis.phrases[-1].end_s - analysis.phrases[0].start_s
    assert blueprint.song.window.length_s == pytest.approx(span)


def test_default_style_is_one_whose_moves_fit_the_song_tempo() -> None:
    """With no style or difficulty, a better-scored style that cannot reach the tempo is skipped."""
    analysis = grid_analysis(97, VERSE_CHORUS)
    salsa = synthetic_candidates(
        4, style="salsa", difficulty="advanced", tempo_bpm=124, tempo_spread=0.03
    )
    hip_hop = synthetic_candidates(4, seed=2, tempo_bpm=100, tempo_spread=0.03)
    candidates = [
        *(replace(c, move_id=f"salsa-{i}", score=0.9) for i, c in enumerate(salsa)),
        *(replace(c, move_id=f"hip-hop-{i}", score=0.2) for i, c in enumerate(hip_hop)),
    ]
    blueprint = plan_choreography(
        analysis, None, candidates, task_id="t", audio_uri="songs/a.wav",
        output=video_output("videos/t.mp4"), created_at=CREATED,
    )  # fmt: skip
    constraints = blueprint.request.constraints
    assert (constraints.style, constraints.difficulty) == ("hip-hop", "beginner")
    assert all(m.move_id.startswith("hip-hop-") for m in blueprint.moves_used)


def test_default_style_skips_a_style_with_a_single_fitting_move() -> None:
    """A default style needs two fitting moves (a move may not follow itself)."""
    analysis = grid_analysis(120, VERSE_CHORUS)
    lone = replace(synthetic_candidates(1, style="salsa")[0], move_id="salsa-0", score=0.9)
    pop = [
        replace(c, move_id=f"pop-{i}", score=0.3)
        for i, c in enumerate(synthetic_candidates(4, seed=4, style="pop", tempo_spread=0.03))
    ]
    blueprint = plan_choreography(
        analysis, None, [lone, *pop], task_id="t", audio_uri="songs/a.wav",
        output=video_output("videos/t.mp4"), created_at=CREATED,
    )  # fmt: skip
    assert blueprint.request.constraints.style == "pop"


def test_no_style_fitting_the_tempo_says_so_without_naming_a_style() -> None:
    """When no move of any style fits, the error names the tempo and the band, not a style."""
    analysis = grid_analysis(152, VERSE_CHORUS)
    candidates = synthetic_candidates(4, tempo_bpm=100, tempo_spread=0.02)
    with pytest.raises(InvalidInput, match=r"no candidate move in any style fits .* 152\.0 BPM"):
        plan_choreography(
            analysis, None, candidates, task_id="t", audio_uri="songs/a.wav",
            output=video_output("videos/t.mp4"), created_at=CREATED,
        )  # fmt: skip


def test_a_difficulty_is_a_ceiling_with_the_requested_level_preferred() -> None:
    """An advanced request dances easier moves too, but prefers advanced ones of equal merit."""
    analysis = grid_analysis(120, VERSE_CHORUS)
    easy = [replace(c, score=0.5) for c in synthetic_candidates(4, seed=5)]
    hard = [
        replace(c, move_id=f"hard-{i}", difficulty="advanced", score=0.5)
        for i, c in enumerate(synthetic_candidates(4, seed=5))
    ]
    advanced = Constraints(style="hip-hop", difficulty="advanced")
    only_easy = plan(analysis, easy, advanced)
    assert {m.move_id for m in only_easy.moves_used} <= {c.move_id for c in easy}
    both = plan(analysis, [*easy, *hard], advanced)
    placed = [m.move_id for m in both.moves_used]
    assert sum(p.startswith("hard-") for p in placed) > len(placed) / 2
    beginner = plan(analysis, [*easy, *hard], Constraints(style="hip-hop", difficulty="beginner"))
    assert not any(m.move_id.startswith("hard-") for m in beginner.moves_used)


def test_a_song_in_three_four_is_refused_naming_its_meter() -> None:
    """A 3/4 song is never forced into 8-counts: the planner refuses it and says why."""
    waltz = grid_analysis(90, VERSE_CHORUS).model_copy(update={"beats_per_bar": 3})
    with pytest.raises(InvalidInput, match=r"3/4 time .*8-counts of 4/4"):
        plan(waltz, synthetic_candidates(12, seed=3))


def test_the_blueprint_records_the_counted_level_and_the_octave_verdict() -> None:
    """The analysis's choice of tempo level and its octave verdict travel into the blueprint."""
    analysis = grid_analysis(120, VERSE_CHORUS).model_copy(
        update={"tempo_level": "120.0 BPM: pulse levels 60.0, 120.0, 240.0 BPM; ..."}
    )
    song = plan(analysis, synthetic_candidates(12, seed=3)).song
    assert song.analysis is not None
    assert song.analysis.tempo_level == analysis.tempo_level
    assert song.analysis.octave_ambiguous is analysis.octave_ambiguous


def test_the_requests_output_spec_sets_size_rate_and_practice_renditions() -> None:
    """``constraints.output``: its size and rate, else 1280x720 at 30 fps; its practice
    renditions go into the blueprint's ``video_output.practice``."""
    practice_only = video_output(
        "videos/a.mp4", OutputSpec(practice=Practice(mirror=True, slow=[0.5]))
    )
    assert (practice_only.width, practice_only.height, practice_only.fps) == (1280, 720, 30)
    assert practice_only.practice == Practice(mirror=True, slow=[0.5])
    sized = video_output("videos/b.mp4", OutputSpec(width=640, height=360, fps=24))
    assert (sized.width, sized.height, sized.fps, sized.practice) == (640, 360, 24, None)
