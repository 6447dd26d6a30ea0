"""Tempo, beat grid, octave alternatives and the bar phase (downbeats) from onset envelopes.

librosa has no downbeat tracker, so the bar phase is chosen among the ``beats_per_bar`` possible
phases by two cues that mark count 1 in most dance music: low-frequency onsets (kick, bass) and
harmonic change (chords change on the bar line).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from choreography.music.librosa_beat import import_librosa_beat
from choreography.music.model import TempoAlternative

Floats = npt.NDArray[np.floating[Any]]  # float32 envelopes from the spectrogram, or float64
Ints = npt.NDArray[np.intp]

# The tempo is octave ambiguous when the kicks and the snares (or claps) fall on the same
# parity of the counted beats at least this much (backbeat_doubt): at the level dancers count,
# they alternate (kick on 1 and 3, backbeat on 2 and 4). Measured on the analysis benchmark:
# -0.18-0.10 on grooves counted at their level, 0.11-0.44 on those counted an octave off
# (docs/MUSIC_ANALYSIS.md).
BACKBEAT_DOUBT_THRESHOLD = 0.105
# Leading/trailing beats quieter than this share of the loudest frame's RMS (-40 dB) are dropped.
EDGE_TRIM_RATIO = 0.01
# librosa.beat.beat_track's tempo estimate: 8 s autocorrelation windows, prior centred on 120 BPM.
TEMPO_WINDOW_S = 8.0
TEMPO_BLOCK_FRAMES = 2048
"""Tempogram columns built at a time (344 x 2048 float64 and its FFT: about 25 MB)."""
# The pulse family is searched within FAMILY_BPM; a period is scored by the autocorrelation at
# these multiples of it (docs/MUSIC_ANALYSIS.md, "Tempo at the level dancers count").
FAMILY_BPM = (40.0, 260.0)
FAMILY_MULTIPLES = (0.5, 1.0, 2.0, 4.0)
# The counted level: the family member nearest PREFERRED_BPM (log scale) within DANCE_BPM. It
# always lies within half an octave of it (78-156 BPM); within CLEAR_LEVEL_OCTAVES (87-140 BPM)
# the level is clear, nearer the edges the octave is counted about as often (octave ambiguous).
PREFERRED_BPM = 110.0
CLEAR_LEVEL_OCTAVES = 0.35
# Slower than 60 BPM (a beat a second) no level is counted: the level above it is kept, flagged
# (a half-time groove written at 110, snare on 3, stays at 110 rather than 55).
DANCE_BPM = (60.0, 240.0)
# meter_score at or above this reads as 3/4: the benchmark's waltzes score 1.8-3.2, its 4/4
# grooves -2.7-0.5 (docs/MUSIC_ANALYSIS.md).
TRIPLE_METER_THRESHOLD = 1.0
# A beat at least this share of the median beat's onset strength starts the groove.
GROOVE_STRENGTH = 0.25
MIN_INTRO_BEATS = 2
# The phase where the groove starts gains this share of the phase scores' spread: it decides
# between phases the kick, backbeat and chord cues score alike, never against a clear cue.
GROOVE_PHASE_BONUS = 0.25
# A bar-phase cue votes only when its phase means spread this many times their noise level.
CUE_MIN_SPREAD = 3.0
EDGE_FRAMES = 3
# The tempo is refined from the tracked beats when there are more periods than this.
MIN_REFINE_SPANS = 8
# A level whose half-beats carry at least this share of its beats' onsets in every band (all,
# kick and bass, snare) has nothing marking its beats: the pulse dancers feel is twice as fast
# (even_pulse). Measured on the analysis benchmark: 0.94-1.04 on swing counted at half, at most
# 0.83 on every groove counted at its level (docs/MUSIC_ANALYSIS.md).
EVEN_PULSE_RATIO = 0.9
# Weight of the kick and bass band, each envelope scaled to its mean, in the tracking envelope.
LOW_BAND_WEIGHT = 1.0
# librosa's tracker weighs the tempo against the onsets by its tightness: its default (100)
# while the level is chosen; once the level stands, the beats are tracked again at
# HOLD_TIGHTNESS, so they hold the tempo through a drumless breakdown instead of sliding to an
# off-beat bass (the benchmark's house breakdown: beat F 0.69 -> 0.98). Held at the level
# choice itself it moved Let's Go Fishin' an octave (docs/MUSIC_ANALYSIS.md).
TIGHTNESS = 100.0
HOLD_TIGHTNESS = 200.0


@dataclass(frozen=True)
class TempoEstimate:
    """The refined tempo, its confidence and its octave alternatives."""

    bpm: float
    confidence: float
    alternatives: list[TempoAlternative]
    ambiguous: bool


@dataclass(frozen=True)
class TempoLevel:
    """The pulse family found in the onsets and the level of it counted as the beat."""

    family_bpm: list[float]
    """The family's levels in the dance range, slowest first (each twice the one before)."""
    bpm: float
    """The counted level (before refinement from the tracked beats)."""
    reason: str
    ambiguous: bool = False
    """The cues disagree on the level, or none settles it: the music is octave ambiguous."""
    subdivided: bool = False
    """The beats are a tracked grid's beats (the even ones) and the points half-way between them
    (:func:`even_pulse`); how clear the pulse is is judged on the tracked grid."""


