"""The analysis on the benchmark's grooves (choreo_cli/demo/patterns.py), exact truth known.

These pin what issue 18's work fixed: no 2:3 or 3:4 tempo errors, the level dancers count on
half-time grooves, beats on the kick rather than an off-beat snare, 3/4 detected, 8-counts
after an intro. The full figures are bench/analysis.py's (docs/MUSIC_ANALYSIS.md).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from bench.analysis_metrics import f_measure, phrase_phase_accuracy
from choreo_cli.demo.patterns import (
    PATTERNS,
    PATTERNS_BY_NAME,
    Pattern,
    PatternSong,
    render_pattern,
)
from choreography.music.analysis import analyse_samples
from choreography.music.model import MusicAnalysis
from choreography.music.style_count import count_for_style
from schemas.errors import InvalidInput

pytestmark = pytest.mark.integration


@cache
def _song(name: str, bpm: float, variant: str = "full") -> tuple[PatternSong, MusicAnalysis]:
    song = render_pattern(PATTERNS_BY_NAME[name], bpm, variant, seed=7)  # type: ignore[arg-type]
    return song, analyse_samples(song.y, song.sr)


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: p.name)
def test_tempo_is_the_truth_times_a_power_of_two_and_the_meter_is_right(pattern: Pattern) -> None:
    """Every groove: its tempo an octave of the truth at worst (never 2:3 or 3:4), meter right."""
    low, high = pattern.tempo_range
    song, a = _song(pattern.name, (low + high) / 2)
    octaves = np.log2(a.tempo_bpm / song.tempo_bpm)
    assert abs(octaves - round(octaves)) < 0.03, f"{a.tempo_bpm:.1f} for {song.tempo_bpm}"
    assert a.beats_per_bar == pattern.beats_per_bar


def test_dembow_drums_are_read_at_92_with_beats_on_the_kick() -> None:
    """Reggaeton drums at 92 BPM were read at 122.3 (3:4), and beats sat on the off-beat snare."""
    song, a = _song("reggaeton", 92.0, "drums_only")
    assert a.tempo_bpm == pytest.approx(92.0, rel=0.02)
    assert f_measure(song.beats_s.tolist(), a.beats_s) >= 0.95


def test_house_at_128_is_counted_at_128_and_not_called_ambiguous() -> None:
    """The centre of dance music: four-on-the-floor at 128, at its level, beats and bars right."""
    song, a = _song("house", 128.0)
    assert a.tempo_bpm == pytest.approx(128.0, rel=0.02)
    assert not a.octave_ambiguous
    assert f_measure(song.beats_s.tolist(), a.beats_s) >= 0.95
    assert f_measure(song.downbeats_s.tolist(), a.downbeats_s) >= 0.9
    assert "not octave ambiguous" in a.tempo_level


def test_trap_is_counted_at_its_felt_tempo_and_flagged() -> None:
    """Trap written at 140 is counted at 70, where kick and backbeat alternate; the written
    tempo stays a flagged alternative, and tempo_level says why."""
    song, a = _song("trap", 70.0)
    assert a.tempo_bpm == pytest.approx(70.0, rel=0.02)
    assert a.octave_ambiguous
    assert any(alt.bpm == pytest.approx(140.0, rel=0.02) for alt in a.tempo_alternatives)
    assert "counted at" in a.tempo_level
    assert f_measure(song.beats_s.tolist(), a.beats_s) >= 0.95


@pytest.mark.parametrize("variant", ["full", "breakdown"])
def test_bachata_beats_and_bars_sit_on_its_kick_not_on_the_syncopated_bass(variant: str) -> None:
    """Bachata's bass rests, then plays the and of 2 and of 4 out of near-silence: in plain dB
    those notes rose more than the kick struck over a bass still sounding, and every beat sat
    half a beat early (beat F 0). The kick band floored KICK_FLOOR_DB below its loudest keeps
    them on the kick, and the bars with them."""
    song, a = _song("bachata", 130.0, variant)
    assert a.tempo_bpm == pytest.approx(130.0, rel=0.02)
    assert f_measure(song.beats_s.tolist(), a.beats_s) >= 0.95
    assert f_measure(song.downbeats_s.tolist(), a.downbeats_s) >= 0.9


@pytest.mark.parametrize(("bpm", "variant"), [(184.0, "breakdown"), (196.0, "drift")])
def test_fast_salsa_is_counted_at_its_level_with_its_bars(bpm: float, variant: str) -> None:
    """At its level the tumbao bass after its rests sits with the congas, so the low band reads
    kick and backbeat on the same beats; the floored kick band hears the kick on 1 under it and
    settles the level where kick and congas alternate. It was counted at half (downbeat F 0)."""
    song, a = _song("salsa", bpm, variant)
    assert a.tempo_bpm == pytest.approx(bpm, rel=0.02)
    assert f_measure(song.beats_s.tolist(), a.beats_s) >= 0.95
    assert f_measure(song.downbeats_s.tolist(), a.downbeats_s) >= 0.9


def test_fast_swing_is_counted_at_its_even_pulse_not_at_half() -> None:
    """Swing at 188: kick, walking bass and ride on every beat, so at 94 every band has as much
    onset half-way between the beats as on them; the level twice as fast is counted."""
    song, a = _song("swing", 188.0, "jitter")
    assert a.tempo_bpm == pytest.approx(188.0, rel=0.02)
    assert "even pulse" in a.tempo_level
    assert f_measure(song.beats_s.tolist(), a.beats_s) >= 0.95
    assert f_measure(song.downbeats_s.tolist(), a.downbeats_s) >= 0.9


def test_a_waltz_is_three_four_with_bars_of_three_and_no_eight_counts() -> None:
    """A 3/4 waltz: downbeats every third beat, and never forced into 8-counts."""
    song, a = _song("waltz", 90.0)
    assert a.beats_per_bar == 3
    assert a.phrases == []
    assert f_measure(song.downbeats_s.tolist(), a.downbeats_s) >= 0.9


def test_eight_counts_start_where_the_groove_does_after_an_ambient_intro() -> None:
    """A pulse-free intro of 4.3 s: the first 8-count is the groove's first bar, not a bar
    counted from beats tracked through the intro."""
    song, a = _song("boom_bap", 100.0, "ambient_intro")
    phases = phrase_phase_accuracy(song.phrase_starts_s.tolist(), [p.start_s for p in a.phrases])
    assert phases == pytest.approx(1.0)


def test_swing_whose_beats_barely_outweigh_its_off_beats_is_kept_by_its_periodicity() -> None:
    """This rendering of swing at 176 with drift has pulse clarity 1.14 on its tracked grid (its
    off-beats are as busy as its beats) and was refused as no steady pulse; its onsets repeat at
    the beat period (periodicity 0.60, noise at most 0.12), so it is analysed."""
    song = render_pattern(PATTERNS_BY_NAME["swing"], 176.0, "drift", seed=240)
    a = analyse_samples(song.y, song.sr)
    assert a.tempo_bpm == pytest.approx(176.0, rel=0.02)
    assert f_measure(song.beats_s.tolist(), a.beats_s) >= 0.95


@pytest.mark.parametrize("seed", [0, 1])
def test_thirty_seconds_of_white_noise_is_refused_as_no_steady_pulse(seed: int) -> None:
    """Noise has as much onset half-way between any grid's beats as on them (an "even pulse"):
    the doubled grid must not make it look like music. Its clarity is judged on the tracked
    grid (1.03-1.09 for four seeds), below the 1.15 refusal."""
    noise = np.random.default_rng(seed).standard_normal(30 * 22050).astype(np.float32) * 0.1
    with pytest.raises(InvalidInput, match=r"no steady pulse.*periodicity"):
        analyse_samples(noise, 22050)


@pytest.mark.timeout(60)
def test_ten_seconds_of_noise_whose_tempo_peak_is_its_window_edge_ends_in_a_refusal() -> None:
    """This noise's autocorrelation falls almost in a straight line, so the pulse family's peak
    is the edge of its window. The parabola through it put the tempo at -304 BPM and
    counted_level's octave loop never ended: the analysis hung (a worker lost for good). The
    vertex is now kept within half a lag of the peak."""
    noise = np.random.default_rng(7).standard_normal(10 * 22050).astype(np.float32) * 0.1
    with pytest.raises(InvalidInput, match="no steady pulse"):
        analyse_samples(noise, 22050)


def test_salsa_counted_at_half_is_counted_at_its_quarter_note_for_a_salsa_request() -> None:
    """Salsa at 208 with jittered timing gives no octave cue: the song's own count is 104, as
    for any dance counted near 110. A salsa request counts the quarter note (150-240 BPM): the
    analysis's double time, with its own bars and 8-counts read from the audio."""
    song = render_pattern(PATTERNS_BY_NAME["salsa"], 208.0, "jitter", seed=0)
    a = analyse_samples(song.y, song.sr)
    assert a.tempo_bpm == pytest.approx(104.0, rel=0.02)
    salsa = count_for_style(a, "salsa")
    assert a.double_time is not None and salsa.beats_s == a.double_time.beats_s
    assert salsa.tempo_bpm == pytest.approx(208.0, rel=0.02)
    assert "salsa is counted at 150-240 BPM" in salsa.tempo_level
    assert f_measure(song.beats_s.tolist(), salsa.beats_s) >= 0.95
    assert f_measure(song.downbeats_s.tolist(), salsa.downbeats_s) >= 0.9
    starts = [p.start_s for p in salsa.phrases]
    assert phrase_phase_accuracy(song.phrase_starts_s.tolist(), starts) == 1.0
    assert salsa.sections[0].label == "A"
    assert count_for_style(a, "hip-hop") is a and count_for_style(a, None) is a


