"""The groove patterns of the analysis benchmark: their truth is where the notes are."""

from __future__ import annotations

import numpy as np
import pytest

from choreo_cli.demo.patterns import (
    INTRO_S,
    JITTER_S,
    PATTERNS,
    PATTERNS_BY_NAME,
    VARIANTS,
    Pattern,
    Variant,
    _render_drums,
    beat_clock,
    render_pattern,
)
from schemas.errors import InvalidInput

SR = 22050
KICK_ONLY = Pattern("kick_only", (120, 120), kick=(0, 4, 8, 12))


def kick_onsets(y: np.ndarray, sr: int = SR) -> np.ndarray:
    """Times where the signal rises above 5 % of its peak after 0.1 s below it."""
    loud = np.flatnonzero(np.abs(y) > 0.05 * np.max(np.abs(y)))
    gap = int(0.1 * sr)
    starts = loud[np.concatenate([[True], np.diff(loud) > gap])]
    return np.asarray(starts / sr, dtype=float)


def test_every_kick_lands_on_a_true_beat_within_a_millisecond() -> None:
    """Straight time: one kick per true beat, each within 1 ms of it."""
    song = render_pattern(KICK_ONLY, 120.0, "drums_only", target_s=8.0)
    onsets = kick_onsets(song.y)
    assert onsets.size == song.beats_s.size
    assert np.max(np.abs(onsets - song.beats_s)) < 0.001


def test_drift_moves_the_beats_and_the_truth_follows() -> None:
    """Under +-2 % drift the beat intervals vary, and the kicks still sit on the true beats."""
    song = render_pattern(KICK_ONLY, 120.0, "drift", target_s=16.0, harmony=False)
    intervals = np.diff(song.beats_s)
    assert intervals.max() / intervals.min() > 1.03
    onsets = kick_onsets(song.y)
    assert onsets.size == song.beats_s.size
    assert np.max(np.abs(onsets - song.beats_s)) < 0.001


def test_jitter_moves_the_notes_not_the_truth() -> None:
    """With +-10 ms jitter the truth stays the straight grid and kicks land within 10 ms of it."""
    song = render_pattern(KICK_ONLY, 120.0, "jitter", target_s=16.0, harmony=False)
    assert np.allclose(np.diff(song.beats_s), 0.5)
    onsets = kick_onsets(song.y)
    err = np.abs(onsets - song.beats_s)
    assert err.max() <= JITTER_S + 0.001
    assert err.max() > 0.004  # the jitter is really there


def test_swing_delays_the_off_beat_eighth_to_the_triplet() -> None:
    """Swing 1/6 puts the off-beat eighth at two thirds of the beat."""
    swung = Pattern("swung", (120, 120), kick=(1,), steps_per_beat=2, beats_per_bar=1, swing=1 / 6)
    song = render_pattern(swung, 60.0, "drums_only", target_s=8.0)
    onsets = kick_onsets(song.y)
    assert np.max(np.abs(onsets - (song.beats_s + 2 / 3))) < 0.001


def test_waltz_truth_has_three_beats_per_bar_and_no_eight_counts() -> None:
    """The 3/4 waltz: a downbeat every third beat, the bass drum on each, no 8-count truth."""
    song = render_pattern(PATTERNS_BY_NAME["waltz"], 90.0, "drums_only", target_s=16.0)
    assert song.beats_per_bar == 3
    assert np.array_equal(song.downbeats_s, song.beats_s[::3])
    assert song.phrase_starts_s.size == 0
    kick_only = Pattern("waltz_kick", (90, 90), kick=(0,), beats_per_bar=3)
    kicks = kick_onsets(render_pattern(kick_only, 90.0, "drums_only", target_s=16.0).y)
    assert np.max(np.abs(kicks - song.downbeats_s)) < 0.001


def test_ambient_intro_delays_the_groove_and_its_truth() -> None:
    """The truth starts after the intro; 8-counts start every 8 beats from there."""
    song = render_pattern(PATTERNS_BY_NAME["house"], 124.0, "ambient_intro", target_s=16.0)
    assert song.groove_start_s == song.beats_s[0] == INTRO_S
    assert np.array_equal(song.phrase_starts_s, song.beats_s[::8])
    assert np.max(np.abs(song.y[: int(INTRO_S * SR)])) > 0.01  # the intro is not silence


def test_breakdown_drops_the_drums_for_four_middle_bars() -> None:
    """The drum renderer skips exactly the breakdown's bars (harmony, rendered apart, plays on)."""
    clock = beat_clock(120.0, 32)  # 8 bars of 2 s
    y = np.zeros(int((clock[-1] + 1) * SR))

    def at(beat: float) -> int:
        return round(float(np.interp(beat, np.arange(clock.size), clock)) * SR)

    _render_drums(
        y, SR, pattern=KICK_ONLY, bars=8, quiet=range(2, 6), at=at, rng=np.random.default_rng(0)
    )
    assert {int(t // 2.0) for t in kick_onsets(y)} == {0, 1, 6, 7}


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: p.name)
def test_every_pattern_is_well_formed_and_renders(pattern: Pattern) -> None:
    """Steps lie inside the pattern, the range is ordered, and an 8-second render has truth."""
    for steps in (pattern.kick, pattern.snare, pattern.hat, pattern.open_hat, pattern.clave):
        assert all(0 <= s < pattern.steps for s in steps)
    assert all(0 <= s < pattern.steps and n > 0 for s, n in pattern.bass)
    assert pattern.tempo_range[0] <= pattern.tempo_range[1]
    song = render_pattern(pattern, pattern.tempo_range[0], "full", target_s=8.0)
    assert song.beats_s.size % pattern.beats_per_bar == 0
    assert np.all(np.isfinite(song.y)) and np.max(np.abs(song.y)) == pytest.approx(0.9)


def test_patterns_cover_the_issue_list() -> None:
    """The twelve grooves issue 18 asks for are all there, each in six variants."""
    assert {p.name for p in PATTERNS} == {
        "house", "boom_bap", "trap", "reggaeton", "salsa", "bachata", "swing", "waltz",
        "drum_and_bass", "dubstep", "afrobeats", "kpop",
    }  # fmt: skip
    assert len(VARIANTS) == 6


@pytest.mark.parametrize(
    ("tempo", "variant", "sr", "message"),
    [(20.0, "full", SR, "tempo_bpm"), (120.0, "loud", SR, "variant"), (120.0, "full", 4000, "sr")],
)
def test_bad_input_names_the_problem(tempo: float, variant: str, sr: int, message: str) -> None:
    """An out-of-range tempo or sample rate, or an unknown variant, is refused naming it."""
    with pytest.raises(InvalidInput, match=message):
        render_pattern(KICK_ONLY, tempo, variant, sr=sr)  # type: ignore[arg-type]


def test_variants_typed() -> None:
    """Every variant name renders (8 s) without error."""
    for variant in VARIANTS:
        v: Variant = variant
        assert render_pattern(KICK_ONLY, 120.0, v, target_s=8.0).variant == variant
