"""Planner properties on synthetic analyses and candidate sets (no audio, no librosa)."""

from __future__ import annotations

import bisect
import itertools
from datetime import UTC, datetime
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from choreography.music.model import MusicAnalysis
from choreography.planner.candidates import MoveCandidate
from choreography.planner.output import video_output
from choreography.planner.planner import plan_choreography
from schemas.blueprint import (
    SPEED_FACTOR_MAX,
    SPEED_FACTOR_MIN,
    Blueprint,
    MoveUsed,
    parse_blueprint,
)
from schemas.events import Constraints
from tests.fixtures.synthetic_library import SectionSpec, grid_analysis, synthetic_candidates

SETTINGS = settings(max_examples=40, deadline=None)
CREATED = datetime(2026, 1, 1, tzinfo=UTC)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[MusicAnalysis, list[MoveCandidate], Constraints, int]:
    """A song (sections that may repeat, tempo drift, pickup beats) and fitting candidates."""
    names = draw(st.lists(st.sampled_from("abc"), min_size=1, max_size=6))
    phrases = {name: draw(st.integers(1, 4)) for name in set(names)}
    specs = [SectionSpec(n, phrases[n], draw(st.floats(0, 1))) for n in names]
    tempo = draw(st.floats(80, 160))
    analysis = grid_analysis(
        tempo,
        specs,
        drift=draw(st.floats(-0.03, 0.03)),
        lead_beats=draw(st.integers(0, 7)),
    )
    counts = draw(st.sampled_from([(8,), (8, 16), (4, 8), (4, 8, 16)]))
    candidates = synthetic_candidates(
        draw(st.integers(3, 12)),
        seed=draw(st.integers(0, 1000)),
        tempo_bpm=tempo,
        tempo_spread=0.08,
        counts=counts,
    )
    # Two 8-count moves make every section fillable without any immediate repeat.
    assume(sum(c.counts == 8 for c in candidates) >= 2)
    song_s = analysis.phrases[-1].end_s - analysis.phrases[0].start_s
    duration = draw(st.floats(15.0, max(15.0, song_s)))
    constraints = Constraints(style="hip-hop", difficulty="beginner", duration_s=duration)
    return analysis, candidates, constraints, draw(st.integers(0, 2**16))


def plan(
    analysis: MusicAnalysis, candidates: list[MoveCandidate], constraints: Constraints, seed: int
) -> Blueprint:
    """The planner with fixed ids, output and creation time."""
    return plan_choreography(
        analysis,
        constraints,
        candidates,
        task_id="t-1",
        audio_uri="songs/test.wav",
        output=video_output("videos/t-1.mp4"),
        seed=seed,
        created_at=CREATED,
    )


def song_time(blueprint: Blueprint, timeline_s: float) -> float:
    """Window-relative time to song time."""
    return blueprint.song.window.start_s + timeline_s


def beat_index(analysis: MusicAnalysis, time: float) -> int:
    """Index of the beat at ``time`` (it must be one, within a microsecond)."""
    i = bisect.bisect_left(analysis.beats_s, time - 1e-6)
    assert abs(analysis.beats_s[i] - time) < 1e-6, f"{time} is not a beat"
    return i


@SETTINGS
@given(scenarios())
def test_every_move_starts_on_a_downbeat(scenario: Any) -> None:
    """Each cut (song time of a move's start) is one of the analysed downbeats."""
    analysis = scenario[0]
    blueprint = plan(*scenario)
    for move in blueprint.moves_used:
        start = song_time(blueprint, move.timeline_start_s)
        assert min(abs(d - start) for d in analysis.downbeats_s) < 1e-6


@SETTINGS
@given(scenarios())
def test_moves_span_whole_counts_of_the_analysed_grid(scenario: Any) -> None:
    """A move of n counts ends exactly n analysed beats after it starts, even as tempo drifts."""
    analysis = scenario[0]
    blueprint = plan(*scenario)
    for move in blueprint.moves_used[:-1]:
        first = beat_index(analysis, song_time(blueprint, move.timeline_start_s))
        last = beat_index(analysis, song_time(blueprint, move.timeline_end_s))
        assert last - first == move.counts
        assert move.counts % analysis.beats_per_bar == 0


@SETTINGS
@given(scenarios())
def test_blueprint_validates_and_has_no_gaps_or_overlaps(scenario: Any) -> None:
    """The plan survives a JSON round trip through parse_blueprint; moves are back to back."""
    blueprint = plan(*scenario)
    again = parse_blueprint(blueprint.model_dump_json())
    assert again == blueprint
    moves = blueprint.moves_used
    assert moves[0].timeline_start_s == 0
    for before, after in itertools.pairwise(moves):
        assert after.timeline_start_s == before.timeline_end_s
    assert abs(moves[-1].timeline_end_s - blueprint.song.window.length_s) < 1e-9