def track_beats(
    onset_env: Floats,
    low_onset_env: Floats,
    snare_onset_env: Floats,
    rms: Floats,
    *,
    sr: int,
    hop: int,
    plain_onset_env: Floats | None = None,
    kick_onset_env: Floats | None = None,
) -> tuple[Ints, TempoLevel | None]:
    """Beat frames at the counted level, without beats in silent edges, and how it was chosen.

    The level nearest ``PREFERRED_BPM`` (:func:`counted_level`) is tracked first. When its kicks
    and backbeats fall on the same beats (:func:`backbeat_doubt`), half and double that tempo are
    tracked too, and the level where they alternate is counted instead. librosa's
    dynamic-programming tracker follows ``onset_env`` plus the kick and bass band, each scaled to
    its mean, so the beats land where the kick is rather than on a louder off-beat snare (the
    band as ``kick_onset_env`` gives it, floored so a bass note after a rest does not outweigh
    a kick; ``low_onset_env`` when not given). When
    no band marks the counted beats apart from the points half-way between them
    (:func:`even_pulse` of ``plain_onset_env``, the unfloored low band and the snare band,
    plain onsets defaulting to ``onset_env``), the level twice as fast is counted.
    """
    if not np.any(onset_env):
        return np.zeros(0, dtype=np.intp), None
    level = counted_level(mean_tempogram(onset_env, sr, hop), sr / hop)
    tracking = onset_env / (float(np.mean(onset_env)) + 1e-9)
    kick = low_onset_env if kick_onset_env is None else kick_onset_env
    if np.any(kick):
        tracking = tracking + LOW_BAND_WEIGHT * kick / float(np.mean(kick))
    plain = onset_env if plain_onset_env is None else plain_onset_env
    bands = _Envelopes(onset_env, plain, tracking, low_onset_env, kick, snare_onset_env, sr, hop)
    frames = bands.track(level.bpm)
    if bands.doubt(frames) >= BACKBEAT_DOUBT_THRESHOLD:
        frames, level = _recount(bands, level, frames)
    elif bands.even_pulse(frames) >= EVEN_PULSE_RATIO and level.bpm * 2 <= DANCE_BPM[1]:
        frames, level = _double_even(level, frames)
    else:  # the level stands as tracked: its beats are tracked again, held closer to its tempo
        frames = bands.track(level.bpm, tightness=HOLD_TIGHTNESS)
    if frames.size == 0:
        return frames, level
    loudness = _peak_at(rms, frames.astype(float))
    alive = np.flatnonzero(loudness >= EDGE_TRIM_RATIO * float(np.max(rms)))
    if alive.size == 0:
        return frames[:0], level
    first = int(alive[0])
    if level.subdivided:
        first -= first % 2  # keep the tracked grid's beats on the even places
    return frames[first : alive[-1] + 1], level


