"""Numpy-only voices for the test-song synthesizer: drums, bass, chord pad, lead."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float64]


def midi_to_hz(note: float) -> float:
    """Frequency in Hz of a MIDI note number (A4 = 69 = 440 Hz)."""
    return float(440.0 * 2.0 ** ((note - 69.0) / 12.0))


def kick(sr: int, rng: np.random.Generator) -> Samples:
    """A kick drum: a sine sweeping from 120 Hz down to 45 Hz with a fast decay."""
    t = np.arange(int(0.35 * sr)) / sr
    freq = 45.0 + 75.0 * np.exp(-t / 0.03)
    phase = 2 * np.pi * np.cumsum(freq) / sr
    click = rng.standard_normal(t.size) * np.exp(-t / 0.002) * 0.3
    return (np.sin(phase) * np.exp(-t / 0.12) + click) * 0.9


def snare(sr: int, rng: np.random.Generator) -> Samples:
    """A snare drum: band-limited noise plus a 185 Hz body, decaying in ~0.1 s."""
    t = np.arange(int(0.25 * sr)) / sr
    noise = np.diff(rng.standard_normal(t.size + 1))  # first difference tilts the noise upward
    body = np.sin(2 * np.pi * 185.0 * t) * np.exp(-t / 0.05)
    return (0.35 * noise * np.exp(-t / 0.07) + 0.5 * body) * 0.8


def hihat(sr: int, rng: np.random.Generator, open_: bool = False) -> Samples:
    """A hi-hat: high-passed noise, closed (30 ms) or open (150 ms)."""
    t = np.arange(int((0.2 if open_ else 0.06) * sr)) / sr
    noise = np.diff(rng.standard_normal(t.size + 2), n=2)  # second difference: mostly highs
    return noise * np.exp(-t / (0.05 if open_ else 0.012)) * 0.08


def bass_note(sr: int, note: float, dur_s: float) -> Samples:
    """A round bass note: fundamental plus a soft second and third harmonic."""
    t = np.arange(int(dur_s * sr)) / sr
    f = midi_to_hz(note)
    tone = np.sin(2 * np.pi * f * t) + 0.35 * np.sin(4 * np.pi * f * t)
    tone += 0.15 * np.sin(6 * np.pi * f * t)
    env = np.minimum(1.0, t / 0.005) * np.exp(-t / max(dur_s, 0.05))
    return np.asarray(tone * env * 0.45, dtype=float)


def chord_pad(sr: int, notes: list[float], dur_s: float) -> Samples:
    """A sustained chord: detuned harmonic-rich voices with a soft attack and release."""
    t = np.arange(int(dur_s * sr)) / sr
    out = np.zeros(t.size)
    for note in notes:
        for detune in (-0.08, 0.08):
            f = midi_to_hz(note + detune)
            for k, gain in ((1, 1.0), (2, 0.4), (3, 0.2), (4, 0.1)):
                out += gain * np.sin(2 * np.pi * f * k * t)
    attack = np.minimum(1.0, t / 0.04)
    release = np.minimum(1.0, (dur_s - t) / 0.08).clip(0.0, 1.0)
    return np.asarray(out * attack * release * (0.05 / len(notes)), dtype=float)


def pluck(sr: int, note: float, dur_s: float) -> Samples:
    """A lead pluck for melodies: a bright tone with a quick exponential decay."""
    t = np.arange(int(dur_s * sr)) / sr
    f = midi_to_hz(note)
    tone = (
        np.sin(2 * np.pi * f * t)
        + 0.5 * np.sin(4 * np.pi * f * t)
        + 0.2 * np.sin(6 * np.pi * f * t)
    )
    return tone * np.minimum(1.0, t / 0.003) * np.exp(-t / 0.12) * 0.12


def mix_in(track: Samples, sound: Samples, start: int, gain: float = 1.0) -> None:
    """Add ``sound`` into ``track`` at sample ``start``, truncated at the end of the track."""
    if start >= track.size:
        return
    end = min(track.size, start + sound.size)
    track[start:end] += gain * sound[: end - start]


def clave(sr: int) -> Samples:
    """A clave or woodblock click: a 2.5 kHz tone with a 25 ms decay."""
    t = np.arange(int(0.08 * sr)) / sr
    return np.sin(2 * np.pi * 2500.0 * t) * np.exp(-t / 0.025) * 0.5
