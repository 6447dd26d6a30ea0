"""Dance-music groove patterns rendered with exact ground truth, for the analysis benchmark.

A :class:`Pattern` is data: per-instrument step lists over one or two bars, the meter, the steps
per beat and a swing amount. :func:`render_pattern` plays it on one clock (beat index -> seconds)
and returns the true beats, downbeats and 8-count starts read from that same clock, so the truth
stays exact under tempo drift. Human timing jitter moves the notes, never the truth: the truth is
the grid the player follows.

The demo's own songs (``song_synth.py``) are not touched; this module only adds grooves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from choreo_cli.demo.instruments import (
    Samples,
    bass_note,
    chord_pad,
    clave,
    hihat,
    kick,
    mix_in,
    pluck,
    snare,
)
from schemas.errors import InvalidInput

Steps = tuple[int, ...]
Notes = tuple[tuple[int, int], ...]
"""(step, length in steps) of bass notes."""

Variant = Literal["full", "drums_only", "breakdown", "drift", "jitter", "ambient_intro"]
VARIANTS: tuple[Variant, ...] = (
    "full",
    "drums_only",
    "breakdown",
    "drift",
    "jitter",
    "ambient_intro",
)
DRIFT = 0.02  # the tempo swings +-2 % over the song (one sine period)
JITTER_S = 0.010  # every note lands uniformly within +-10 ms of its grid time
INTRO_S = 4.3  # ambient intro length: deliberately not a whole number of beats
TAIL_S = 1.0
COUNTS_PER_PHRASE = 8

# One chord per bar; two four-bar progressions alternate, so 8-counts start on even bars.
_PROGRESSIONS = (
    ((57, 60, 64), (53, 57, 60), (60, 64, 67), (55, 59, 62)),  # Am F C G
    ((60, 64, 67), (55, 59, 62), (57, 60, 64), (53, 57, 60)),  # C G Am F
)


@dataclass(frozen=True)
class Pattern:
    """A groove: what each instrument plays, in steps from the start of the pattern."""

    name: str
    tempo_range: tuple[float, float]
    """Counted (felt) tempo in BPM, the level the truth's beats are at."""
    kick: Steps = ()
    snare: Steps = ()
    hat: Steps = ()
    open_hat: Steps = ()
    clave: Steps = ()
    bass: Notes = ()
    chord_stabs: Steps = ()
    """Steps where the chord is struck short; empty means one sustained pad per bar."""
    beats_per_bar: int = 4
    steps_per_beat: int = 4
    bars: int = 1
    swing: float = 0.0
    """Delay of the off-beat eighth as a fraction of a beat: 1/6 is triplet (2:1) swing."""
    note: str = ""
    style: str | None = None
    """The move library's style a request for this groove names (``STYLES``); the benchmark
    scores the analysis counted for it (``choreography.music.style_count``)."""

    @property
    def steps(self) -> int:
        """Steps in the whole pattern (all its bars)."""
        return self.bars * self.beats_per_bar * self.steps_per_beat


def _every(step: int, total: int = 16, start: int = 0) -> Steps:
    return tuple(range(start, total, step))