@dataclass(frozen=True)
class _Envelopes:
    """The onset envelopes the beats are tracked on and their level and phase judged by."""

    onset: Floats
    """Onsets (SuperFlux): how strong a grid's beats are."""
    plain: Floats
    """Plain mel-flux onsets, where a ride or a walking bass is as strong as it sounds."""
    tracking: Floats
    """Onsets plus the kick and bass band: what librosa's tracker follows."""
    low: Floats
    kick: Floats
    """The kick and bass band floored (``kick_onset_env``), or ``low`` itself."""
    snare: Floats
    sr: int
    hop: int

    def track(self, bpm: float, tightness: float = TIGHTNESS) -> Ints:
        """librosa's dynamic-programming tracker at ``bpm``, untrimmed (its own trim drops every
        beat of a quiet intro; the caller trims only near-silent edges)."""
        _, frames = import_librosa_beat().beat_track(
            onset_envelope=self.tracking,
            sr=self.sr,
            hop_length=self.hop,
            trim=False,
            units="frames",
            bpm=bpm,
            tightness=tightness,
        )
        return np.asarray(frames, dtype=np.intp)

    def doubt(self, frames: Ints) -> float:
        """:func:`backbeat_doubt` of a grid."""
        return backbeat_doubt(self.low, self.snare, frames)

    def least_doubt(self, frames: Ints) -> float:
        """:func:`backbeat_doubt` of a grid read on the low band and on the floored kick band,
        whichever alternates better with the backbeat: a long bass note (trap's 808) shows on
        the first, a kick under a bass that plays after rests (a tumbao) on the second. The
        kick band is read only where it has onsets at the beats (at least its mean): a flat
        band has no parity, and no parity would read as no doubt."""
        doubt = self.doubt(frames)
        if frames.size < 4:
            return doubt
        at_beats = float(np.mean(_peak_at(self.kick, frames.astype(float))))
        if at_beats <= float(np.mean(self.kick)):
            return doubt
        return min(doubt, backbeat_doubt(self.kick, self.snare, frames))

    def even_pulse(self, frames: Ints) -> float:
        """:func:`even_pulse` of a grid."""
        return even_pulse((self.plain, self.low, self.snare), frames)

    def strength(self, frames: Ints) -> float:
        """Mean onset strength at a grid's beats."""
        return float(np.mean(_peak_at(self.onset, frames.astype(float))))

    def best_phase(self, frames: Ints) -> tuple[Ints, float]:
        """The beats with their doubt, or the points half-way between them when the beats are in
        doubt and, half-way, kick and backbeat alternate and the onsets are at least as strong
        (the tracker can settle on the off-beats of a syncopated kick, as in drum and bass)."""
        doubt = self.least_doubt(frames)
        if frames.size < 5 or doubt < BACKBEAT_DOUBT_THRESHOLD:
            return frames, doubt
        shifted = ((frames[:-1] + frames[1:]) // 2).astype(np.intp)
        shifted_doubt = self.least_doubt(shifted)
        if shifted_doubt < 0 and self.strength(shifted) >= self.strength(frames):
            return shifted, shifted_doubt
        return frames, doubt


def _recount(bands: _Envelopes, level: TempoLevel, frames: Ints) -> tuple[Ints, TempoLevel]:
    """Half and double the level, tracked: the one where kick and backbeat alternate best, the
    kick read on the low band or on the floored kick band, whichever alternates better
    (:meth:`_Envelopes.least_doubt`)."""
    tried = {}
    for bpm in (level.bpm / 2, level.bpm * 2):
        if DANCE_BPM[0] <= bpm <= DANCE_BPM[1]:
            other, doubt = bands.best_phase(bands.track(bpm))
            tried[bpm] = (doubt, other)
    best = min(tried, key=lambda bpm: tried[bpm][0], default=None)
    if best is None or tried[best][0] >= BACKBEAT_DOUBT_THRESHOLD:
        reason = (
            f"{level.reason}; its kicks and backbeats fall on the same beats, and no octave of it "
            "settles that"
        )
        return frames, replace(level, reason=reason, ambiguous=True)
    reason = (
        f"{level.reason} ({level.bpm:.1f}), but there kicks and backbeats fall on the same "
        f"beats; counted at {best:.1f} BPM instead, where they alternate"
    )
    return tried[best][1], replace(level, bpm=best, reason=reason, ambiguous=True)


def _double_even(level: TempoLevel, frames: Ints) -> tuple[Ints, TempoLevel]:
    """Double the level whose half-beats are as strong as its beats in every band: the beats
    and the points half-way between them."""
    bpm = level.bpm * 2
    reason = (
        f"{level.reason} ({level.bpm:.1f}), but there every band has as much onset half-way "
        f"between the beats as on them; counted at {bpm:.1f} BPM instead, the even pulse"
    )
    low, high = PREFERRED_BPM * 2**-CLEAR_LEVEL_OCTAVES, PREFERRED_BPM * 2**CLEAR_LEVEL_OCTAVES
    edge = not low <= bpm <= high
    return subdivided(frames), replace(
        level, bpm=bpm, reason=reason, ambiguous=edge, subdivided=True
    )


def subdivided(frames: Ints) -> Ints:
    """The beat frames and the frames half-way between them."""
    doubled = np.empty(2 * frames.size - 1, dtype=np.intp)
    doubled[0::2], doubled[1::2] = frames, (frames[:-1] + frames[1:]) // 2
    return doubled


def even_pulse(envelopes: Sequence[Floats], beat_frames: Ints) -> float:
    """The smallest ratio, over ``envelopes``, of the onsets half-way between beats to those on
    them: about 1 when no band marks the beats apart from the points between them (a walking
    bass, a kick and a ride on every half-beat), well under 1 when some band accents the beats.
    """
    if beat_frames.size < 4:
        return 0.0
    frames = beat_frames.astype(float)
    mids = (frames[:-1] + frames[1:]) / 2
    ratios = [
        float(np.mean(_peak_at(env, mids, radius=1)))
        / (float(np.mean(_peak_at(env, frames, radius=1))) + 1e-9)
        for env in envelopes
    ]
    return min(ratios)


def mean_tempogram(onset_env: npt.NDArray[np.floating], sr: int, hop: int) -> Floats:
    """librosa's autocorrelation tempogram averaged over the song, a block of frames at a time.

    The whole tempogram holds 344 rows of float64 per onset frame, and an FFT twice that size:
    0.6 GB for a 20-minute song. Each column depends only on its own window of the envelope, so
    the mean is accumulated block by block instead. Row ``k`` is the autocorrelation at lag ``k``
    frames (1 at lag 0).
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
    return total / frames


def _ac_peak(ac: Floats, lag: float) -> float:
    """The autocorrelation's maximum within 3 % of ``lag`` (0 beyond the tempogram's reach)."""
    low, high = int(np.floor(lag * 0.97)), int(np.ceil(lag * 1.03))
    if low < 1 or high >= ac.size:
        return 0.0
    return float(ac[low : high + 1].max())


def pulse_family(ac: Floats, fps: float) -> float:
    """The BPM of the period best supported together with its half, double and quadruple.

    A metrical pulse repeats at twice and four times its period and is subdivided at half of it;
    a period 3/2 or 4/3 of the beat (an off-beat syncopation, three beats of a four-beat bar)
    finds little support at those multiples. Summing them, rather than reading the strongest
    autocorrelation peak under librosa's tempo prior, is what removes the 2:3 and 3:4 errors.
    """
    lags = np.arange(int(60 * fps / FAMILY_BPM[1]), int(60 * fps / FAMILY_BPM[0]) + 1)
    support = np.array([np.mean([_ac_peak(ac, lag * m) for m in FAMILY_MULTIPLES]) for lag in lags])
    best = int(lags[int(np.argmax(support))])
    # The exact lag: the autocorrelation peak near the winner, interpolated between frames.
    low, high = max(1, int(best * 0.97)), min(ac.size - 2, int(np.ceil(best * 1.03)))
    peak = low + int(np.argmax(ac[low : high + 1]))
    a, b, c = ac[peak - 1], ac[peak], ac[peak + 1]
    offset = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) < 0 else 0.0
    # A peak at the window's edge is no local maximum: a nearly straight a, b, c put the vertex
    # hundreds of lags away, even at a negative lag (10 s of white noise read -304 BPM, and
    # counted_level's octave loop never ended). The vertex stays within half a lag.
    offset = float(np.clip(offset, -0.5, 0.5))
    return float(60 * fps / (peak + offset))


def counted_level(ac: Floats, fps: float) -> TempoLevel:
    """The level of the pulse family dancers count: the one nearest ``PREFERRED_BPM``."""
    bpm = pulse_family(ac, fps)
    while bpm / 2 >= DANCE_BPM[0]:
        bpm /= 2
    while bpm < DANCE_BPM[0]:
        bpm *= 2
    family = [bpm * 2**k for k in range(4) if bpm * 2**k <= DANCE_BPM[1]]
    chosen = min(family, key=lambda level: abs(np.log2(level / PREFERRED_BPM)))
    listed = ", ".join(f"{level:.1f}" for level in family)
    reason = (
        f"pulse levels {listed} BPM; the one nearest {PREFERRED_BPM:.0f} BPM, the level "
        "dancers count in most dance music"
    )
    low, high = PREFERRED_BPM * 2**-CLEAR_LEVEL_OCTAVES, PREFERRED_BPM * 2**CLEAR_LEVEL_OCTAVES
    edge = not low <= chosen <= high
    if edge:
        reason += f", though outside {low:.0f}-{high:.0f} BPM its octave is counted as often"
    return TempoLevel(family_bpm=family, bpm=chosen, reason=reason, ambiguous=edge)


def pulse_clarity(onset_env: Floats, beat_frames: Ints) -> float:
    """Mean onset strength at the beats over its mean anywhere (about 1 when there is no pulse)."""
    everywhere = _peak_at(onset_env, np.arange(onset_env.size, dtype=float))
    return float(
        _peak_at(onset_env, beat_frames.astype(float)).mean() / (everywhere.mean() + 1e-12)
    )


def pulse_periodicity(onset_env: Floats, beat_frames: Ints) -> float:
    """How much the onsets repeat at the beat period or twice it: the autocorrelation of the
    mean-removed onset envelope there (best within 3 %, lags up to half the song), at most 1,
    about 0 for noise.

    Unlike :func:`pulse_clarity` it does not compare the beats with the rest of the song, so a
    groove whose off-beats are as busy as its beats (swing, counted on the tracked grid) scores
    as high as any other; noise never repeats, however its peaks happen to fall.
    """
    if beat_frames.size < 2:
        return 0.0
    x = onset_env.astype(float) - float(np.mean(onset_env))
    energy = float(x @ x)
    if energy <= 1e-12:
        return 0.0
    import librosa  # noqa: PLC0415 - heavy; imported only when analysing

    ac = librosa.autocorrelate(x, max_size=x.size // 2 + 1) / energy
    period = float(np.median(np.diff(beat_frames)))
    return max(_ac_peak(ac, period), _ac_peak(ac, 2 * period), 0.0)


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
    return abs(_signed_parity(_peak_at(env, frames)))


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
    *,
    chord_contrast: float = 0.0,
    level_bpm: float | None = None,
    ambiguous: bool = False,
) -> TempoEstimate:
    """Refined tempo plus half/double alternatives scored by onsets on the alternative grid.

    With fewer than 8 beat periods (a loop of a few seconds) the tracked beats are too few to
    refine the tempo, and the pulse level's own tempo (``level_bpm``) is kept. ``ambiguous``
    is the level choice's verdict (:class:`TempoLevel`).
    """
    bpm = refine_tempo(beats_s)
    if level_bpm is not None and beats_s.size <= MIN_REFINE_SPANS:
        bpm = level_bpm
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
        ambiguous=ambiguous,
    )


def _signed_parity(values: Floats) -> float:
    """(even - odd) / the larger: +1 when only even beats carry it, -1 when only odd ones."""
    even, odd = float(np.mean(values[0::2])), float(np.mean(values[1::2]))
    return (even - odd) / (max(even, odd) + 1e-9)


def backbeat_doubt(low_onset_env: Floats, snare_onset_env: Floats, beat_frames: Ints) -> float:
    """Positive when kicks and snares land on the same parity of beats: the level is in doubt.

    At the level dancers count, the kick and the backbeat (snare, clap: the 1-6 kHz band)
    alternate, so their parities have opposite signs or one is even (four-on-the-floor). Both
    on the same beats means every second beat is missing (counted at double time) or every
    second beat falls between the tracked ones (half time).
    """
    if beat_frames.size < 4:
        return 0.0
    frames = beat_frames.astype(float)
    low, snare = _peak_at(low_onset_env, frames), _peak_at(snare_onset_env, frames)
    return _signed_parity(low) * _signed_parity(snare)


def _lag_correlation(x: Floats, lag: int) -> float:
    """Autocorrelation of a per-beat sequence at ``lag`` beats (mean removed, unbiased, 1 at 0)."""
    x = x - np.mean(x)
    energy = float(x @ x)
    if energy <= 1e-12 or x.size <= lag:
        return 0.0
    return float(x[:-lag] @ x[lag:]) / energy * x.size / (x.size - lag)


def meter_score(per_beat: Sequence[Floats]) -> float:
    """How much more the per-beat sequences repeat every 3 (and 6) beats than every 4 (and 8).

    A bar repeats its pattern of kicks, accents and chord changes: in 3/4 at lags 3 and 6, in
    4/4 at lags 4 and 8. Summed over the sequences given; positive leans to 3/4.
    """
    score = 0.0
    for x in per_beat:
        if x.size <= 8:
            continue
        three = (_lag_correlation(x, 3) + _lag_correlation(x, 6)) / 2
        four = (_lag_correlation(x, 4) + _lag_correlation(x, 8)) / 2
        score += three - four
    return score


def beats_per_bar(
    onset_env: Floats, low_onset_env: Floats, beat_frames: Ints, change: Floats
) -> tuple[int, float]:
    """3 or 4 beats to the bar, from the kicks, onsets and chord changes at each beat."""
    frames = beat_frames.astype(float)
    score = meter_score([_peak_at(low_onset_env, frames), _peak_at(onset_env, frames), change])
    return (3 if score >= TRIPLE_METER_THRESHOLD else 4), score


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


def groove_start(onset_env: Floats, beat_frames: Ints) -> int:
    """Index of the first beat whose onset reaches ``GROOVE_STRENGTH`` of the median beat's.

    Beats tracked through a pulse-free intro (ambient sound, a held chord) are weak; the music
    proper, and its first bar and 8-count, start at the first strong one.
    """
    if beat_frames.size == 0:
        return 0
    # Within 70 ms, as the beat F-measure counts a hit: the first frames' onsets are delayed.
    strength = _peak_at(onset_env, beat_frames.astype(float), radius=3)
    first = int(np.argmax(strength >= GROOVE_STRENGTH * float(np.median(strength))))
    # One weak beat is no intro: a hit at the very start of a file has no onset (no frame before).
    return first if first >= MIN_INTRO_BEATS else 0


def bar_phase(
    low_onset_env: Floats,
    beat_frames: Ints,
    change: Floats,
    beats_per_bar: int = 4,
    groove_beat: int = 0,
) -> tuple[int, float]:
    """The beat index of the first downbeat and a 0..1 confidence (margin over the runner-up).

    Count 1 carries the kick and a chord change (``change``: :func:`harmonic_change` per beat).
    Between phases these cues cannot tell apart (a drum loop without chords), the bar starts
    where the groove does (``groove_beat``: :func:`groove_start`).
    """
    if beat_frames.size < beats_per_bar:
        return 0, 0.0
    frames = beat_frames.astype(float)
    # A beat in the first frames has no onset to measure (flux needs a frame before it).
    measured = beat_frames >= EDGE_FRAMES
    phases = np.zeros(beats_per_bar)
    for cue in (_peak_at(low_onset_env, frames), change):
        phases += _phase_means(_zscore(cue), measured, beats_per_bar)
    spread = float(np.max(phases) - np.min(phases))
    start = groove_beat % beats_per_bar
    phases[start] += GROOVE_PHASE_BONUS * spread if spread > 0 else 1.0
    order = np.argsort(phases)[::-1]
    spread = float(phases[order[0]] - phases[order[-1]])
    margin = float(phases[order[0]] - phases[order[1]])
    return int(order[0]), (margin / spread if spread > 1e-9 else 0.0)


def _phase_means(score: Floats, measured: npt.NDArray[np.bool_], beats_per_bar: int) -> Floats:
    """A cue's mean z-score per bar phase, or zeros when the phases differ no more than noise.

    With ``n`` beats per phase, the phase means of a z-scored cue without any bar pattern spread
    about 1/sqrt(n); a cue whose spread stays under ``CUE_MIN_SPREAD`` times that (chord changes
    in a drum loop, a kick on every beat) does not vote.
    """
    means = np.array(
        [score[p::beats_per_bar][measured[p::beats_per_bar]].mean() for p in range(beats_per_bar)]
    )
    per_phase = max(1, int(measured.sum()) // beats_per_bar)
    if float(np.max(means) - np.min(means)) < CUE_MIN_SPREAD / np.sqrt(per_phase):
        return np.zeros(beats_per_bar)
    return means
