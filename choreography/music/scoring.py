"""Accuracy measures against ground truth, used by the tests and the accuracy table in the docs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from choreography.music.model import MusicAnalysis


def beat_f_measure(reference_s: Sequence[float], estimate_s: Sequence[float]) -> float:
    """mir_eval's beat F-measure (70 ms window) after its standard trim of beats before 5 s."""
    import mir_eval  # noqa: PLC0415 - a dev/test dependency, not needed to analyse songs

    ref = mir_eval.beat.trim_beats(np.asarray(reference_s, dtype=float))
    est = mir_eval.beat.trim_beats(np.asarray(estimate_s, dtype=float))
    return float(mir_eval.beat.f_measure(ref, est))


def beats_at_alternative(analysis: MusicAnalysis, kind: str) -> list[float]:
    """Beats at an octave alternative: every other beat (half) or with midpoints added (double)."""
    beats = np.asarray(analysis.beats_s, dtype=float)
    if kind == "half":
        # Either parity could be the real beat; the stronger one is at the downbeat parity.
        return [float(b) for b in beats[analysis.bar_phase % 2 :: 2]]
    mids = (beats[:-1] + beats[1:]) / 2
    return [float(b) for b in np.sort(np.concatenate([beats, mids]))]


def downbeat_phase_correct(analysis: MusicAnalysis, true_downbeats_s: Sequence[float]) -> bool:
    """True when most estimated downbeats lie within 70 ms of a true downbeat."""
    truth = np.asarray(true_downbeats_s, dtype=float)
    est = np.asarray(analysis.downbeats_s, dtype=float)
    est = est[(est >= truth.min() - 0.07) & (est <= truth.max() + 0.07)]
    if est.size == 0:
        return False
    hits = np.min(np.abs(est[:, None] - truth[None, :]), axis=1) <= 0.07
    return bool(np.mean(hits) > 0.5)
