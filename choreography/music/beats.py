"""Tempo, beat grid, octave alternatives and the bar phase (downbeats) from onset envelopes.

librosa has no downbeat tracker, so the bar phase is chosen among the ``beats_per_bar`` possible
phases by two cues that mark count 1 in most dance music: low-frequency onsets (kick, bass) and
harmonic change (chords change on the bar line).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from choreography.music.librosa_beat import import_librosa_beat
from choreography.music.model import TempoAlternative

Floats = npt.NDArray[np.floating[Any]]  # float32 envelopes from the spectrogram, or float64
Ints = npt.NDArray[np.intp]

# An octave alternative at least this well supported makes the tempo ambiguous (measured on
# synthesized songs, see docs/MUSIC_ANALYSIS.md).
OCTAVE_AMBIGUITY_THRESHOLD = 0.5
# Leading/trailing beats quieter than this share of the loudest frame's RMS (-40 dB) are dropped.
EDGE_TRIM_RATIO = 0.01
# librosa.beat.beat_track's tempo estimate: 8 s autocorrelation windows, prior centred on 120 BPM.
TEMPO_WINDOW_S = 8.0
TEMPO_BLOCK_FRAMES = 2048
"""Tempogram columns built at a time (344 x 2048 float64 and its FFT: about 25 MB)."""


@dataclass(frozen=True)
class TempoEstimate:
    """The refined tempo, its confidence and its octave alternatives."""

    bpm: float
    confidence: float
    alternatives: list[TempoAlternative]
    ambiguous: bool


def track_beats(onset_env: Floats, rms: Floats, sr: int, hop: int) -> Ints:
    """Beat frames from librosa's dynamic-programming tracker, without beats in silent edges."""
    if not np.any(onset_env):
        return np.zeros(0, dtype=np.intp)
    # librosa's own trim drops every beat of a quiet intro, so trim only near-silent edges here.
    _, frames = import_librosa_beat().beat_track(
        onset_envelope=onset_env,
        sr=sr,
        hop_length=hop,
        trim=False,
        units="frames",
        bpm=global_tempo(onset_env, sr, hop),
    )
    frames = np.asarray(frames, dtype=np.intp)
    if frames.size == 0:
        return frames
    loudness = _peak_at(rms, frames.astype(float))
    alive = np.flatnonzero(loudness >= EDGE_TRIM_RATIO * float(np.max(rms)))
    if alive.size == 0:
        return frames[:0]
    return frames[alive[0] : alive[-1] + 1]