def test_no_double_time_where_no_style_counts_it() -> None:
    """House at 128: twice it (256) is beyond every style's range, so nothing is counted twice;
    fast salsa counted at its level has nothing above it either."""
    _, house = _song("house", 128.0)
    _, salsa = _song("salsa", 196.0, "drift")
    assert house.double_time is None and salsa.double_time is None
    assert count_for_style(salsa, "salsa") is salsa


def test_short_noise_that_reaches_the_clarity_line_by_chance_is_refused() -> None:
    """On a few beats noise's tracked beats stand out by chance: of these 24 clips (3-10 s)
    about half reach pulse clarity 1.15. A clip of fewer than 24 beats must also repeat at its
    beat period, and noise does not (periodicity at most 0.16 on 240 clips of white, pink and
    brown noise): every clip is refused, those past the clarity line by the short-clip rule."""
    reasons = []
    for seconds in (3.0, 5.0, 7.0, 10.0):
        for seed in range(6):
            noise = np.random.default_rng(seed).standard_normal(int(seconds * 22050)) * 0.3
            with pytest.raises(InvalidInput, match="no steady pulse to dance to") as refusal:
                analyse_samples(noise.astype(np.float32), 22050, source="noise")
            reasons.append(str(refusal.value))
    short = [r for r in reasons if "fewer than 24, and their onsets barely repeat" in r]
    assert len(short) >= 6, f"only {len(short)} of 24 clips reached the clarity line"


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: p.name)
def test_every_groove_cut_to_four_seconds_is_still_kept(pattern: Pattern) -> None:
    """The short-clip rule keeps real grooves: each pattern's first 4 s (about 5-13 beats)."""
    low, high = pattern.tempo_range
    song = render_pattern(pattern, (low + high) / 2, "full", target_s=8.0, seed=3)
    a = analyse_samples(song.y[: 4 * song.sr], song.sr)
    assert len(a.beats_s) >= 4


def test_beats_hold_the_tempo_through_a_drumless_breakdown() -> None:
    """House at 123.6 whose breakdown (11.6-18.9 s) keeps only the off-beat bass and pads: at
    librosa's default tightness the beats slid to the bass there and the bar phase never came
    back (beat F 0.69); tracked again at HOLD_TIGHTNESS once the level stands, they hold."""
    song = render_pattern(PATTERNS_BY_NAME["house"], 123.6, "breakdown", seed=3)
    a = analyse_samples(song.y, song.sr)
    assert f_measure(song.beats_s.tolist(), a.beats_s) >= 0.95
    assert f_measure(song.downbeats_s.tolist(), a.downbeats_s) >= 0.9
    starts = [p.start_s for p in a.phrases]
    assert phrase_phase_accuracy(song.phrase_starts_s.tolist(), starts) >= 0.9