PATTERNS: tuple[Pattern, ...] = (
    Pattern(
        "house",
        (118, 132),
        kick=(0, 4, 8, 12),
        snare=(4, 12),
        hat=_every(2, start=1),
        open_hat=(2, 6, 10, 14),
        bass=((2, 2), (6, 2), (10, 2), (14, 2)),
        note="four-on-the-floor kick, clap on 2 and 4, off-beat open hats and bass",
        style="house",
    ),
    Pattern(
        "boom_bap",
        (85, 100),
        kick=(0, 7, 10),
        snare=(4, 12),
        hat=_every(2),
        bass=((0, 3), (7, 3), (10, 4)),
        note="hip-hop: kick on 1 and the a of 2, snare on 2 and 4, eighth hats",
        style="hip-hop",
    ),
    Pattern(
        "trap",
        (65, 75),
        kick=(0, 14, 20),
        snare=(8, 24),
        hat=(*_every(2, 28), 28, 29, 30, 31),
        bass=((0, 12), (14, 6), (20, 12)),
        steps_per_beat=8,
        note="half-time: written at 130-150, felt (and counted) at 65-75; hats with rolls",
        style="hip-hop",
    ),
    Pattern(
        "reggaeton",
        (90, 100),
        kick=(0, 4, 8, 12),
        snare=(3, 6, 11, 14),
        hat=_every(2),
        bass=((0, 3), (4, 3), (8, 3), (12, 3)),
        note="dembow: kick on every beat, snare on the a of 1 and the and of 2",
    ),
    Pattern(
        "salsa",
        (160, 220),
        kick=(0, 16),
        snare=(4, 12, 20, 28),
        hat=_every(4, 32),
        clave=(4, 8, 16, 22, 28),
        bass=((6, 6), (12, 4), (22, 6), (28, 4)),
        bars=2,
        note="2-3 son clave, cowbell on the beat, conga slaps on 2 and 4, tumbao bass",
        style="salsa",
    ),
    Pattern(
        "bachata",
        (126, 134),
        kick=(0, 8),
        hat=(0, 2, 3, 4, 6, 7, 8, 10, 11, 12, 14, 15),
        clave=_every(2),
        bass=((0, 3), (6, 2), (8, 3), (14, 2)),
        note="guira on every beat with its pickup, bongo eighths, syncopated bass",
        style="salsa",
    ),
    Pattern(
        "swing",
        (140, 200),
        kick=(0, 2, 4, 6),
        snare=(5,),
        hat=(2, 6),
        open_hat=(0, 2, 3, 4, 6, 7),
        bass=((0, 2), (2, 2), (4, 2), (6, 2)),
        steps_per_beat=2,
        swing=1 / 6,
        note="ride 'ding ding-a' with swung eighths, hi-hat on 2 and 4, walking bass",
    ),
    Pattern(
        "waltz",
        (84, 96),
        kick=(0,),
        hat=(4, 8),
        bass=((0, 4),),
        chord_stabs=(4, 8),
        beats_per_bar=3,
        note="3/4: bass on 1, chords on 2 and 3",
    ),
    Pattern(
        "drum_and_bass",
        (170, 176),
        kick=(0, 10),
        snare=(4, 12),
        hat=_every(2),
        bass=((0, 8), (10, 6)),
        note="two-step: kick on 1 and the and of 3, snare on 2 and 4",
    ),
    Pattern(
        "dubstep",
        (70, 70),
        kick=(0, 16, 19),
        snare=(8, 24),
        hat=_every(2, 32),
        bass=((0, 8), (8, 4), (12, 4), (16, 8), (24, 8)),
        steps_per_beat=8,
        note="half-time: written at 140, felt (and counted) at 70",
    ),
    Pattern(
        "afrobeats",
        (100, 115),
        kick=(0, 7, 8),
        snare=(4, 12),
        hat=_every(1),
        clave=(3, 6, 10, 14),
        bass=((0, 3), (3, 3), (8, 3), (11, 3)),
        note="kick on 1 and 3 with a pickup, rim syncopations, sixteenth shakers",
    ),
    Pattern(
        "kpop",
        (120, 130),
        kick=(0, 6, 8),
        snare=(4, 12),
        hat=_every(2),
        open_hat=(14,),
        bass=((0, 3), (3, 3), (6, 2), (8, 4), (12, 4)),
        note="pop: kick on 1, the and of 2 and 3, snare on 2 and 4",
        style="pop",
    ),
)
PATTERNS_BY_NAME = {p.name: p for p in PATTERNS}


@dataclass(frozen=True)
class PatternSong:
    """Samples of a rendered groove and its exact ground truth."""

    y: Samples
    sr: int
    pattern: str
    variant: Variant
    tempo_bpm: float
    beats_per_bar: int
    beats_s: Samples
    downbeats_s: Samples
    phrase_starts_s: Samples
    """True 8-count starts (every second bar in 4/4); empty for other meters."""
    groove_start_s: float


def bars_for(pattern: Pattern, tempo_bpm: float, target_s: float) -> int:
    """Whole bars (a multiple of 4, at least 8) that last about ``target_s`` at this tempo."""
    bar_s = pattern.beats_per_bar * 60.0 / tempo_bpm
    return max(8, 4 * round(target_s / bar_s / 4))


def beat_clock(tempo_bpm: float, beats: int, drift: float = 0.0) -> Samples:
    """Start time of beats 0..beats (one extra, the end), the tempo swinging +-``drift``."""
    k = np.arange(beats, dtype=float)
    bpm = tempo_bpm * (1.0 + drift * np.sin(2 * np.pi * k / max(beats, 1)))
    return np.concatenate([[0.0], np.cumsum(60.0 / bpm)])


