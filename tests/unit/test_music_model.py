"""Music analysis: pure parts (phrases, snapping, energy, labels, repeats, bar phase) and errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from choreography.music import beats as beat_grid
from choreography.music import sections
from choreography.music.analysis import _beat_sync, analyse_file, analyse_samples
from choreography.music.model import MusicAnalysis
from choreography.music.structure import (
    PRIME,
    build_phrases,
    energy_level,
    normalise,
    section_labels,
    snap_boundaries,
)
from schemas.errors import InvalidInput


def test_phrases_are_complete_8_counts_from_the_given_downbeat() -> None:
    """Phrases start at the given beat, span 8 beats, end at the next count 1; no partial tail."""
    beats = [0.5 * i for i in range(21)]  # 0..10 s
    phrases = build_phrases(beats, first_phrase_beat=2, duration_s=10.5)
    assert [p.first_beat for p in phrases] == [2, 10]
    assert phrases[0].start_s == 1.0 and phrases[0].end_s == 5.0
    assert phrases[1].end_s == 9.0
    assert [p.index for p in phrases] == [0, 1]


def test_last_phrase_end_is_extrapolated_only_within_the_song() -> None:
    """A phrase whose 8th beat is the last beat ends one beat later, if the song lasts that long."""
    beats = [0.5 * i for i in range(8)]
    assert build_phrases(beats, 0, duration_s=4.0)[0].end_s == 4.0
    assert build_phrases(beats, 0, duration_s=3.9) == []


def test_boundaries_snap_to_the_nearest_phrase_start_without_duplicates() -> None:
    """Section boundaries move to the closest phrase start; two near one start become one."""
    starts = [0.0, 4.0, 8.0, 12.0]
    assert snap_boundaries([3.1, 4.4, 10.5], starts) == [1, 3]
    assert snap_boundaries([1.0], []) == []


def test_energy_levels_split_the_unit_range_in_thirds() -> None:
    """Energies map to low/medium/high at 1/3 and 2/3."""
    assert [energy_level(e) for e in (0.0, 0.32, 0.34, 0.66, 0.67, 1.0)] == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
    ]


def test_normalise_is_robust_and_bounded() -> None:
    """Normalised values lie in 0..1, an outlier does not squash the rest, constant input is 0.5."""
    values = normalise([0.0, 1.0, 2.0, 3.0, 4.0, 1000.0], 0, 80)
    assert values.min() == 0.0 and values.max() == 1.0
    assert values[2] == pytest.approx(0.5)
    assert set(normalise([3.0, 3.0]).tolist()) == {0.5}


def test_repeats_share_a_letter_and_varied_repeats_are_primed() -> None:
    """A repeat takes its original's letter, primed when varied; new material gets a new letter."""
    labels = section_labels([None, None, 0, 1, None], [False, False, False, True, False])
    assert labels == ["A", "B", "A", "B" + PRIME, "C"]


def _block_similarity(pattern: list[int]) -> np.ndarray:
    """Similarity 1 between phrases of the same material id, -0.2 otherwise."""
    ids = np.array(pattern)
    return np.where(ids[:, None] == ids[None, :], 1.0, -0.2)


def test_a_section_repeating_earlier_material_points_at_the_first_occurrence() -> None:
    """Verse-chorus-verse-chorus-chorus: each repeat links to the first section of its material."""
    sim = _block_similarity([0, 0, 1, 1, 0, 0, 1, 1, 1, 1])
    spans = sections.label_repeats(sim, [2, 4, 6, 8])
    assert [s.repeat_of for s in spans] == [None, None, 0, 1, 1]
    assert not spans[2].varied


def test_novelty_peaks_become_separated_boundaries() -> None:
    """Boundary bars are the strongest novelty peaks, at least MIN_SECTION_BARS apart."""
    novelty = np.zeros(24)
    novelty[2:22] = 0.1
    novelty[[8, 10, 16]] = [1.0, 0.9, 0.8]
    assert sections.boundary_bars(novelty) == [8, 16]
    assert sections.phrase_parity([8, 16], novelty) == 0


def test_bar_phase_follows_low_frequency_accents_and_chord_changes() -> None:
    """Kicks and chord changes every 4th beat from beat 1 give bar phase 1, confidently."""
    n_beats, frames_per_beat = 32, 20
    frames = np.arange(n_beats) * frames_per_beat + 5
    low = np.zeros(n_beats * frames_per_beat + 10)
    low[frames] = 0.2
    low[frames[1::4]] = 1.0
    chroma = np.zeros((12, n_beats))
    for bar, start in enumerate(range(1, n_beats, 4)):
        chroma[(bar * 5) % 12, start : start + 4] = 1.0
    chroma[:, 0] = chroma[:, 1]
    phase, confidence = beat_grid.bar_phase(low, frames, beat_grid.harmonic_change(chroma))
    assert phase == 1
    assert confidence > 0.5


