"""Which of a blueprint's moves a revision keeps and which bars it re-plans (docs/REVISIONS.md).

Pure over the parent blueprint, so the producer refuses a bad ``--keep``/``--redo`` before a task
exists and the planner (``choreography.planner.revision``) splits the bars the same way. Bars
are 1-based bars of the blueprint's window (``schemas.bar_spans``). A move is kept when none of
its bars is redone; a move with any redone bar is re-planned whole, unless it also covers a bar
the user asked to keep, which is refused, naming the move and its bars.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from schemas.bar_spans import BarSpan, bar_set, format_bars
from schemas.blueprint import Blueprint, MoveUsed
from schemas.errors import InvalidInput


@dataclass(frozen=True)
class MoveBars:
    """A parent move and the bars it covers (1-based, inclusive)."""

    index: int
    move: MoveUsed
    first: int
    last: int

    @property
    def bars(self) -> range:
        """Its bars."""
        return range(self.first, self.last + 1)

    def text(self) -> str:
        """``bars 7-10`` or ``bar 7``."""
        return f"bar {self.first}" if self.first == self.last else f"bars {self.first}-{self.last}"


@dataclass(frozen=True)
class RevisionSplit:
    """Which parent moves are kept, and the bars re-planned (whole moves)."""

    moves: tuple[MoveBars, ...]
    kept: tuple[MoveBars, ...]
    redone_bars: frozenset[int]

    @property
    def kept_bars(self) -> frozenset[int]:
        """Bars whose moves are kept."""
        return frozenset(bar for m in self.kept for bar in m.bars)


def move_bars(parent: Blueprint) -> tuple[MoveBars, ...]:
    """Each parent move with its bars; ``InvalidInput`` if a move does not fill whole bars."""
    per_bar = parent.song.time_signature
    out, bar = [], 1
    for i, move in enumerate(parent.moves_used):
        if move.counts % per_bar:
            raise InvalidInput(
                f"move {i + 1} ({move.name}) spans {move.counts} counts, not whole bars of "
                f"{per_bar}: this blueprint cannot be revised by bars"
            )
        bars = move.counts // per_bar
        out.append(MoveBars(i, move, bar, bar + bars - 1))
        bar += bars
    return tuple(out)


def split_bars(
    parent: Blueprint, keep: Sequence[BarSpan], redo: Sequence[BarSpan]
) -> RevisionSplit:
    """Kept moves and redone bars; ``InvalidInput`` names bars outside the blueprint, bars in
    both lists, and a move that is asked to be both kept and redone."""
    moves = move_bars(parent)
    last = moves[-1].last
    keep_bars, redo_bars = bar_set(keep), bar_set(redo)
    for option, bars in (("--keep", keep_bars), ("--redo", redo_bars)):
        outside = {b for b in bars if b > last}
        if outside:
            raise InvalidInput(
                f"{option} bars {format_bars(outside)} are past the end of task "
                f"{parent.task_id}'s blueprint, which has bars 1-{last}"
            )
    both = keep_bars & redo_bars
    if both:
        raise InvalidInput(f"bars {format_bars(both)} are in both --keep and --redo")
    if not redo_bars:
        raise InvalidInput("--redo names no bar: nothing to revise")
    redone: set[int] = set()
    kept = []
    for m in moves:
        touched = redo_bars.intersection(m.bars)
        if not touched:
            kept.append(m)
            continue
        pinned = keep_bars.intersection(m.bars)
        if pinned:
            raise InvalidInput(
                f"{m.text()} are one move ({m.move.name}): it cannot be kept (--keep "
                f"{format_bars(pinned)}) and redone (--redo {format_bars(touched)}); keep or "
                f"redo all of {m.first}-{m.last}"
            )
        redone.update(m.bars)
    return RevisionSplit(moves, tuple(kept), frozenset(redone))
