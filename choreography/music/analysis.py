"""Analyse a song file or samples into a :class:`MusicAnalysis` (librosa imported lazily)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from choreography.music import beats as beat_grid
from choreography.music import sections as structure_finder
from choreography.music.audio_decode import decode_song
from choreography.music.model import MusicAnalysis, MusicSection, Phrase
from choreography.music.structure import (
    COUNTS_PER_PHRASE,
    build_phrases,
    energy_level,
    normalise,
    section_labels,
    snap_boundaries,
)
from choreography.music.style_count import counted_twice
from schemas.errors import InvalidInput
from schemas.song_limits import DEFAULT_MAX_SONG_SECONDS

Floats = npt.NDArray[np.float64]
Samples = npt.NDArray[np.float32]
Frames = npt.NDArray[np.floating[Any]]
"""Per-frame features: float32 from the spectrogram, float64 once synced to beats."""

# 22050 Hz keeps hi-hats (up to 11 kHz), which the beat tracker needs on syncopated material;
# 11025 Hz lost up to 8 points of beat F-measure there for a small speed gain (see the doc).
SAMPLE_RATE = 22050
HOP = 512
N_FFT = 2048
MIN_DURATION_S = 3.0
MIN_BEATS = 4
# Onsets at the beats vs anywhere: a tone or noise scores 1.03-1.08, the real songs in the
# corpus 1.27-2.4 and synthesized songs 1.7-3.4 (docs/MUSIC_ANALYSIS.md).
MIN_PULSE_CLARITY = 1.15
# Or the onsets repeat at the beat period at least this much (beats.pulse_periodicity): white
# noise 0.09-0.14 (3-30 s), the corpus songs 0.12-0.53 (the Hungarian Dance's rubato 0.12), the
# benchmark's grooves 0.48-0.95 (docs/MUSIC_ANALYSIS.md). It only admits
# grooves whose clarity falls short (swing, its off-beats as busy as its beats: 1.12-1.15).
MIN_PULSE_PERIODICITY = 0.3
# ... when there are onsets at all: mean onset strength (dB of mel flux per frame; gain does not
# change it) of at least this. A steady tone's ripple repeats (periodicity 0.96 at 220 Hz) at
# 0.0005-0.016; music and noise measure 0.8-1.5.
MIN_ONSET_STRENGTH = 0.1
# A song of fewer tracked beats than this is kept only when its onsets also repeat at the beat
# period (periodicity at least SHORT_MIN_PERIODICITY): on a few beats noise reaches the pulse
# clarity line by chance (white, pink and brown noise, 40 clips each: 3 s 45-83 % of clips,
# 5 s 30-53 %, 10 s 0-10 %, 15 s and longer none; the clips that pass track 4-15 beats), and
# its periodicity stays at most 0.16, where the short real loops and excerpts kept measure
# 0.23-0.61 (the corpus trumpet, 5 beats: 0.23-0.25; the benchmark's grooves cut to 3-10 s:
# 0.32-0.95) (docs/MUSIC_ANALYSIS.md, "Short clips").
SHORT_SONG_BEATS = 24
SHORT_MIN_PERIODICITY = 0.2
SILENCE_RMS = 1e-4  # about -80 dBFS: below this everywhere, there is nothing to dance to
LOW_ONSET_HZ = 160.0  # kick drum and bass fundamentals
# The kick band's onsets are measured in dB floored this far below the band's loudest bin, so
# a note out of near-silence (a bass note after a rest) rises at most this much and does not
# outweigh a kick struck over a bass still sounding. On the analysis benchmark 25 dB puts
# bachata's beats on its kick; 20 dB loses drum and bass, 30 dB bachata without its bass
# (docs/MUSIC_ANALYSIS.md, "The kick band").
KICK_FLOOR_DB = 25.0
# The onset envelopes the beats are tracked on peak this long after the sound starts: a flux
# against the frame 2 hops back (SuperFlux) and the kick band, on centred 2048-sample frames.
# Measured on kicks (tests/unit/test_beat_delay.py: 36-40 ms) and on the analysis benchmark
# (every beat 36-50 ms late, median 42 ms); beat times are moved this much earlier.
BEAT_DELAY_S = 0.040
SNARE_ONSET_HZ = (1000.0, 6000.0)  # snare and clap noise, above most chord and bass partials
# SuperFlux (Boeck & Widmer 2013; librosa's documented recipe): flux against the frame 2 hops back,
# after a 3-band maximum filter across mel bands, so vibrato and slides on soft melodic notes
# do not read as onsets. Used only to track beats (docs/MUSIC_ANALYSIS.md).
SUPERFLUX_LAG = 2
SUPERFLUX_MAX_SIZE = 3
BEATS_PER_BAR = 4
"""The meter choreo plans in: 8-counts are two bars of 4/4."""
FEATURE_BLOCK_FRAMES = 512
"""STFT frames computed (and their pitch peaks tracked) at a time: 12 s of audio, 2 MB of power."""


@dataclass(frozen=True)
class _Features:
    onset: Frames
    beat_onset: Frames
    low_onset: Frames
    kick_onset: Frames
    """The kick and bass band floored ``KICK_FLOOR_DB`` below its loudest bin in the song: where
    the beats are tracked, and the bar phase, meter and half-tempo alternative read, from; the
    re-count's second reading of the kick (``beats._Envelopes.least_doubt``)."""
    snare_onset: Frames
    chroma: Frames
    mfcc: Frames
    rms: Frames


