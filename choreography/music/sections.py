"""Sections: boundaries from bar-level novelty, repeats from phrase-by-phrase self-similarity.

Boundaries: each bar becomes its mean MFCC vector (timbre and loudness); the novelty at a bar
line is the distance between the mean of the bars before and after it. Means over several bars
are steady inside a section even while its chords cycle, and jump where the instrumentation or
the loudness changes. Repeats: each 8-count phrase becomes its eight beat
chroma columns in order plus its mean MFCC; a section repeats an earlier one when their phrases
match one for one.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from choreography.music.structure import COUNTS_PER_PHRASE

Floats = npt.NDArray[np.float64]

WINDOW_BARS = 4  # novelty compares the 4 bars before a bar line with the 4 after it
MIN_SECTION_BARS = 4  # sections are at least two 8-counts long
REPEAT_THRESHOLD = 0.6  # aligned phrase similarity for "repeats" (measured, docs/MUSIC_ANALYSIS.md)
EXACT_REPEAT_THRESHOLD = 0.8  # below this, or with another length, a repeat is "varied"


@dataclass(frozen=True)
class SectionSpan:
    """Phrase range of one section and the earlier section it repeats."""

    first_phrase: int
    phrase_count: int
    repeat_of: int | None
    similarity: float
    varied: bool


def _zscore_columns(x: Floats) -> Floats:
    return np.asarray((x - x.mean(axis=0)) / (x.std(axis=0) + 1e-9), dtype=float)


def _unit_rows(x: Floats) -> Floats:
    return np.asarray(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9), dtype=float)


def bar_novelty(beat_mfcc: Floats, first_downbeat: int, beats_per_bar: int = 4) -> Floats:
    """Novelty at each bar line (bar 0 starts at beat ``first_downbeat``); 0 near the edges."""
    n_bars = (beat_mfcc.shape[1] - first_downbeat) // beats_per_bar
    half = WINDOW_BARS // 2  # need at least this many bars on each side
    if n_bars < 2 * half + 1:
        return np.zeros(max(n_bars, 0))
    starts = first_downbeat + beats_per_bar * np.arange(n_bars)
    # Raw MFCC means (not standardised): loudness and spectral tilt dominate, which is what
    # changes between sections; standardising let chord-driven wobble in high coefficients win.
    feats = np.stack([beat_mfcc[:, s : s + beats_per_bar].mean(axis=1) for s in starts])
    feats = feats / max(float(np.sqrt((feats**2).sum(axis=1).mean())), 1e-9)
    novelty = np.zeros(n_bars)
    for i in range(half, n_bars - half + 1):
        past = feats[max(0, i - WINDOW_BARS) : i].mean(axis=0)
        future = feats[i : i + WINDOW_BARS].mean(axis=0)
        novelty[i] = float(np.linalg.norm(past - future))
    return novelty


def boundary_bars(novelty: Floats) -> list[int]:
    """Bar indices where a section starts (excluding 0): strong, well separated novelty peaks."""
    valid = novelty[novelty > 0]
    if valid.size < 2:
        return []
    threshold = float(np.mean(valid) + 0.5 * np.std(valid))
    n = novelty.size
    peaks = [
        i
        for i in range(1, n)
        if novelty[i] > threshold
        and novelty[i] == novelty[max(0, i - 2) : i + 3].max()  # the peak of its neighbourhood
    ]
    chosen: list[int] = []
    for i in sorted(peaks, key=lambda c: -novelty[c]):  # strongest first, then keep apart
        if all(abs(i - c) >= MIN_SECTION_BARS for c in chosen):
            chosen.append(i)
    return sorted(chosen)


def phrase_parity(bars: list[int], novelty: Floats, groove_bar: int = 0) -> int:
    """0 if 8-counts start on even bars, 1 if odd: the parity where section changes fall.

    After a pulse-free intro (``groove_bar`` > 0, see ``beats.groove_start``) the first 8-count
    starts where the groove does. Otherwise section changes decide; when they do not clearly
    favour one parity (a drum loop, a song without sections), the song's first bar starts one.
    """
    if groove_bar > 0:
        return groove_bar % 2
    odd = sum(float(novelty[b]) for b in bars if b % 2)
    even = sum(float(novelty[b]) for b in bars if b % 2 == 0)
    if abs(odd - even) < PARITY_MARGIN * (odd + even) or odd + even <= 0:
        return 0
    return 1 if odd > even else 0


# Section changes must favour one bar parity by this share of their total novelty to decide it.
PARITY_MARGIN = 0.25


def phrase_similarity(beat_chroma: Floats, beat_mfcc: Floats, first_beats: list[int]) -> Floats:
    """Phrase-by-phrase similarity in -1..1: mean of chroma-sequence and timbre cosines."""
    chroma = np.stack([beat_chroma[:, b : b + COUNTS_PER_PHRASE].T.ravel() for b in first_beats])
    timbre = np.stack([beat_mfcc[:, b : b + COUNTS_PER_PHRASE].mean(axis=1) for b in first_beats])
    # Centre across phrases so what every phrase shares (key, mix) does not count as similarity.
    chroma = _unit_rows(chroma - chroma.mean(axis=0))
    timbre = _unit_rows(_zscore_columns(timbre))
    return np.asarray(0.5 * (chroma @ chroma.T) + 0.5 * (timbre @ timbre.T), dtype=float)


def aligned_similarity(similarity: Floats, a: tuple[int, int], b: tuple[int, int]) -> float:
    """Best mean similarity of two phrase ranges matched one for one (shorter slid along longer)."""
    (a0, alen), (b0, blen) = a, b
    if alen > blen:
        (a0, alen), (b0, blen) = (b0, blen), (a0, alen)
    if alen == 0:
        return -1.0
    best = -1.0
    for shift in range(blen - alen + 1):
        diag = [similarity[a0 + k, b0 + shift + k] for k in range(alen)]
        best = max(best, float(np.mean(diag)))
    return best


def label_repeats(similarity: Floats, boundaries: list[int]) -> list[SectionSpan]:
    """Section spans with ``repeat_of`` pointing at the earliest section of the same material."""
    n = similarity.shape[0]
    edges = [0, *boundaries, n]
    ranges = [(s, e - s) for s, e in itertools.pairwise(edges)]
    spans: list[SectionSpan] = []
    for j, rng in enumerate(ranges):
        scores = [aligned_similarity(similarity, ranges[i], rng) for i in range(j)]
        best = int(np.argmax(scores)) if scores else -1
        if best < 0 or scores[best] < REPEAT_THRESHOLD:
            spans.append(SectionSpan(rng[0], rng[1], None, 0.0, False))
            continue
        earlier = spans[best].repeat_of
        root = earlier if earlier is not None else best
        varied = rng[1] != ranges[root][1] or scores[best] < EXACT_REPEAT_THRESHOLD
        spans.append(SectionSpan(rng[0], rng[1], root, float(min(1.0, scores[best])), varied))
    return spans
