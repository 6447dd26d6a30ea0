"""Rhythm embedding: how the motion sits on the beat, from the move's tempo and joint speeds.

Recipe (space ``rhythm-v1-32``): the joint-speed curve (pelvis-centred and scale-normalised, plus
the pelvis's own travel) gives an onset envelope (rises in speed = accents). Four 8-value blocks:
its autocorrelation at lags of 1/4..4 beats (periodicity relative to the beat), where accents fall
inside the beat (8 phase bins, minus uniform), accents per count of the 8-count (minus their mean)
and globals (tempo on a log scale, motion energy, on-beat alignment). Weighted, L2-normalised.
"""

from __future__ import annotations

import numpy as np

from choreography.moves.skeleton import NUM_JOINTS, PELVIS, Keypoints
from choreography.search.spaces import Embedding, l2_normalise
from schemas.errors import InvalidInput

RHYTHM_SPACE = "rhythm-v1-32"
_LAGS_IN_BEATS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
_PHASE_BINS = 8
_COUNTS_PER_PHRASE = 8
_BLOCK_WEIGHTS = (0.3, 0.25, 0.25, 0.2)  # periodicity, phase, counts, globals


def embed_rhythm(keypoints: Keypoints, fps: float, tempo_bpm: float) -> Embedding:
    """Rhythm embedding of a move from its keypoints, their fps and the move's tempo."""
    if not (tempo_bpm > 0 and np.isfinite(tempo_bpm)):
        raise InvalidInput(f"tempo_bpm: must be a positive number, got {tempo_bpm!r}")
    points = np.asarray(keypoints, dtype=np.float64)
    if points.ndim != 3 or points.shape[1:] != (NUM_JOINTS, 3) or points.shape[0] < 1:
        raise InvalidInput(
            f"keypoints: expected shape (frames>=1, {NUM_JOINTS}, 3), got {points.shape}"
        )
    if not (fps > 0 and np.isfinite(fps)):
        raise InvalidInput(f"fps: must be a positive number, got {fps!r}")
    speed = joint_speed(points, fps)
    envelope = onset_envelope(speed)
    beat_frames = fps * 60.0 / tempo_bpm
    blocks = (
        _periodicity(envelope, beat_frames),
        _phase_profile(envelope, beat_frames),
        _count_profile(envelope, beat_frames),
        _globals(speed, envelope, beat_frames, tempo_bpm),
    )
    features = np.concatenate([b * w for b, w in zip(blocks, _BLOCK_WEIGHTS, strict=True)])
    return Embedding("rhythm", RHYTHM_SPACE, l2_normalise(features, "rhythm embedding"))


def joint_speed(points: np.ndarray, fps: float) -> np.ndarray:
    """Mean joint speed per frame (body scales per second), lightly smoothed; length = frames."""
    if points.shape[0] < 2:
        return np.zeros(points.shape[0])
    centred = points - points[:, PELVIS : PELVIS + 1, :]
    scale = float(np.sqrt(np.mean(np.sum(centred**2, axis=-1)))) or 1.0
    # Joints relative to the pelvis, and the pelvis itself in the world: steps count as motion.
    relative = np.linalg.norm(np.diff(centred, axis=0), axis=-1).mean(axis=1)
    travel = np.linalg.norm(np.diff(points[:, PELVIS, :], axis=0), axis=-1)
    speed = (relative + travel) * fps / scale
    speed = np.concatenate([speed[:1], speed])
    kernel = np.ones(3) / 3.0
    smoothed: np.ndarray = np.convolve(np.pad(speed, 1, mode="edge"), kernel, mode="valid")
    return smoothed


def onset_envelope(speed: np.ndarray) -> np.ndarray:
    """Half-wave rectified rise of the speed curve: where the motion accents."""
    if speed.shape[0] < 2:
        return np.zeros_like(speed)
    envelope: np.ndarray = np.maximum(0.0, np.diff(speed, prepend=speed[0]))
    return envelope


def _periodicity(envelope: np.ndarray, beat_frames: float) -> np.ndarray:
    centred = envelope - envelope.mean()
    energy = float(np.dot(centred, centred))
    out = np.zeros(len(_LAGS_IN_BEATS))
    if energy == 0.0:
        return out
    for i, lag_beats in enumerate(_LAGS_IN_BEATS):
        lag = lag_beats * beat_frames
        low = int(np.floor(lag))
        if low + 1 >= centred.shape[0]:
            continue
        frac = lag - low
        at_low = float(np.dot(centred[: -low or None], centred[low:])) if low else energy
        at_high = float(np.dot(centred[: -(low + 1)], centred[low + 1 :]))
        out[i] = ((1 - frac) * at_low + frac * at_high) / energy
    return out


def _phase_profile(envelope: np.ndarray, beat_frames: float) -> np.ndarray:
    total = float(envelope.sum())
    if total == 0.0:
        return np.zeros(_PHASE_BINS)
    phase = (np.arange(envelope.shape[0]) / beat_frames) % 1.0
    bins = np.minimum((phase * _PHASE_BINS).astype(int), _PHASE_BINS - 1)
    mass = np.bincount(bins, weights=envelope, minlength=_PHASE_BINS) / total
    profile: np.ndarray = mass - 1.0 / _PHASE_BINS
    return profile


def _count_profile(envelope: np.ndarray, beat_frames: float) -> np.ndarray:
    count = (np.arange(envelope.shape[0]) / beat_frames).astype(int) % _COUNTS_PER_PHRASE
    mass = np.bincount(count, weights=envelope, minlength=_COUNTS_PER_PHRASE)
    frames = np.bincount(count, minlength=_COUNTS_PER_PHRASE)
    present = frames > 0
    per_frame = np.zeros(_COUNTS_PER_PHRASE)
    per_frame[present] = mass[present] / frames[present]
    peak = float(per_frame.max())
    if peak == 0.0:
        return per_frame
    # Relative accents: counts absent from a short move stay at zero.
    per_frame[present] = (per_frame[present] - per_frame[present].mean()) / peak
    return per_frame


def _globals(
    speed: np.ndarray, envelope: np.ndarray, beat_frames: float, tempo_bpm: float
) -> np.ndarray:
    octave = np.log2(tempo_bpm / 120.0)
    mean_speed = float(speed.mean())
    variation = float(speed.std() / mean_speed) if mean_speed > 0 else 0.0
    total = float(envelope.sum())
    angle = 2 * np.pi * np.arange(envelope.shape[0]) / beat_frames
    on_beat = float(np.dot(envelope, np.cos(angle)) / total) if total else 0.0
    off_beat = float(np.dot(envelope, np.sin(angle)) / total) if total else 0.0
    return np.array(
        [
            octave,
            np.sin(2 * np.pi * octave),
            np.cos(2 * np.pi * octave),
            np.tanh(mean_speed / 2.0),
            np.tanh(variation),
            on_beat,
            off_beat,
            np.tanh(total / max(1.0, envelope.shape[0] / beat_frames)),
        ]
    )