def analyse_file(
    path: str | Path, *, max_seconds: float = DEFAULT_MAX_SONG_SECONDS
) -> MusicAnalysis:
    """Decode a song (mono, 22050 Hz, float32) and analyse it.

    Undecodable files, files in a format off the allow-list and songs longer than
    ``max_seconds`` (``MAX_SONG_SECONDS``) raise InvalidInput (see ``audio_decode``).
    """
    song = Path(path)
    if not song.is_file():
        raise InvalidInput(f"song file {song} does not exist or is not a file")
    y = decode_song(song, sample_rate=SAMPLE_RATE, max_seconds=max_seconds)
    return analyse_samples(y, SAMPLE_RATE, source=str(song))


def analyse_samples(y: npt.ArrayLike, sr: int, source: str = "samples") -> MusicAnalysis:
    """Analyse mono (or channels-first multi-channel) samples at any sample rate (as float32)."""
    import librosa  # noqa: PLC0415 - heavy; keeps importing the model cheap

    audio = _checked_audio(y, sr, source)
    if sr != SAMPLE_RATE:
        audio = librosa.resample(audio, orig_sr=sr, target_sr=SAMPLE_RATE).astype(np.float32)
    duration = audio.size / SAMPLE_RATE
    feats = _features(audio)
    frames, level = beat_grid.track_beats(
        feats.beat_onset,
        feats.low_onset,
        feats.snare_onset,
        feats.rms,
        sr=SAMPLE_RATE,
        hop=HOP,
        plain_onset_env=feats.onset,
        kick_onset_env=feats.kick_onset,
    )
    if frames.size < MIN_BEATS:
        raise InvalidInput(
            f"{source}: only {frames.size} beats detected (need {MIN_BEATS}); no steady pulse"
        )
    tracked = frames[0::2] if level is not None and level.subdivided else frames
    clarity = beat_grid.pulse_clarity(feats.onset, tracked)
    if clarity < MIN_PULSE_CLARITY:
        strength = float(np.mean(feats.onset))
        if strength < MIN_ONSET_STRENGTH:  # a steady sound: its ripple may repeat, but is no beat
            why = f"there are hardly any onsets: mean onset strength {strength:.3f}"
            raise _no_pulse(source, clarity, why, MIN_ONSET_STRENGTH)
        periodicity = beat_grid.pulse_periodicity(feats.onset, tracked)
        if periodicity < MIN_PULSE_PERIODICITY:
            why = f"the onsets barely repeat at the beat period: periodicity {periodicity:.2f}"
            raise _no_pulse(source, clarity, why, MIN_PULSE_PERIODICITY)
    elif tracked.size < SHORT_SONG_BEATS:
        periodicity = beat_grid.pulse_periodicity(feats.onset, tracked)
        if periodicity < SHORT_MIN_PERIODICITY:
            raise InvalidInput(
                f"{source}: no steady pulse to dance to (only {tracked.size} beats, fewer than "
                f"{SHORT_SONG_BEATS}, and their onsets barely repeat at the beat period: "
                f"periodicity {periodicity:.2f} < {SHORT_MIN_PERIODICITY}; on so few beats "
                "noise can look like a pulse, so a short clip must repeat)"
            )
    analysis = _on_grid(feats, frames, level, duration)
    if (
        level is not None
        and analysis.beats_per_bar == BEATS_PER_BAR
        and counted_twice(analysis.tempo_bpm)
    ):
        twice = replace(
            level,
            bpm=2 * level.bpm,
            reason=f"{level.reason}; counted twice as fast for a style counted at that level",
        )
        double = _on_grid(feats, beat_grid.subdivided(frames), twice, duration, BEATS_PER_BAR)
        analysis = analysis.model_copy(update={"double_time": double})
    return analysis