def test_where_kicks_and_chords_cannot_tell_the_bar_starts_with_the_groove() -> None:
    """A kick on every beat and no chords: the bar starts on the first strong beat after a
    pulse-free intro (beats 0-5 here are near-silent)."""
    n_beats, frames_per_beat = 40, 20
    frames = np.arange(n_beats) * frames_per_beat + 5
    onset = np.zeros(n_beats * frames_per_beat + 10)
    onset[frames] = 1.0
    onset[frames[:6]] = 0.01
    assert beat_grid.groove_start(onset, frames) == 6
    change = beat_grid.harmonic_change(np.ones((12, n_beats)))
    groove = beat_grid.groove_start(onset, frames)
    phase, _ = beat_grid.bar_phase(onset, frames, change, groove_beat=groove)
    assert phase == 6 % 4


def test_one_weak_first_beat_is_no_intro() -> None:
    """A hit at the very start of a file has no onset; that alone does not make an intro."""
    frames = np.arange(16) * 20
    onset = np.zeros(330)
    onset[frames[1:]] = 1.0
    assert beat_grid.groove_start(onset, frames) == 0


def test_eight_counts_start_with_the_groove_after_an_intro() -> None:
    """After an intro the groove's first bar starts an 8-count, whatever the section changes say;
    without one, unclear section changes leave 8-counts on the song's first bar."""
    novelty = np.zeros(24)
    novelty[[8, 16]] = [1.0, 0.9]
    assert sections.phrase_parity([8, 16], novelty, groove_bar=3) == 1
    novelty[[8, 9]] = [1.0, 0.95]
    assert sections.phrase_parity([8, 9], novelty) == 0


def test_beat_sync_keeps_one_column_per_beat_when_a_beat_is_on_frame_0() -> None:
    """A beat on frame 0 still gets its own column: column k averages beat k to beat k+1."""
    feature = np.arange(20, dtype=float)[None, :]
    synced = _beat_sync(feature, np.array([0, 5, 12], dtype=np.intp))
    assert synced.tolist() == [[2.0, 8.0, 15.5]]


def test_song_analysis_round_trips_through_json() -> None:
    """The model serialises to JSON and back unchanged (it is cached as jsonb)."""
    analysis = MusicAnalysis(
        duration_s=10.0,
        sample_rate=22050,
        tempo_bpm=120.0,
        tempo_confidence=0.8,
        tempo_alternatives=[],
        octave_ambiguous=False,
        beats_s=[0.5, 1.0],
        downbeats_s=[0.5],
        bar_phase=0,
        downbeat_confidence=0.5,
        phrases=[],
        sections=[],
        energy_per_beat=[0.1, 0.2],
        energy_per_phrase=[],
    )
    assert MusicAnalysis.model_validate_json(analysis.model_dump_json()) == analysis


def test_text_file_named_wav_is_invalid_input_naming_the_file(tmp_path: Path) -> None:
    """A text file with a .wav name raises InvalidInput that names the file."""
    fake = tmp_path / "not_audio.wav"
    fake.write_text("this is not audio\n" * 50)
    with pytest.raises(InvalidInput, match=re.escape("not_audio.wav")):
        analyse_file(fake)


def test_missing_file_is_invalid_input_naming_the_file(tmp_path: Path) -> None:
    """A path that does not exist raises InvalidInput naming it."""
    with pytest.raises(InvalidInput, match=re.escape("nowhere.ogg")):
        analyse_file(tmp_path / "nowhere.ogg")


@pytest.mark.parametrize(
    ("samples", "reason"),
    [
        (np.zeros(22050 * 10), "silent"),
        (np.sin(np.arange(22050 * 2) / 10.0), "need at least 3.0 s"),
        (np.full(22050 * 5, np.nan), "NaN"),
        (np.zeros((2, 3, 4)), "1-D"),
    ],
)
def test_bad_samples_are_invalid_input_with_the_reason(samples: np.ndarray, reason: str) -> None:
    """Silence, too-short audio, NaNs and wrong shapes each raise InvalidInput saying why."""
    with pytest.raises(InvalidInput, match=reason):
        analyse_samples(samples, 22050)


def test_a_steady_tone_without_pulse_is_rejected() -> None:
    """A sustained tone has no beats to dance to: InvalidInput mentions the missing pulse."""
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(22050 * 6) / 22050)
    with pytest.raises(InvalidInput, match="beats"):
        analyse_samples(tone, 22050)


def test_a_bar_cue_without_a_bar_pattern_does_not_vote() -> None:
    """Noise spreads the phase means by about 1/sqrt(n): it is dropped; a real accent votes."""
    rng = np.random.default_rng(1)
    measured = np.ones(64, dtype=bool)
    noise = rng.standard_normal(64)
    assert not np.any(beat_grid._phase_means(noise, measured, 4))
    accent = np.tile([2.0, -0.5, 0.0, -0.5], 16) + 0.1 * noise
    assert int(np.argmax(beat_grid._phase_means(accent, measured, 4))) == 0
