"""A style counted faster than the song's own level (salsa) plans on the analysis's double time.

The analysis side (the double time read from the audio) is pinned on a rendered salsa in
tests/integration/test_music_grooves.py; these tests pin the choice and the planner's use of it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from choreography.music.model import MusicAnalysis
from choreography.music.style_count import (
    STYLE_COUNT_BPM,
    count_for_style,
    count_nearest,
    counted_twice,
    style_tempo,
)
from choreography.planner import planner
from choreography.planner.output import video_output
from choreography.planner.planner import plan_choreography
from schemas.blueprint import Blueprint
from schemas.errors import InvalidInput
from schemas.events import Constraints
from tests.fixtures.synthetic_library import SectionSpec, grid_analysis, synthetic_candidates

SECTIONS = [SectionSpec("verse", 2, 0.2), SectionSpec("chorus", 2, 0.9)]
TWICE = [SectionSpec("verse", 4, 0.2), SectionSpec("chorus", 4, 0.9)]


def _song(bpm: float) -> MusicAnalysis:
    """A song counted at ``bpm`` whose analysis also counted it twice as fast."""
    double = grid_analysis(2 * bpm, TWICE).model_copy(update={"tempo_level": "the double"})
    return grid_analysis(bpm, SECTIONS).model_copy(update={"double_time": double})


def _plan(analysis: MusicAnalysis, candidates: list, constraints: Constraints | None) -> Blueprint:
    return plan_choreography(
        analysis, constraints, candidates, task_id="t", audio_uri="songs/a.wav",
        output=video_output("videos/t.mp4"), created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip


def test_salsa_is_counted_twice_as_fast_when_its_range_holds_the_double() -> None:
    song = _song(100.0)
    salsa = count_for_style(song, "salsa")
    assert salsa.tempo_bpm == pytest.approx(200.0)
    assert salsa.beats_s == song.double_time.beats_s  # type: ignore[union-attr]
    assert salsa.tempo_level.startswith("200.0 BPM: salsa is counted at 150-240 BPM")
    assert "the song's own count" in salsa.tempo_level


@pytest.mark.parametrize("style", [None, "hip-hop", "pop", "house", "no-such-style"])
def test_other_styles_keep_the_songs_own_count(style: str | None) -> None:
    song = _song(100.0)
    assert count_for_style(song, style) is song


def test_no_double_time_or_a_song_already_in_range_is_kept() -> None:
    plain = grid_analysis(100.0, SECTIONS)
    assert plain.double_time is None and count_for_style(plain, "salsa") is plain
    fast = _song(160.0)  # already counted in salsa's range
    assert count_for_style(fast, "salsa") is fast
    slow = grid_analysis(70.0, SECTIONS).model_copy(
        update={"double_time": grid_analysis(140.0, TWICE)}
    )  # the double is still below the range
    assert count_for_style(slow, "salsa") is slow


def test_the_analysis_counts_twice_only_where_a_style_would_use_it() -> None:
    low, high = STYLE_COUNT_BPM["salsa"]
    assert counted_twice(low / 2) and counted_twice(104.0) and counted_twice(high / 2)
    assert not counted_twice(low / 2 - 1) and not counted_twice(high / 2 + 1)
    assert not counted_twice(128.0) and not counted_twice(180.0)


def test_a_salsa_request_is_planned_on_the_double_time() -> None:
    song = _song(100.0)
    candidates = synthetic_candidates(6, style="salsa", tempo_bpm=200.0, tempo_spread=0.03)
    blueprint = _plan(song, candidates, Constraints(style="salsa"))
    assert blueprint.song.tempo_bpm == pytest.approx(200.0)
    assert blueprint.song.beats_s[:4] == pytest.approx(song.double_time.beats_s[:4])  # type: ignore[union-attr]
    assert "salsa is counted at 150-240 BPM" in (blueprint.song.analysis.tempo_level or "")
    # The moves recorded at 200 are danced at their own speed on the quarter-note grid.
    assert all(m.speed_factor == pytest.approx(1.0, abs=0.05) for m in blueprint.moves_used)


def test_a_hip_hop_request_on_the_same_song_keeps_its_own_count() -> None:
    song = _song(100.0)
    candidates = synthetic_candidates(6, tempo_bpm=100.0, tempo_spread=0.03)
    blueprint = _plan(song, candidates, Constraints(style="hip-hop"))
    assert blueprint.song.tempo_bpm == pytest.approx(100.0)


def test_an_open_style_resolved_to_salsa_is_counted_as_salsa() -> None:
    song = _song(100.0)
    candidates = synthetic_candidates(6, style="salsa", tempo_bpm=200.0, tempo_spread=0.03)
    blueprint = _plan(song, candidates, None)
    assert blueprint.request.constraints.style == "salsa"
    assert blueprint.song.tempo_bpm == pytest.approx(200.0)


def test_an_open_style_keeps_the_songs_count_when_the_double_would_change_the_style() -> None:
    """Salsa fits the song's own count; at twice it a better-scored 4-count hip-hop move would
    fit too and take the style. The style resolved on the song's own count is kept, on it."""
    song = _song(100.0)
    salsa = [
        replace(c, move_id=f"salsa-{i}", score=0.3)
        for i, c in enumerate(
            synthetic_candidates(4, style="salsa", tempo_bpm=100.0, tempo_spread=0.02)
        )
    ]
    hip_hop = [
        replace(c, move_id=f"hip-hop-{i}", score=0.9)
        for i, c in enumerate(
            synthetic_candidates(4, seed=3, tempo_bpm=200.0, tempo_spread=0.02, counts=(4,))
        )
    ]
    blueprint = _plan(song, [*salsa, *hip_hop], None)
    assert blueprint.request.constraints.style == "salsa"
    assert blueprint.song.tempo_bpm == pytest.approx(100.0)