def global_tempo(onset_env: npt.NDArray[np.floating], sr: int, hop: int) -> float:
    """The tempo ``beat_track`` estimates when given none, built a block of frames at a time.

    librosa averages an autocorrelation tempogram over the whole song: 344 rows of float64 per
    onset frame, and an FFT twice that size, 0.6 GB for a 20-minute song. Each column depends
    only on its own window of the envelope, so the sum is accumulated block by block instead:
    the same mean tempogram, then librosa's own prior and choice (``feature.tempo(tg=...)``).
    """
    import librosa  # noqa: PLC0415 - heavy; imported only when analysing

    win = int(librosa.time_to_frames(TEMPO_WINDOW_S, sr=sr, hop_length=hop).item())
    frames = onset_env.size
    padded = np.pad(onset_env, (win // 2, win // 2), mode="linear_ramp", end_values=(0, 0))
    window = librosa.filters.get_window("hann", win, fftbins=True)[:, None]
    total = np.zeros(win)
    for first in range(0, frames, TEMPO_BLOCK_FRAMES):
        last = min(first + TEMPO_BLOCK_FRAMES, frames)
        columns = librosa.util.frame(padded[first : last + win - 1], frame_length=win, hop_length=1)
        correlation = librosa.autocorrelate(columns * window, axis=-2)
        total += librosa.util.normalize(correlation, norm=np.inf, axis=-2).sum(axis=-1)
    mean = (total / frames)[:, None]
    return float(librosa.feature.tempo(tg=mean, sr=sr, hop_length=hop)[0])


def pulse_clarity(onset_env: Floats, beat_frames: Ints) -> float:
    """Mean onset strength at the beats over its mean anywhere (about 1 when there is no pulse)."""
    everywhere = _peak_at(onset_env, np.arange(onset_env.size, dtype=float))
    return float(
        _peak_at(onset_env, beat_frames.astype(float)).mean() / (everywhere.mean() + 1e-12)
    )


def refine_tempo(beats_s: Floats) -> float:
    """BPM from the median beat period over 8-beat spans (finer than one frame of quantisation)."""
    span = min(8, beats_s.size - 1)
    periods = (beats_s[span:] - beats_s[:-span]) / span
    return float(60.0 / np.median(periods))


def _peak_at(env: Floats, frames: Floats, radius: int = 2) -> Floats:
    """The envelope's maximum within ``radius`` frames of each (fractional) frame position."""
    idx = np.rint(frames).astype(int)
    offsets = np.arange(-radius, radius + 1)
    window = np.clip(idx[:, None] + offsets[None, :], 0, env.size - 1)
    return np.asarray(env[window].max(axis=1), dtype=float)


def _parity_contrast(env: Floats, frames: Floats) -> float:
    """0 when odd and even beats carry equal onsets, 1 when one parity carries none."""
    on_beat = _peak_at(env, frames)
    even, odd = float(np.mean(on_beat[0::2])), float(np.mean(on_beat[1::2]))
    return abs(even - odd) / (max(even, odd) + 1e-9)


def bar_change_contrast(change: Floats, phase: int, beats_per_bar: int = 4) -> float:
    """0 when chords change equally on every bar line, 1 when only every other bar line changes.

    Chords that change only every second "bar" suggest the beats are really half-beats.
    """
    per_bar = change[phase::beats_per_bar]
    if per_bar.size < 4:
        return 0.0
    even, odd = float(np.mean(per_bar[0::2])), float(np.mean(per_bar[1::2]))
    return abs(even - odd) / (max(even, odd) + 1e-9)


def estimate_tempo(
    onset_env: Floats,
    low_onset_env: Floats,
    beat_frames: Ints,
    beats_s: Floats,
    chord_contrast: float = 0.0,
) -> TempoEstimate:
    """Refined tempo plus half/double alternatives scored by onsets on the alternative grid."""
    bpm = refine_tempo(beats_s)
    frames = beat_frames.astype(float)
    on_beat = _peak_at(onset_env, frames)
    strong = float(np.mean(on_beat)) + 1e-9
    # Double time: is there as much onset energy half-way between beats as on them?
    mids = (frames[:-1] + frames[1:]) / 2
    double = float(np.mean(_peak_at(onset_env, mids, radius=1))) / strong
    # Half time: is every other beat much weaker, overall or in the kick/bass band?
    # or do chords change on only every other bar line (``chord_contrast``)?
    half = max(
        _parity_contrast(onset_env, frames),
        _parity_contrast(low_onset_env, frames),
        chord_contrast,
    )
    # Sanity of the grid itself: share of beat periods within 5 % of the median.
    ibis = np.diff(beats_s)
    regular = float(np.mean(np.abs(ibis / np.median(ibis) - 1.0) < 0.05))
    alternatives = [
        TempoAlternative(kind="half", bpm=bpm / 2, strength=float(np.clip(half, 0, 1))),
        TempoAlternative(kind="double", bpm=bpm * 2, strength=float(np.clip(double, 0, 1))),
    ]
    best_alt = max(a.strength for a in alternatives)
    return TempoEstimate(
        bpm=bpm,
        confidence=float(np.clip(regular * (1.0 - 0.5 * best_alt), 0, 1)),
        alternatives=alternatives,
        ambiguous=best_alt >= OCTAVE_AMBIGUITY_THRESHOLD,
    )


def _zscore(x: Floats) -> Floats:
    std = float(np.std(x))
    return (x - np.mean(x)) / std if std > 1e-9 else np.zeros_like(x)


def harmonic_change(beat_chroma: Floats, width: int = 2) -> Floats:
    """Per beat: cosine distance between mean chroma of the ``width`` beats before and after it."""
    n = beat_chroma.shape[1]
    change = np.zeros(n)
    for k in range(1, n):
        before = beat_chroma[:, max(0, k - width) : k].mean(axis=1)
        after = beat_chroma[:, k : k + width].mean(axis=1)
        denom = float(np.linalg.norm(before) * np.linalg.norm(after))
        change[k] = 1.0 - float(before @ after) / denom if denom > 1e-9 else 0.0
    return change


def bar_phase(
    low_onset_env: Floats, beat_frames: Ints, beat_chroma: Floats, beats_per_bar: int = 4
) -> tuple[int, float]:
    """The beat index of the first downbeat and a 0..1 confidence (margin over the runner-up)."""
    if beat_frames.size < beats_per_bar:
        return 0, 0.0
    score = _zscore(_peak_at(low_onset_env, beat_frames.astype(float)))
    score += _zscore(harmonic_change(beat_chroma))
    phases = np.array([score[p::beats_per_bar].mean() for p in range(beats_per_bar)])
    order = np.argsort(phases)[::-1]
    spread = float(phases[order[0]] - phases[order[-1]])
    margin = float(phases[order[0]] - phases[order[1]])
    return int(order[0]), (margin / spread if spread > 1e-9 else 0.0)
