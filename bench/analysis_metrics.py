"""Scores of a music analysis against exact truth, as ``bench/analysis.py`` reports them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

WINDOW_S = 0.07  # mir_eval's beat F-measure window
TEMPO_TOLERANCE = 0.02
TRIM_S = 5.0  # mir_eval.beat.evaluate ignores beats before 5 s


def f_measure(reference_s: Sequence[float], estimate_s: Sequence[float]) -> float:
    """mir_eval's beat F-measure (70 ms window) after its standard trim of events before 5 s.

    Used for beats and, on the downbeats alone, for downbeats.
    """
    import mir_eval  # noqa: PLC0415 - a dev dependency; the bench only

    ref = mir_eval.beat.trim_beats(np.asarray(reference_s, dtype=float), TRIM_S)
    est = mir_eval.beat.trim_beats(np.asarray(estimate_s, dtype=float), TRIM_S)
    return float(mir_eval.beat.f_measure(ref, est, WINDOW_S))


def beat_offset_ms(reference_s: Sequence[float], estimate_s: Sequence[float]) -> float | None:
    """Median signed offset (ms, positive: late) of the estimated beats within the F-measure
    window of a true beat, after the same 5 s trim; None when none is that close.

    The F-measure counts a beat 69 ms late as a hit; a dancer sees a cut 40 ms late (more than
    a frame at 30 fps), so the offset is reported beside it.
    """
    import mir_eval  # noqa: PLC0415 - a dev dependency; the bench only

    ref = mir_eval.beat.trim_beats(np.asarray(reference_s, dtype=float), TRIM_S)
    est = mir_eval.beat.trim_beats(np.asarray(estimate_s, dtype=float), TRIM_S)
    if ref.size == 0 or est.size == 0:
        return None
    nearest = ref[np.abs(est[:, None] - ref[None, :]).argmin(axis=1)]
    offsets = est - nearest
    hits = offsets[np.abs(offsets) <= WINDOW_S]
    return float(np.median(hits) * 1000) if hits.size else None


def _near(value: float, target: float) -> bool:
    return abs(value / target - 1.0) <= TEMPO_TOLERANCE


def tempo_correct(true_bpm: float, estimate_bpm: float, flagged: Sequence[float]) -> bool:
    """Within 2 %, or off by exactly an octave with the true tempo among ``flagged``.

    ``flagged`` is the alternatives of an analysis that says its octave is ambiguous
    (``octave_ambiguous``), and empty otherwise: every analysis lists a half and a double
    alternative, so listing alone would excuse every octave error.
    """
    if _near(estimate_bpm, true_bpm):
        return True
    octave = _near(estimate_bpm, 2 * true_bpm) or _near(estimate_bpm, true_bpm / 2)
    return octave and any(_near(alt, true_bpm) for alt in flagged)


def phrase_phase_accuracy(
    true_starts_s: Sequence[float], estimate_starts_s: Sequence[float]
) -> float | None:
    """Share of the estimated 8-count starts within 70 ms of a true 8-count start.

    Only estimates inside the truth's span count (an intro before the groove has no 8-counts).
    None when the truth has no 8-counts (a 3/4 song); 0.0 when none was estimated there.
    """
    truth = np.asarray(true_starts_s, dtype=float)
    if truth.size == 0:
        return None
    est = np.asarray(estimate_starts_s, dtype=float)
    est = est[(est >= truth[0] - WINDOW_S) & (est <= truth[-1] + WINDOW_S)]
    if est.size == 0:
        return 0.0
    hits = np.min(np.abs(est[:, None] - truth[None, :]), axis=1) <= WINDOW_S
    return float(np.mean(hits))