@SETTINGS
@given(scenarios())
def test_window_is_within_one_phrase_of_the_request(scenario: Any) -> None:
    """The window is within one 8-count of the request (or of the song, when that is shorter)."""
    analysis, _, constraints, _ = scenario
    blueprint = plan(*scenario)
    phrase_s = max(p.end_s - p.start_s for p in analysis.phrases)
    song_s = analysis.phrases[-1].end_s - analysis.phrases[0].start_s
    assert constraints.duration_s is not None
    wanted = min(constraints.duration_s, song_s)
    assert abs(blueprint.song.window.length_s - wanted) <= phrase_s


@SETTINGS
@given(scenarios())
def test_repeated_sections_repeat_the_choreography(scenario: Any) -> None:
    """A section marked as a repeat dances the same moves as the one it repeats."""
    blueprint = plan(*scenario)
    sections = _sections(blueprint)
    for later, moves in sections.items():
        repeat_of = moves[0].section.repeat_of
        if repeat_of is None:
            continue
        original = [m.move_id for m in sections[repeat_of]]
        copied = [m.move_id for m in moves if "repeats section" in m.reason.text]
        assert copied, f"section {later} is marked as a repeat but copies nothing"
        assert copied == original[: len(copied)]
        if _beats(moves) >= _beats(sections[repeat_of]):
            assert copied == original


@SETTINGS
@given(scenarios())
def test_sections_that_repeat_in_the_song_are_marked_as_repeats(scenario: Any) -> None:
    """A full-length window section whose name came earlier in the window has repeat_of."""
    blueprint = plan(*scenario)
    first_of: dict[str, int] = {}
    for index, moves in sorted(_sections(blueprint).items()):
        label = moves[0].section.label
        if label in first_of and _beats(moves) >= _beats(_sections(blueprint)[first_of[label]]):
            assert moves[0].section.repeat_of == first_of[label]
        first_of.setdefault(label, index)


def _sections(blueprint: Blueprint) -> dict[int, list[MoveUsed]]:
    """Moves by window section index."""
    out: dict[int, list[MoveUsed]] = {}
    for move in blueprint.moves_used:
        out.setdefault(move.section.index, []).append(move)
    return out


def _beats(moves: list[MoveUsed]) -> int:
    """Beats a list of moves spans."""
    return sum(m.counts for m in moves)


@SETTINGS
@given(scenarios())
def test_speed_factors_stay_in_the_band(scenario: Any) -> None:
    """Every speed factor is inside 0.85-1.15 and matches clip length over span."""
    blueprint = plan(*scenario)
    for move in blueprint.moves_used:
        assert SPEED_FACTOR_MIN <= move.speed_factor <= SPEED_FACTOR_MAX
        played = (move.clip_out_s - move.clip_in_s) / move.speed_factor
        assert abs(played - (move.timeline_end_s - move.timeline_start_s)) < 1e-6


@SETTINGS
@given(scenarios())
def test_same_seed_gives_the_same_blueprint(scenario: Any) -> None:
    """Planning twice with the same inputs and seed gives identical blueprints."""
    assert plan(*scenario) == plan(*scenario)


@SETTINGS
@given(scenarios())
def test_no_move_follows_itself_unless_a_section_repeats(scenario: Any) -> None:
    """Consecutive moves differ, except where a repeated section begins."""
    blueprint = plan(*scenario)
    moves = blueprint.moves_used
    for before, after in itertools.pairwise(moves):
        starts_repeat = (
            after.section.index != before.section.index and after.section.repeat_of is not None
        )
        if not starts_repeat:
            assert before.move_id != after.move_id


@SETTINGS
@given(scenarios(), st.sampled_from(["pop", "salsa"]), st.sampled_from(["advanced"]))
def test_only_moves_of_the_requested_style_and_difficulty_are_placed(
    scenario: Any, other_style: str, other_level: str
) -> None:
    """Candidates of other styles or difficulties never reach the timeline."""
    analysis, candidates, constraints, seed = scenario
    others = synthetic_candidates(6, seed=seed, style=other_style, tempo_bpm=analysis.tempo_bpm)
    harder = synthetic_candidates(
        6, seed=seed + 1, difficulty=other_level, tempo_bpm=analysis.tempo_bpm
    )
    # Distinct ids and higher scores, so they would win if filters were ignored.
    mixed = [*candidates]
    for i, c in enumerate([*others, *harder]):
        mixed.append(_renamed(c, f"other-{i}", score=2.0))
    blueprint = plan(analysis, mixed, constraints, seed)
    allowed = {c.move_id for c in candidates}
    assert {m.move_id for m in blueprint.moves_used} <= allowed
    wanted = {"style": "hip-hop", "difficulty": "beginner", "energy": "medium"}
    assert all(m.reason.filters == wanted for m in blueprint.moves_used)


def _renamed(candidate: MoveCandidate, move_id: str, score: float) -> MoveCandidate:
    from dataclasses import replace  # noqa: PLC0415

    return replace(candidate, move_id=move_id, score=score)
