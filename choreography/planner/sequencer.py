"""Dynamic programming over bars: the cheapest sequence of moves that fills one stretch of bars.

States are "the last move placed" at each bar of the stretch (moves start on downbeats and last
whole bars). A move ``c`` placed at bar ``p`` after state ``s`` lands in state ``c`` at bar
``p + bars(c)``; every state keeps its cheapest arrival (Viterbi). The reuse penalties (of a move
and of its family, ``CostModel.reuse``) need the path, so each state carries the use counts of
its own best path, starting from the uses of the sections planned before: exact for the pose,
energy, score and speed terms, and a greedy approximation for reuse (an earlier, cheaper path can
hide a later, less repetitive one). A move never follows itself inside a stretch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from choreography.planner.costs import CostModel

Floats = npt.NDArray[np.float64]
# Ending next to the same move that opens the following (repeated) section is discouraged, not
# forbidden: the rule against immediate repeats yields to the rule that repeats are repeated.
SAME_MOVE_AT_BOUNDARY_COST = 5.0
# The previous section's last move may open this one only when nothing else fits (a section
# planned without knowing the next one can leave no other way); far above any real plan's cost.
REPEAT_ACROSS_BOUNDARY_COST = 100.0


@dataclass(frozen=True)
class Slot:
    """One move of a planned stretch: candidate index, first song beat, song beats spanned."""

    candidate: int
    first_beat: int
    beats: int
    mirror: bool = False


@dataclass(frozen=True)
class Neighbour:
    """A fixed move next to the stretch: the previous one, or the next section's first one."""

    candidate: int
    mirror: bool


class NoSequence(Exception):
    """No sequence of the candidates fills the stretch (lengths or speeds do not fit)."""


def fill_bars(
    model: CostModel,
    first_beat: int,
    bars: int,
    beats_per_bar: int,
    *,
    previous: Neighbour | None,
    following: Neighbour | None,
    uses: Floats,
) -> list[Slot]:
    """The cheapest slots covering ``bars`` bars from ``first_beat``; raise ``NoSequence``.

    ``uses``: how often each candidate was planned afresh before this stretch (for reuse costs).
    """
    n = len(model.candidates)
    bars_of = model.beats // beats_per_bar
    w_pose = model.settings.w_pose
    cost = np.full((bars + 1, n), math.inf)
    used = np.zeros((bars + 1, n, n))
    back = np.full((bars + 1, n), -1, dtype=int)

    def arrive(at: int, totals: Floats, from_state: npt.NDArray[np.intp], counts: Floats) -> None:
        for c in np.flatnonzero(np.isfinite(totals)):
            end = at + int(bars_of[c])
            if end <= bars and totals[c] < cost[end, c]:
                cost[end, c] = totals[c]
                back[end, c] = from_state[c]
                used[end, c] = counts[from_state[c]] if from_state[c] >= 0 else counts[-1]
                used[end, c, c] += 1

    start = model.unary(first_beat) + model.reuse(uses)
    if previous is not None:
        start += w_pose * model.jump_from(previous.candidate, previous.mirror)
        start[previous.candidate] += REPEAT_ACROSS_BOUNDARY_COST
    arrive(0, start, np.full(n, -1), uses[None, :])
    for at in range(1, bars):
        states = np.flatnonzero(np.isfinite(cost[at]))
        if states.size == 0:
            continue
        totals = (
            cost[at, states, None]
            + w_pose * model.jump[states]
            + model.reuse(used[at, states])
            + model.unary(first_beat + at * beats_per_bar)[None, :]
        )
        totals[np.arange(states.size), states] = math.inf  # no move twice in a row
        best = np.argmin(totals, axis=0)
        arrive(at, totals[best, np.arange(n)], states[best], used[at])
    final = cost[bars].copy()
    if following is not None:
        final += w_pose * model.jump_into(following.candidate, following.mirror)
        final[following.candidate] += SAME_MOVE_AT_BOUNDARY_COST
    if not np.isfinite(final).any():
        raise NoSequence(f"no sequence of the candidate moves fills {bars} bars")
    # Walk the back-pointers from the cheapest final state to the start of the stretch.
    slots: list[Slot] = []
    state, end = int(np.argmin(final)), bars
    while state >= 0:
        begin = end - int(bars_of[state])
        slots.append(Slot(state, first_beat + begin * beats_per_bar, int(model.beats[state])))
        state, end = int(back[end, state]), begin
    slots.reverse()
    return slots