def test_a_salsa_count_its_moves_cannot_fill_falls_back_to_the_songs_own_count() -> None:
    """Salsa moves recorded at 100 fit the 200 count only at half time (16 counts), and the
    double time's sections are 3 and 5 8-counts long: nothing fills them. The song's own count,
    where the moves span one 8-count, is danced, and the blueprint says why."""
    double = grid_analysis(200.0, [SectionSpec("verse", 3, 0.2), SectionSpec("chorus", 5, 0.9)])
    song = grid_analysis(100.0, SECTIONS).model_copy(
        update={"double_time": double, "tempo_level": "100.0 BPM: the song's own count"}
    )
    candidates = synthetic_candidates(6, style="salsa", tempo_bpm=100.0, tempo_spread=0.03)
    blueprint = _plan(song, candidates, Constraints(style="salsa"))
    assert blueprint.song.tempo_bpm == pytest.approx(100.0)
    level = blueprint.song.analysis.tempo_level or ""
    assert level.startswith("100.0 BPM: the song's own count; salsa is counted at 200.0 BPM")
    assert "no sequence of the candidate moves fills" in level
    assert level.endswith("so the song's own count is danced")


def test_a_song_neither_count_can_fill_is_refused_as_before() -> None:
    """When the song's own count cannot be danced either, its refusal is raised, as before."""
    double = grid_analysis(200.0, [SectionSpec("verse", 3, 0.2), SectionSpec("chorus", 5, 0.9)])
    song = grid_analysis(100.0, SECTIONS).model_copy(update={"double_time": double})
    lone = synthetic_candidates(1, style="salsa", tempo_bpm=100.0, tempo_spread=0.0)
    with pytest.raises(InvalidInput, match="no sequence of the candidate moves fills"):
        _plan(song, lone, Constraints(style="salsa"))


@pytest.mark.parametrize(
    ("parent_bpm", "counted"), [(200.0, 200.0), (190.0, 200.0), (104.0, 100.0)]
)
def test_new_audio_of_a_revision_is_counted_at_its_parents_level(
    parent_bpm: float, counted: float
) -> None:
    song = _song(100.0)
    revised = count_nearest(song, parent_bpm)
    assert revised.tempo_bpm == pytest.approx(counted)
    assert ("as the blueprint it revises was" in revised.tempo_level) is (counted == 200.0)
    plain = grid_analysis(100.0, SECTIONS)
    assert count_nearest(plain, 200.0) is plain


def test_an_open_style_keeps_the_songs_count_when_nothing_fits_the_double(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should no candidate fit the style's count (the tempo fit's countings make every move
    that fits the own count fit its double today), the song's own count is kept, not refused."""
    song = _song(100.0)
    candidates = synthetic_candidates(6, style="salsa", tempo_bpm=100.0, tempo_spread=0.03)
    resolve = planner.resolve_constraints

    def refusing_the_double(analysis: MusicAnalysis, *args: object) -> object:
        if analysis.tempo_bpm > 150:
            raise InvalidInput("no candidate move in any style fits")
        return resolve(analysis, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(planner, "resolve_constraints", refusing_the_double)
    counted, effective = planner.counted_for_style(song, None, candidates)
    assert counted is song and effective.style == "salsa"


@pytest.mark.parametrize(
    ("bpm", "style", "tempo"),
    [(75.0, "salsa", 150.0), (120.0, "salsa", 240.0), (120.5, "salsa", 120.5),
     (74.0, "salsa", 74.0), (180.0, "salsa", 180.0), (100.0, "pop", 100.0), (100.0, None, 100.0)],
)  # fmt: skip
def test_the_tempo_a_style_counts_a_song_at(bpm: float, style: str | None, tempo: float) -> None:
    assert style_tempo(bpm, style) == tempo