def _on_grid(
    feats: _Features,
    frames: npt.NDArray[np.intp],
    level: beat_grid.TempoLevel | None,
    duration: float,
    per_bar: int | None = None,
) -> MusicAnalysis:
    """The analysis of the song counted on the beats ``frames`` (``per_bar`` to a bar, or the
    meter found in them)."""
    beats_s = beat_times(frames)
    beat_chroma = _beat_sync(feats.chroma, frames)
    change = beat_grid.harmonic_change(beat_chroma)
    if per_bar is None:
        per_bar, _ = beat_grid.beats_per_bar(feats.onset, feats.kick_onset, frames, change)
    groove = beat_grid.groove_start(feats.onset, frames)
    phase, phase_conf = beat_grid.bar_phase(feats.kick_onset, frames, change, per_bar, groove)
    chord_contrast = beat_grid.bar_change_contrast(change, phase, per_bar)
    tempo = beat_grid.estimate_tempo(
        feats.onset,
        feats.kick_onset,
        frames,
        beats_s,
        chord_contrast=chord_contrast,
        level_bpm=level.bpm if level else None,
        ambiguous=bool(level and level.ambiguous),
    )
    beat_mfcc = _beat_sync(feats.mfcc, frames)
    energy = _beat_energy(feats, frames)
    if per_bar == BEATS_PER_BAR:
        novelty = structure_finder.bar_novelty(beat_mfcc, phase, BEATS_PER_BAR)
        bars = structure_finder.boundary_bars(novelty)
        # MusicSection changes start 8-counts, so they decide which bar of each pair is count 1.
        parity = structure_finder.phrase_parity(
            bars,
            novelty,
            groove_bar=_bars_until(groove, phase),
        )
        phrases = build_phrases(beats_s.tolist(), phase + BEATS_PER_BAR * parity, duration)
        boundary_times = [float(beats_s[phase + BEATS_PER_BAR * b]) for b in bars]
    else:
        # Never forced into 8-counts: a 3/4 song has bars but no phrases (the planner refuses).
        phrases, boundary_times = [], []
    sections = _sections(
        beat_chroma=beat_chroma,
        beat_mfcc=beat_mfcc,
        energy=energy,
        phrases=phrases,
        boundary_times=boundary_times,
        duration=duration,
    )
    return MusicAnalysis(
        duration_s=duration,
        sample_rate=SAMPLE_RATE,
        tempo_bpm=tempo.bpm,
        tempo_confidence=tempo.confidence,
        tempo_alternatives=tempo.alternatives,
        octave_ambiguous=tempo.ambiguous,
        tempo_level=_level_reason(level, tempo.bpm, tempo.ambiguous),
        beats_per_bar=per_bar,
        beats_s=beats_s.tolist(),
        downbeats_s=beats_s[phase::per_bar].tolist(),
        bar_phase=phase,
        downbeat_confidence=phase_conf,
        phrases=phrases,
        sections=sections,
        energy_per_beat=energy.tolist(),
        energy_per_phrase=[
            float(energy[p.first_beat : p.first_beat + COUNTS_PER_PHRASE].mean()) for p in phrases
        ],
    )


def _no_pulse(source: str, clarity: float, why: str, minimum: float) -> InvalidInput:
    """The refusal of a song whose beats barely stand out, and why no other measure saved it."""
    return InvalidInput(
        f"{source}: no steady pulse to dance to (beats barely stand out: pulse clarity "
        f"{clarity:.2f} < {MIN_PULSE_CLARITY}, and {why} < {minimum})"
    )


def beat_times(frames: npt.NDArray[np.intp]) -> Floats:
    """Seconds of beat frames, less the onset envelopes' delay (``BEAT_DELAY_S``), never < 0."""
    import librosa  # noqa: PLC0415 - heavy; keeps importing the model cheap

    seconds = librosa.frames_to_time(frames, sr=SAMPLE_RATE, hop_length=HOP) - BEAT_DELAY_S
    return np.asarray(np.maximum(seconds, 0.0), dtype=float)


