"""A song counted at the level its dance style counts (docs/MUSIC_ANALYSIS.md, "Counted by style").

The analysis counts the pulse level nearest 110 BPM, the level dancers count in most dance music.
Salsa is the exception dancers agree on: it is counted on the quarter note, 150-240 BPM, and a
salsa whose kicks and backbeats give no octave cue (a tumbao's bass landing with the congas) is
read at half that. Nothing in the audio says the half is wrong; the request's style does.

So when a style's range lies above a song's counted level and holds twice it, the analysis also
counts the song twice as fast (``MusicAnalysis.double_time``: the beats and the points half-way
between them, with their own bar phase, 8-counts and sections, read from the audio as the song's
own count is), and a request in that style is planned on it. The cached analysis stays one per
audio hash.
"""

from __future__ import annotations

import math
from typing import Final

from choreography.music.model import MusicAnalysis

STYLE_COUNT_BPM: Final[dict[str, tuple[float, float]]] = {"salsa": (150.0, 240.0)}
"""The tempo range a style is counted in, for the styles whose dancers count outside the
analysis's own preference (the move library's style slugs, ``choreography.moves.model.STYLES``).
Salsa: on the quarter note, from a slow son (about 150) to a fast salsa dura (240, the fastest
level the analysis counts)."""


def counted_twice(bpm: float) -> bool:
    """Whether some style is counted twice as fast as a song counted at ``bpm``."""
    return any(style_tempo(bpm, style) != bpm for style in STYLE_COUNT_BPM)


def style_tempo(bpm: float, style: str | None) -> float:
    """The tempo a request in ``style`` counts a song at whose own count is ``bpm``: twice it
    where :func:`count_for_style` would count the song twice as fast (its double time's own
    estimate may differ by a fraction of a BPM)."""
    span = STYLE_COUNT_BPM.get(style or "")
    if span is not None and bpm < span[0] <= 2 * bpm <= span[1]:
        return 2 * bpm
    return bpm


def count_for_style(analysis: MusicAnalysis, style: str | None) -> MusicAnalysis:
    """``analysis`` as a request in ``style`` counts it: its ``double_time`` when the style's
    range (``STYLE_COUNT_BPM``) lies above the song's tempo and holds the double, with the
    reason recorded in ``tempo_level``; otherwise ``analysis`` itself (the same object)."""
    span = STYLE_COUNT_BPM.get(style or "")
    double = analysis.double_time
    if span is None or double is None:
        return analysis
    low, high = span
    if analysis.tempo_bpm >= low or not low <= double.tempo_bpm <= high:
        return analysis
    reason = (
        f"{double.tempo_bpm:.1f} BPM: {style} is counted at {low:.0f}-{high:.0f} BPM, so this "
        f"{style} request counts the song twice as fast as its own level; "
        f"the song's own count: {analysis.tempo_level or f'{analysis.tempo_bpm:.1f} BPM'}"
    )
    return double.model_copy(update={"tempo_level": reason})


def count_nearest(analysis: MusicAnalysis, bpm: float) -> MusicAnalysis:
    """The song's own count or its double time, whichever is nearer ``bpm`` (a revision's new
    audio, counted at the level its parent blueprint was danced at); ``analysis`` itself when
    it is nearer or there is no double time."""
    double = analysis.double_time
    if double is None or abs(math.log2(double.tempo_bpm / bpm)) >= abs(
        math.log2(analysis.tempo_bpm / bpm)
    ):
        return analysis
    reason = (
        f"{double.tempo_bpm:.1f} BPM: counted twice as fast as its own level, as the blueprint "
        f"it revises was ({bpm:.1f} BPM); the song's own count: {analysis.tempo_level}"
    )
    return double.model_copy(update={"tempo_level": reason})