def render_pattern(
    pattern: Pattern,
    tempo_bpm: float,
    variant: Variant = "full",
    *,
    target_s: float = 32.0,
    sr: int = 22050,
    seed: int = 0,
    harmony: bool | None = None,
) -> PatternSong:
    """Render ``pattern`` at ``tempo_bpm`` (its counted tempo) in one of :data:`VARIANTS`.

    ``harmony`` (bass, chords, melody) is on for every variant but ``drums_only`` unless given.
    """
    if not 30.0 <= tempo_bpm <= 300.0:
        raise InvalidInput(f"tempo_bpm must be within 30..300, got {tempo_bpm}")
    if variant not in VARIANTS:
        raise InvalidInput(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    if sr < 8000:
        raise InvalidInput(f"sr must be at least 8000 Hz, got {sr}")
    rng = np.random.default_rng(seed)
    bpb = pattern.beats_per_bar
    bars = bars_for(pattern, tempo_bpm, target_s)
    clock = beat_clock(tempo_bpm, bars * bpb, DRIFT if variant == "drift" else 0.0)
    start = INTRO_S if variant == "ambient_intro" else 0.0
    y = np.zeros(int((start + clock[-1] + TAIL_S) * sr))
    jitter = JITTER_S if variant == "jitter" else 0.0

    def at(beat: float) -> int:
        """Sample index of a beat position on the clock, swung and jittered."""
        whole = min(int(beat), clock.size - 2)
        frac = _swung(beat - whole, pattern.swing)
        t = start + clock[whole] + frac * (clock[whole + 1] - clock[whole])
        if jitter:
            t += float(rng.uniform(-jitter, jitter))
        return max(0, round(float(t) * sr))

    def beat_s(beat: float) -> float:
        return float(clock[min(int(beat), clock.size - 2) + 1] - clock[int(beat)])

    quiet = range(bars // 2 - 2, bars // 2 + 2) if variant == "breakdown" else range(0)
    if variant == "ambient_intro":
        _ambient(y, sr, INTRO_S, _PROGRESSIONS[0][0], rng)
    _render_drums(y, sr, pattern=pattern, bars=bars, quiet=quiet, at=at, rng=rng)
    if variant != "drums_only" if harmony is None else harmony:
        _render_harmony(y, sr, pattern=pattern, bars=bars, at=at, beat_s=beat_s)
    y *= 0.9 / max(float(np.max(np.abs(y))), 1e-9)
    beats = start + clock[:-1]
    return PatternSong(
        y=y,
        sr=sr,
        pattern=pattern.name,
        variant=variant,
        tempo_bpm=float(tempo_bpm),
        beats_per_bar=bpb,
        beats_s=beats,
        downbeats_s=beats[::bpb],
        phrase_starts_s=beats[::COUNTS_PER_PHRASE] if bpb == 4 else np.empty(0),
        groove_start_s=start,
    )


def _swung(frac: float, swing: float) -> float:
    """Position within a beat after delaying the off-beat eighth by ``swing`` of a beat."""
    mid = 0.5 + swing
    if frac <= 0.5:
        return frac * mid / 0.5
    return mid + (frac - 0.5) * (1.0 - mid) / 0.5


def _render_drums(
    y: Samples,
    sr: int,
    *,
    pattern: Pattern,
    bars: int,
    quiet: range,
    at: Callable[[float], int],
    rng: np.random.Generator,
) -> None:
    """Mix the drum parts, silent in the ``quiet`` bars (a breakdown)."""
    voices = {
        "kick": (kick(sr, rng), pattern.kick, 1.0),
        "snare": (snare(sr, rng), pattern.snare, 0.8),
        "hat": (hihat(sr, rng), pattern.hat, 0.7),
        "open_hat": (hihat(sr, rng, open_=True), pattern.open_hat, 0.6),
        "clave": (clave(sr), pattern.clave, 0.5),
    }
    spb, per_bar = pattern.steps_per_beat, pattern.beats_per_bar * pattern.steps_per_beat
    for bar in range(0, bars, pattern.bars):
        for sound, steps, gain in voices.values():
            for step in steps:
                if bar + step // per_bar in quiet:
                    continue
                accent = 1.0 if step % spb == 0 else 0.7
                beat = bar * pattern.beats_per_bar + step / spb
                mix_in(y, sound, at(beat), gain * accent * float(rng.uniform(0.9, 1.0)))


def _render_harmony(
    y: Samples,
    sr: int,
    *,
    pattern: Pattern,
    bars: int,
    at: Callable[[float], int],
    beat_s: Callable[[float], float],
) -> None:
    """Bass, chords (a pad per bar or short stabs) and a plucked arpeggio on the eighths."""
    bpb, spb = pattern.beats_per_bar, pattern.steps_per_beat
    per_bar = bpb * spb
    for bar in range(bars):
        chord = _PROGRESSIONS[(bar // 4) % 2][bar % 4]
        first = bar * bpb
        for step, length in pattern.bass:
            if step // per_bar != bar % pattern.bars:
                continue
            beat = (bar - bar % pattern.bars) * bpb + step / spb
            dur = length / spb * beat_s(beat) * 0.9
            mix_in(y, bass_note(sr, chord[0] - 24, dur), at(beat), 0.8)
        if pattern.chord_stabs:
            for step in pattern.chord_stabs:
                beat = first + step / spb
                mix_in(y, chord_pad(sr, list(chord), 0.6 * beat_s(beat)), at(beat), 1.0)
        else:
            bar_s = sum(beat_s(first + b) for b in range(bpb))
            mix_in(y, chord_pad(sr, list(chord), bar_s), at(first), 0.8)
        for i in range(2 * bpb):
            beat = first + i / 2
            mix_in(y, pluck(sr, chord[i % 3] + 12, beat_s(beat)), at(beat), 0.5)


def _ambient(
    y: Samples, sr: int, seconds: float, chord: tuple[int, int, int], rng: np.random.Generator
) -> None:
    """A pulse-free intro: smoothed noise and a held chord, both fading in."""
    n = int(seconds * sr)
    noise = np.convolve(rng.standard_normal(n), np.ones(64) / 64, mode="same")
    fade = np.linspace(0.0, 1.0, n)
    y[:n] += 0.3 * noise / max(float(np.max(np.abs(noise))), 1e-9) * fade
    y[:n] += chord_pad(sr, list(chord), seconds)[:n] * fade * 1.5