def _bars_until(beat: int, phase: int) -> int:
    """Index (from the first downbeat) of the first bar starting at or after ``beat``."""
    return max(0, -(-(beat - phase) // BEATS_PER_BAR))


def _level_reason(level: beat_grid.TempoLevel | None, bpm: float, ambiguous: bool) -> str:
    """Which level of the pulse was chosen as the counted beat, and why (kept in the blueprint)."""
    reason = level.reason if level else "no pulse family found"
    if level and abs(np.log2(bpm / level.bpm)) > 0.5:
        octave = "twice" if bpm > level.bpm else "half"
        reason += f"; the tracked beats settled at {octave} that level ({level.bpm:.1f} BPM)"
    verdict = (
        "octave ambiguous" if ambiguous else "not octave ambiguous (kicks and backbeats agree)"
    )
    return f"{bpm:.1f} BPM: {reason}; {verdict}"


def _checked_audio(y: npt.ArrayLike, sr: int, source: str) -> Samples:
    """Mono float32 samples (no copy of float32 input), or InvalidInput naming what is wrong."""
    audio = np.asarray(y, dtype=np.float32)
    if sr <= 0:
        raise InvalidInput(f"{source}: sample rate must be positive, got {sr}")
    if audio.ndim == 2:
        audio = audio.mean(axis=0)  # channels first, as librosa returns them
    if audio.ndim != 1:
        raise InvalidInput(f"{source}: samples must be 1-D (mono) or 2-D (channels, samples)")
    if not np.all(np.isfinite(audio)):
        raise InvalidInput(f"{source}: samples contain NaN or infinite values")
    if audio.size / sr < MIN_DURATION_S:
        raise InvalidInput(
            f"{source}: audio is {audio.size / sr:.2f} s long; need at least {MIN_DURATION_S} s"
        )
    if float(np.sqrt(np.dot(audio, audio) / audio.size)) < SILENCE_RMS:
        raise InvalidInput(f"{source}: audio is silent (RMS below {SILENCE_RMS})")
    return audio


def _features(audio: Samples) -> _Features:
    """One STFT, and from it the onset envelopes, chroma, MFCC and loudness per frame."""
    import librosa  # noqa: PLC0415 - heavy; keeps importing the model cheap

    mel, rms, chroma = _spectral_features(audio)
    mel_db = librosa.power_to_db(mel)
    centres = librosa.mel_frequencies(n_mels=mel_db.shape[0] + 2)[1:-1]
    low_bins = int(np.sum(centres < LOW_ONSET_HZ))
    snare_bins = (centres >= SNARE_ONSET_HZ[0]) & (centres < SNARE_ONSET_HZ[1])
    return _Features(
        onset=librosa.onset.onset_strength(S=mel_db, sr=SAMPLE_RATE),
        beat_onset=librosa.onset.onset_strength(
            S=mel_db, sr=SAMPLE_RATE, lag=SUPERFLUX_LAG, max_size=SUPERFLUX_MAX_SIZE
        ),
        low_onset=librosa.onset.onset_strength(S=mel_db[: max(low_bins, 2)], sr=SAMPLE_RATE),
        kick_onset=librosa.onset.onset_strength(
            S=librosa.power_to_db(mel[: max(low_bins, 2)], ref=np.max, top_db=KICK_FLOOR_DB),
            sr=SAMPLE_RATE,
        ),
        snare_onset=librosa.onset.onset_strength(S=mel_db[snare_bins], sr=SAMPLE_RATE),
        chroma=chroma,
        mfcc=librosa.feature.mfcc(S=mel_db, n_mfcc=13),
        rms=rms,
    )


def _spectral_features(audio: Samples) -> tuple[Samples, Samples, Samples]:
    """Mel power spectrogram, RMS and chroma per frame, as librosa's whole-song calls give them
    (``stft`` centred and zero padded, ``melspectrogram``, ``rms``, ``chroma_stft`` tuned by
    ``estimate_tuning``), a block of STFT frames at a time.

    The full power spectrogram (1025 rows of float32 per frame, 10.6 MB a minute) is never held:
    every one of these works frame by frame, except chroma's tuning, which needs the pitch peaks
    of the whole song first. So a first pass keeps mel, RMS and the peaks, a second computes the
    STFT again for chroma. Memory is the audio, 141 float32 rows per frame and one block.
    """
    import librosa  # noqa: PLC0415 - heavy; keeps importing the model cheap

    frames = 1 + audio.size // HOP
    mel = np.empty((128, frames), dtype=np.float32)
    rms = np.empty(frames, dtype=np.float32)
    pitches, magnitudes = [], []
    for first, last, power in _power_blocks(audio, frames):
        mel[:, first:last] = librosa.feature.melspectrogram(S=power, sr=SAMPLE_RATE)
        rms[first:last] = librosa.feature.rms(S=np.sqrt(power), frame_length=N_FFT)[0]
        pitch, magnitude = librosa.piptrack(S=power, sr=SAMPLE_RATE)
        found = pitch > 0
        pitches.append(pitch[found])
        magnitudes.append(magnitude[found])
    # estimate_tuning: the pitches whose peak reaches the median peak, per 1/100 of a bin.
    pitch, magnitude = np.concatenate(pitches), np.concatenate(magnitudes)
    threshold = np.median(magnitude) if magnitude.size else 0.0
    tuning = librosa.pitch_tuning(pitch[magnitude >= threshold], resolution=0.01,
                                  bins_per_octave=12)  # fmt: skip
    chroma = np.empty((12, frames), dtype=np.float32)
    for first, last, power in _power_blocks(audio, frames):
        chroma[:, first:last] = librosa.feature.chroma_stft(S=power, sr=SAMPLE_RATE, tuning=tuning)
    return mel, rms, chroma


def _power_blocks(audio: Samples, frames: int) -> Iterator[tuple[int, int, Samples]]:
    """(first frame, end frame, power spectrogram of those frames), block by block."""
    import librosa  # noqa: PLC0415 - heavy; keeps importing the model cheap

    half = N_FFT // 2
    for first in range(0, frames, FEATURE_BLOCK_FRAMES):
        last = min(first + FEATURE_BLOCK_FRAMES, frames)
        start, stop = first * HOP - half, (last - 1) * HOP + half
        segment = audio[max(start, 0) : min(stop, audio.size)]
        segment = np.pad(segment, (max(0, -start), max(0, stop - audio.size)))
        spectrum = librosa.stft(segment, n_fft=N_FFT, hop_length=HOP, center=False)
        yield first, last, np.abs(spectrum) ** 2


def _beat_sync(feature: Frames, frames: npt.NDArray[np.intp]) -> Floats:
    """Mean of a (dims, frames) feature over each beat (column k covers beat k to beat k+1)."""
    import librosa  # noqa: PLC0415 - heavy; keeps importing the model cheap

    # Boundaries are the beats plus the end; padding with frame 0 instead would merge a beat
    # that falls on frame 0 and leave one column short.
    bounds = [*frames.tolist(), feature.shape[1]]
    synced = librosa.util.sync(feature, bounds, aggregate=np.mean, pad=False)
    return np.asarray(synced, dtype=float)


def _beat_energy(feats: _Features, frames: npt.NDArray[np.intp]) -> Floats:
    """Per-beat energy 0..1: loudness (dB) and onset density, each normalised, averaged."""
    loud = 20 * np.log10(_beat_sync(feats.rms[None, :], frames)[0] + 1e-6)
    busy = _beat_sync(feats.onset[None, :], frames)[0]
    return np.asarray(normalise((normalise(loud) + normalise(busy)) / 2, 0, 100))


def _sections(
    *,
    beat_chroma: Floats,
    beat_mfcc: Floats,
    energy: Floats,
    phrases: list[Phrase],
    boundary_times: list[float],
    duration: float,
) -> list[MusicSection]:
    """Sections over the whole song; interior boundaries are snapped to phrase starts."""
    first_beats = [p.first_beat for p in phrases]
    if len(phrases) < 2:
        spans = [structure_finder.SectionSpan(0, len(phrases), None, 0.0, False)]
    else:
        starts = [p.start_s for p in phrases]
        cuts = [i for i in snap_boundaries(boundary_times, starts) if i > 0]
        sim = structure_finder.phrase_similarity(beat_chroma, beat_mfcc, first_beats)
        spans = structure_finder.label_repeats(sim, cuts)
    labels = section_labels([s.repeat_of for s in spans], [s.varied for s in spans])
    out: list[MusicSection] = []
    for i, span in enumerate(spans):
        start = 0.0 if i == 0 else phrases[span.first_phrase].start_s
        end = duration if i == len(spans) - 1 else phrases[spans[i + 1].first_phrase].start_s
        beat_lo = first_beats[span.first_phrase] if phrases and i > 0 else 0
        last = span.first_phrase + span.phrase_count - 1
        beat_hi = first_beats[last] + COUNTS_PER_PHRASE if phrases and span.phrase_count else None
        level = float(np.mean(energy[beat_lo:beat_hi])) if energy.size else 0.0
        out.append(
            MusicSection(
                index=i,
                start_s=start,
                end_s=end,
                first_phrase=span.first_phrase,
                phrase_count=span.phrase_count,
                label=labels[i],
                repeat_of=span.repeat_of,
                repeat_similarity=span.similarity,
                energy=level,
                energy_level=energy_level(level),
            )
        )
    return out
