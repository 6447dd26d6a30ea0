"""Music analysis against synthesized songs with known beats, downbeats and sections.

Grid: 5 tempi (72-150 BPM) x 3 styles, one short song each (intro, verse, chorus, verse, chorus
of 4 bars; 32-67 s). Beat F-measure is mir_eval's (70 ms window) after its default trim of the
first 5 s, as ``mir_eval.beat.evaluate`` does; when the tempo is reported at the wrong octave
(and flagged), the beats are scored at the flagged alternative's grid.
"""

from __future__ import annotations

import itertools
from functools import cache

import pytest

from choreo_cli.demo.song_synth import Style, SynthSong, synthesize_song
from choreography.music.analysis import analyse_samples
from choreography.music.model import MusicAnalysis, MusicSection
from choreography.music.scoring import beat_f_measure, beats_at_alternative, downbeat_phase_correct

pytestmark = pytest.mark.integration

TEMPI = (72.0, 90.0, 110.0, 128.0, 150.0)
STRUCTURE = (("intro", 4), ("verse", 4), ("chorus", 4), ("verse", 4), ("chorus", 4))
# The three 4/4 pop patterns these figures were measured on. The demo's salsa pattern is not here:
# its downbeats and sections fail today (downbeat F about 0 on salsa in bench/analysis.py), which
# is issue 18's work, measured by that bench rather than pinned by this test.
STYLES: tuple[Style, ...] = ("four_on_the_floor", "syncopated", "half_time")
CASES = [(bpm, style) for style in STYLES for bpm in TEMPI]
# Measured: 13 of 13 correctly-tempoed cases have the right bar phase (docs/MUSIC_ANALYSIS.md);
# 0.9 allows one miss in a future change without letting the cue stop working.
MIN_DOWNBEAT_ACCURACY = 0.9


@cache
def _song_and_analysis(bpm: float, style: Style) -> tuple[SynthSong, MusicAnalysis]:
    song = synthesize_song(bpm, style, STRUCTURE, seed=int(bpm))
    return song, analyse_samples(song.y, song.sr)


def _octave_kind(analysis: MusicAnalysis, true_bpm: float) -> str | None:
    """'half'/'double' when the true tempo matches that reported alternative within 2 %."""
    for alt in analysis.tempo_alternatives:
        if abs(alt.bpm / true_bpm - 1) <= 0.02:
            return alt.kind
    return None


def _section_at(analysis: MusicAnalysis, t: float) -> MusicSection:
    return next(s for s in analysis.sections if s.start_s <= t < s.end_s)


@pytest.mark.parametrize(("bpm", "style"), CASES)
def test_tempo_is_within_2_percent_or_a_flagged_octave(bpm: float, style: Style) -> None:
    """The tempo is within 2 % of the truth, or the truth is a reported alternative and flagged."""
    _, analysis = _song_and_analysis(bpm, style)
    if abs(analysis.tempo_bpm / bpm - 1) <= 0.02:
        return
    assert _octave_kind(analysis, bpm) is not None, f"tempo {analysis.tempo_bpm:.1f} vs {bpm}"
    assert analysis.octave_ambiguous


@pytest.mark.parametrize(("bpm", "style"), CASES)
def test_beat_f_measure_is_at_least_0_9(bpm: float, style: Style) -> None:
    """Beats score F >= 0.9 against the truth (at the flagged octave when the tempo is off)."""
    song, analysis = _song_and_analysis(bpm, style)
    kind = None if abs(analysis.tempo_bpm / bpm - 1) <= 0.02 else _octave_kind(analysis, bpm)
    beats = analysis.beats_s if kind is None else beats_at_alternative(analysis, kind)
    assert beat_f_measure(song.beats_s.tolist(), beats) >= 0.9


def test_downbeat_phase_is_right_for_most_songs() -> None:
    """Across the grid's correctly-tempoed songs, the bar phase is right for at least 90 %."""
    results = []
    for bpm, style in CASES:
        song, analysis = _song_and_analysis(bpm, style)
        if abs(analysis.tempo_bpm / bpm - 1) <= 0.02:
            results.append(downbeat_phase_correct(analysis, song.downbeats_s.tolist()))
    # Nine of the ten four-on-the-floor and syncopated songs are read at the written tempo; the
    # half-time ones (snare on 3) are counted at their felt half or flagged (test below).
    assert len(results) >= 9
    assert sum(results) / len(results) >= MIN_DOWNBEAT_ACCURACY


@pytest.mark.parametrize(("bpm", "counted"), [(110.0, 110.0), (128.0, 64.0), (150.0, 75.0)])
def test_half_time_songs_are_counted_at_their_felt_half_and_flagged(
    bpm: float, counted: float
) -> None:
    """Snare on 3 of the written bar is the backbeat of a bar half as fast: counted there, as
    trap is, with the written tempo as the flagged double. Below 60 BPM (110's half) no level
    is counted: the written one stays, flagged."""
    _, analysis = _song_and_analysis(bpm, "half_time")
    assert abs(analysis.tempo_bpm / counted - 1) <= 0.02
    assert analysis.octave_ambiguous


@pytest.mark.parametrize("style", STYLES)
def test_repeated_chorus_is_found_to_repeat_the_first_chorus(style: Style) -> None:
    """The section playing the second chorus links (repeat_of) to the one playing the first."""
    song, analysis = _song_and_analysis(110.0, style)
    first, second = (s for s in song.sections if s.name == "chorus")
    original = _section_at(analysis, (first.start_s + first.end_s) / 2)
    repeat = _section_at(analysis, (second.start_s + second.end_s) / 2)
    assert repeat.index != original.index
    assert repeat.repeat_of == original.index


@pytest.mark.parametrize("style", STYLES)
def test_chorus_is_more_energetic_than_verse(style: Style) -> None:
    """The louder, busier chorus gets higher section energy than the verse."""
    song, analysis = _song_and_analysis(110.0, style)
    verse, chorus = song.sections[1], song.sections[2]
    assert (
        _section_at(analysis, (chorus.start_s + chorus.end_s) / 2).energy
        > _section_at(analysis, (verse.start_s + verse.end_s) / 2).energy
    )


def test_sections_cover_the_song_and_start_on_phrases() -> None:
    """Sections tile 0..duration and every interior boundary is an 8-count phrase start."""
    _, analysis = _song_and_analysis(128.0, "four_on_the_floor")
    sections = analysis.sections
    assert sections[0].start_s == 0.0 and sections[-1].end_s == analysis.duration_s
    phrase_starts = {p.start_s for p in analysis.phrases}
    for before, after in itertools.pairwise(sections):
        assert before.end_s == after.start_s
        assert after.start_s in phrase_starts
