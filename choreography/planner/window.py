"""Which part of the song the video uses: whole 8-count phrases, starting where a section does.

The window starts on the first downbeat of a section and ends at the end of a phrase, with the
length nearest to the request; among windows within a quarter phrase of the best fit, one that
ends where a section ends wins (a video that stops mid-section sounds cut off).
"""

from __future__ import annotations

from dataclasses import dataclass

from choreography.music.model import MusicAnalysis
from schemas.errors import InvalidInput

# A window that ends at a section end may be this many phrases further from the request.
SECTION_END_PREFERENCE_PHRASES = 0.25


@dataclass(frozen=True)
class WindowSection:
    """One section (or the part of it inside the window), in window order."""

    index: int
    """Position in the window (0-based): the blueprint's ``section.index``."""
    song_section: int
    """Index of the section in the analysis."""
    label: str
    first_phrase: int
    phrase_count: int
    repeat_of: int | None
    """Window index of the earlier section this one repeats, when that one is in the window."""
    energy: float


@dataclass(frozen=True)
class PhraseWindow:
    """The chosen window: phrase range, song times and the sections inside it."""

    first_phrase: int
    last_phrase: int
    start_s: float
    end_s: float
    sections: tuple[WindowSection, ...]

    @property
    def length_s(self) -> float:
        """Length of the window in seconds."""
        return self.end_s - self.start_s


def choose_window(analysis: MusicAnalysis, duration_s: float | None) -> PhraseWindow:
    """The phrase-aligned window nearest to ``duration_s`` (the whole song when ``None``)."""
    phrases = analysis.phrases
    starts = [s.first_phrase for s in analysis.sections if s.phrase_count > 0]
    if not phrases or not starts:
        raise InvalidInput(
            f"song has no complete 8-count phrase ({len(analysis.beats_s)} beats): "
            "nothing to choreograph"
        )
    if duration_s is not None and not duration_s > 0:
        raise InvalidInput(f"duration_s must be positive, got {duration_s}")
    phrase_s = (phrases[-1].end_s - phrases[0].start_s) / len(phrases)
    section_ends = {s.first_phrase + s.phrase_count - 1 for s in analysis.sections}
    best: tuple[float, int, int] | None = None
    for first in starts:
        for last in range(first, len(phrases)):
            length = phrases[last].end_s - phrases[first].start_s
            error = 0.0 if duration_s is None else abs(length - duration_s)
            if duration_s is None:
                error = -length  # the longest window: the whole song
            elif last not in section_ends:
                error += SECTION_END_PREFERENCE_PHRASES * phrase_s
            if best is None or error < best[0] - 1e-9:
                best = (error, first, last)
    assert best is not None  # noqa: S101 - starts is not empty
    _, first, last = best
    return PhraseWindow(
        first_phrase=first,
        last_phrase=last,
        start_s=phrases[first].start_s,
        end_s=phrases[last].end_s,
        sections=_window_sections(analysis, first, last),
    )


def _window_sections(analysis: MusicAnalysis, first: int, last: int) -> tuple[WindowSection, ...]:
    out: list[WindowSection] = []
    window_index_of: dict[int, int] = {}  # song section -> window index
    for section in analysis.sections:
        lo = max(section.first_phrase, first)
        hi = min(section.first_phrase + section.phrase_count - 1, last)
        if hi < lo:
            continue
        root = _repeat_root(analysis, section.index)
        repeat_of = window_index_of.get(root)
        window_index_of.setdefault(root, len(out))
        out.append(
            WindowSection(
                index=len(out),
                song_section=section.index,
                label=section.label,
                first_phrase=lo,
                phrase_count=hi - lo + 1,
                repeat_of=repeat_of,
                energy=section.energy,
            )
        )
    return tuple(out)


def _repeat_root(analysis: MusicAnalysis, index: int) -> int:
    """The first section of a chain of repeats (a repeat of a repeat is one of the original)."""
    seen = {index}
    while (earlier := analysis.sections[index].repeat_of) is not None and earlier not in seen:
        seen.add(earlier)
        index = earlier
    return index
