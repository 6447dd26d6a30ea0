"""The pulse family, the counted level and the meter, on click envelopes with known answers.

The full-song checks (12 grooves, the corpus's trumpet loop) are in
``tests/integration/test_music_meter_and_level.py``; the figures are in bench/analysis.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from choreography.music import beats

SR, HOP = 22050, 512
FPS = SR / HOP


def clicks(bpm: float, pattern: dict[float, float], beats_per_bar: int = 4, seconds: float = 40):
    """An onset envelope: one click per (beat position within the bar -> strength)."""
    env = np.zeros(int(seconds * FPS))
    beat = 60.0 / bpm
    bar = 0
    while (bar + 1) * beats_per_bar * beat < seconds:
        for position, strength in pattern.items():
            frame = round((bar * beats_per_bar + position) * beat * FPS)
            env[frame] = max(env[frame], strength)
        bar += 1
    return env


# Dembow: kick on every beat, snares on the a of 1 and the and of 2 (the 3:4 trap: their
# 3/16 spacing makes a strong peak at 4/3 of the beat period).
DEMBOW = {0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0, 0.75: 1.2, 1.5: 1.2, 2.75: 1.2, 3.5: 1.2}
# Four-on-the-floor with off-beat hats and claps on 2 and 4.
HOUSE = {**dict.fromkeys(range(4), 1.0), **{b + 0.5: 0.6 for b in range(4)}, 1: 1.3, 3: 1.3}


@pytest.mark.parametrize(("pattern", "bpm"), [(DEMBOW, 92.0), (HOUSE, 128.0), (HOUSE, 118.0)])
def test_the_pulse_family_is_the_beat_or_an_octave_of_it_never_two_thirds(
    pattern: dict[float, float], bpm: float
) -> None:
    """No 2:3 or 3:4 error: the family's tempo is the beat's times a power of two."""
    family = beats.pulse_family(beats.mean_tempogram(clicks(bpm, pattern), SR, HOP), FPS)
    octaves = np.log2(family / bpm)
    assert abs(octaves - round(octaves)) < 0.03, family


def test_the_counted_level_is_the_family_member_nearest_the_preferred_tempo() -> None:
    """128 BPM house is counted at 128, with 64 listed in its family, and the reason says so."""
    level = beats.counted_level(beats.mean_tempogram(clicks(128, HOUSE), SR, HOP), FPS)
    assert level.bpm == pytest.approx(128, rel=0.02)
    assert level.family_bpm[0] == pytest.approx(64, rel=0.02)
    assert "nearest 110 BPM" in level.reason


def test_meter_score_reads_three_four_and_four_four_apart() -> None:
    """A bar accent every 3 beats scores above the threshold; every 4 beats, below zero."""
    rng = np.random.default_rng(0)
    three = np.tile([1.0, 0.2, 0.3], 40) + rng.normal(0, 0.05, 120)
    four = np.tile([1.0, 0.2, 0.6, 0.3], 30) + rng.normal(0, 0.05, 120)
    assert beats.meter_score([three]) >= beats.TRIPLE_METER_THRESHOLD
    assert beats.meter_score([four]) < 0
    assert beats.meter_score([np.ones(5)]) == 0.0  # too short to tell: no vote


def test_a_few_beats_keep_the_pulse_level_tempo() -> None:
    """Under 9 beats the tempo is the level's own, not one refined from 4 noisy periods."""
    frames = np.array([10, 37, 63, 90, 117])
    beats_s = frames * HOP / SR
    env = np.zeros(200)
    env[frames] = 1.0
    estimate = beats.estimate_tempo(env, env, frames, beats_s, level_bpm=95.0)
    assert estimate.bpm == 95.0


def test_even_pulse_is_one_when_no_band_marks_the_beats_and_low_when_one_does() -> None:
    """Clicks on every half-beat at equal strength: the half-beats match the beats (1.0). A
    kick on the beats only, in one band: that band marks the beats, so the minimum is 0."""
    bpm = 90.0
    even = clicks(bpm, {b / 2: 1.0 for b in range(8)})
    kick = clicks(bpm, dict.fromkeys(range(4), 1.0))
    frames = np.flatnonzero(kick)
    assert beats.even_pulse([even, even], frames) == pytest.approx(1.0, abs=0.05)
    assert beats.even_pulse([even, kick], frames) < 0.1
    assert beats.even_pulse([even], frames[:3]) == 0.0


def test_a_flat_kick_band_gives_no_second_reading_of_the_doubt() -> None:
    """Kick and snare on the same (even) beats doubt the level; a floored kick band without
    onsets has no parity, which must not read as "they alternate" and settle the level."""
    frames = np.arange(16, 16 * 33, 16, dtype=np.intp)
    low, snare = np.zeros(600), np.zeros(600)
    low[frames[0::2]] = 1.0
    snare[frames[0::2]] = 1.0
    flat = np.zeros(600)
    bands = beats._Envelopes(low, low, low, low, flat, snare, SR, HOP)
    assert bands.doubt(frames) > beats.BACKBEAT_DOUBT_THRESHOLD
    assert bands.least_doubt(frames) == bands.doubt(frames)
    alternating = np.zeros(600)
    alternating[frames[1::2]] = 1.0  # the kick heard on the odd beats, between the snares
    other = beats._Envelopes(low, low, low, low, alternating, snare, SR, HOP)
    assert other.least_doubt(frames) < 0
