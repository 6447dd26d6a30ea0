"""Synthesized test and demo songs with known ground truth (numpy only, deterministic per seed).

A song is a list of sections (name, bars) in 4/4. Each section name gets its own chord
progression (one chord per bar) and energy level, so repeated names repeat harmonically and a
chorus is louder and busier than a verse. The ground truth returned with the samples is exact:
beats, downbeats, section boundaries and which earlier section each one repeats.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from choreo_cli.demo.instruments import (
    Samples,
    bass_note,
    chord_pad,
    hihat,
    kick,
    mix_in,
    pluck,
    snare,
)
from schemas.errors import InvalidInput

Style = Literal["four_on_the_floor", "syncopated", "half_time", "salsa"]
STYLES: tuple[Style, ...] = ("four_on_the_floor", "syncopated", "half_time", "salsa")
BEATS_PER_BAR = 4
STEPS_PER_BAR = 16  # sixteenth notes

DEFAULT_STRUCTURE: tuple[tuple[str, int], ...] = (
    ("intro", 4),
    ("verse", 8),
    ("chorus", 8),
    ("verse", 8),
    ("chorus", 8),
    ("bridge", 4),
    ("chorus", 8),
    ("outro", 4),
)

# Triads as MIDI notes around C4; one chord per bar, cycled through the section.
_CHORDS = {
    "C": (60, 64, 67),
    "Dm": (62, 65, 69),
    "Em": (64, 67, 71),
    "F": (65, 69, 72),
    "G": (67, 71, 74),
    "Am": (57, 60, 64),
}
_PROGRESSIONS = {
    "intro": ("Am", "Em", "F", "G"),
    "verse": ("Am", "F", "C", "G"),
    "chorus": ("C", "G", "Am", "F"),
    "bridge": ("Dm", "Em", "F", "G"),
    "outro": ("F", "G", "C", "C"),
}
_ENERGY = {"intro": 0.45, "verse": 0.6, "chorus": 1.0, "bridge": 0.7, "outro": 0.45}

# Drum and bass patterns: sixteenth-note steps within a bar.
_KICK = {
    "four_on_the_floor": (0, 4, 8, 12),
    "syncopated": (0, 3, 6, 10),
    "half_time": (0, 11),
    "salsa": (0, 8),  # a soft bass drum on 1 and 3
}
# salsa: conga slaps on 2 and 4
_SNARE = {"four_on_the_floor": (4, 12), "syncopated": (4, 12), "half_time": (8,), "salsa": (4, 12)}
_HATS = {
    "four_on_the_floor": tuple(range(0, 16, 2)),
    "syncopated": tuple(range(16)),
    "half_time": tuple(range(0, 16, 2)),
    "salsa": (0, 4, 8, 12),  # the bongo bell on every beat
}
_BASS = {
    "four_on_the_floor": ((0, 2), (4, 2), (8, 2), (12, 2)),
    "syncopated": ((0, 3), (3, 3), (6, 4), (10, 2), (12, 4)),
    "half_time": ((0, 8), (8, 6), (14, 2)),
    "salsa": ((6, 6), (12, 4)),  # tumbao: the and of 2 and beat 4
}


@dataclass(frozen=True)
class SynthSection:
    """One section of a synthesized song and the earlier section it repeats (by name)."""

    name: str
    start_s: float
    end_s: float
    bars: int
    repeat_of: int | None


@dataclass(frozen=True)
class SynthSong:
    """Samples of a synthesized song plus its exact ground truth."""

    y: Samples
    sr: int
    tempo_bpm: float
    style: Style
    beats_s: Samples
    downbeats_s: Samples
    sections: tuple[SynthSection, ...]


def _progression(name: str) -> tuple[str, ...]:
    if name in _PROGRESSIONS:
        return _PROGRESSIONS[name]
    names = sorted(_CHORDS)
    seed = sum(ord(c) for c in name)  # unknown names still get a stable progression of their own
    return tuple(names[(seed + 2 * i) % len(names)] for i in range(4))


def _check(tempo_bpm: float, style: str, structure: Sequence[tuple[str, int]], sr: int) -> None:
    if not 40.0 <= tempo_bpm <= 240.0:
        raise InvalidInput(f"tempo_bpm must be within 40..240, got {tempo_bpm}")
    if style not in STYLES:
        raise InvalidInput(f"style must be one of {', '.join(STYLES)}, got {style!r}")
    if not structure or any(bars < 1 for _, bars in structure):
        raise InvalidInput("structure must list at least one section, each with bars >= 1")
    if sr < 8000:
        raise InvalidInput(f"sr must be at least 8000 Hz, got {sr}")


def synthesize_song(
    tempo_bpm: float,
    style: Style = "four_on_the_floor",
    structure: Sequence[tuple[str, int]] = DEFAULT_STRUCTURE,
    sr: int = 22050,
    seed: int = 0,
) -> SynthSong:
    """Render a 4/4 song with drums, bass, chords and a chorus lead, with its ground truth."""
    _check(tempo_bpm, style, structure, sr)
    rng = np.random.default_rng(seed)
    step_s = 60.0 / tempo_bpm / 4
    total_bars = sum(bars for _, bars in structure)
    tail_s = 1.0
    y = np.zeros(int((total_bars * STEPS_PER_BAR * step_s + tail_s) * sr))
    drums = {"kick": kick(sr, rng), "snare": snare(sr, rng), "hat": hihat(sr, rng)}
    open_hat = hihat(sr, rng, open_=True)

    sections: list[SynthSection] = []
    bar0 = 0
    for name, bars in structure:
        energy = _ENERGY.get(name, 0.7)
        progression = _progression(name)
        for bar in range(bar0, bar0 + bars):
            chord = _CHORDS[progression[(bar - bar0) % len(progression)]]
            bar_start = bar * STEPS_PER_BAR * step_s
            _render_bar(
                y,
                sr=sr,
                style=style,
                energy=energy,
                chord=chord,
                bar_start=bar_start,
                step_s=step_s,
                drums=drums,
                open_hat=open_hat,
                rng=rng,
            )
        first = next((i for i, s in enumerate(sections) if s.name == name), None)
        start_s = bar0 * STEPS_PER_BAR * step_s
        end_s = (bar0 + bars) * STEPS_PER_BAR * step_s
        sections.append(SynthSection(name, start_s, end_s, bars, first))
        bar0 += bars

    y *= 0.9 / max(float(np.max(np.abs(y))), 1e-9)
    beats = np.arange(total_bars * BEATS_PER_BAR, dtype=float) * 4 * step_s
    return SynthSong(
        y=y.astype(np.float32).astype(np.float64),
        sr=sr,
        tempo_bpm=float(tempo_bpm),
        style=style,
        beats_s=beats,
        downbeats_s=beats[::BEATS_PER_BAR],
        sections=tuple(sections),
    )


def _render_bar(
    y: Samples,
    *,
    sr: int,
    style: Style,
    energy: float,
    chord: tuple[int, int, int],
    bar_start: float,
    step_s: float,
    drums: dict[str, Samples],
    open_hat: Samples,
    rng: np.random.Generator,
) -> None:
    """Mix one bar of drums, bass, pad and (in loud sections) a lead arpeggio into ``y``."""

    def at(step: float) -> int:
        return round((bar_start + step * step_s) * sr)

    def vel() -> float:
        return float(rng.uniform(0.9, 1.0))  # slight humanised dynamics; timing stays exact

    for step in _KICK[style]:
        mix_in(y, drums["kick"], at(step), energy * vel())
    if energy >= 0.55:
        for step in _SNARE[style]:
            mix_in(y, drums["snare"], at(step), energy * vel())
    for step in _HATS[style]:
        accent = 1.0 if step % 4 == 0 else 0.6
        mix_in(y, drums["hat"], at(step), energy * accent * vel())
        if energy >= 0.9 and step % 4 == 2:
            mix_in(y, open_hat, at(step), 0.6 * vel())
    root = chord[0] - 24
    for step, length in _BASS[style]:
        mix_in(y, bass_note(sr, root, length * step_s * 0.9), at(step), 0.6 + 0.4 * energy)
    mix_in(y, chord_pad(sr, list(chord), STEPS_PER_BAR * step_s), at(0), 0.5 + 0.5 * energy)
    if energy >= 0.9:
        arpeggio = (0, 1, 2, 1, 0, 2, 1, 2)
        for i, idx in enumerate(arpeggio):
            mix_in(y, pluck(sr, chord[idx] + 12, 2 * step_s), at(2 * i), 0.9)


def write_wav(path: str | Path, y: Samples, sr: int) -> Path:
    """Write mono samples as a 16-bit PCM WAV file and return its path."""
    import soundfile  # noqa: PLC0415 - comes with librosa, only needed to write files

    out = Path(path)
    soundfile.write(out, np.clip(y, -1.0, 1.0), sr, subtype="PCM_16")
    return out
