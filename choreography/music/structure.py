"""Pure functions over beat grids: 8-count phrases, section snapping, energy levels, labels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from choreography.music.model import EnergyLevel, Phrase

COUNTS_PER_PHRASE = 8
PRIME = "\u2032"  # marks a varied repeat: A, then A\u2032
Floats = npt.NDArray[np.float64]


def build_phrases(
    beats_s: Sequence[float], first_phrase_beat: int, duration_s: float
) -> list[Phrase]:
    """Complete 8-counts from beat ``first_phrase_beat`` on; a trailing partial one is dropped."""
    beats = np.asarray(beats_s, dtype=float)
    if beats.size < 2 or first_phrase_beat < 0:
        return []
    ibi = float(np.median(np.diff(beats)))
    phrases: list[Phrase] = []
    for first in range(first_phrase_beat, beats.size - COUNTS_PER_PHRASE + 1, COUNTS_PER_PHRASE):
        last = first + COUNTS_PER_PHRASE
        # The phrase ends where count 1 of the next phrase falls (one beat after count 8).
        end = float(beats[last]) if last < beats.size else float(beats[last - 1]) + ibi
        if end > duration_s + 1e-6:
            break
        phrases.append(
            Phrase(index=len(phrases), start_s=float(beats[first]), end_s=end, first_beat=first)
        )
    return phrases


def snap_boundaries(boundaries_s: Sequence[float], phrase_starts_s: Sequence[float]) -> list[int]:
    """Indices of the phrase starts nearest to each boundary, sorted, without duplicates."""
    starts = np.asarray(phrase_starts_s, dtype=float)
    if starts.size == 0:
        return []
    snapped = {int(np.argmin(np.abs(starts - b))) for b in boundaries_s}
    return sorted(snapped)


def normalise(values: Sequence[float] | Floats, low_pct: float = 5, high_pct: float = 95) -> Floats:
    """Map values to 0..1 between two percentiles (robust to a few outliers), clipped."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return arr
    lo, hi = np.percentile(arr, [low_pct, high_pct])
    if hi - lo < 1e-9:
        return np.full(arr.shape, 0.5)
    return np.asarray(np.clip((arr - lo) / (hi - lo), 0.0, 1.0), dtype=float)


def energy_level(energy: float) -> EnergyLevel:
    """Low, medium or high for a 0..1 energy value (thirds of the song's own range)."""
    if energy < 1 / 3:
        return "low"
    if energy < 2 / 3:
        return "medium"
    return "high"


def section_labels(repeat_of: Sequence[int | None], varied: Sequence[bool]) -> list[str]:
    """Letters A, B, C... per section; a repeat takes its original's letter, primed when varied."""
    labels: list[str] = []
    next_letter = 0
    for i, original in enumerate(repeat_of):
        if original is None:
            labels.append(_letter(next_letter))
            next_letter += 1
        else:
            base = labels[original].rstrip(PRIME)
            labels.append(base + (PRIME if varied[i] else ""))
    return labels


def _letter(n: int) -> str:
    """A..Z, then AA, AB... for songs with very many distinct sections."""
    letters = ""
    n += 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return letters
