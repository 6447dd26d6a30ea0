"""``plan_revision``: keep some bars of a blueprint, re-plan the others (docs/REVISIONS.md).

Bars are the 1-based 4/4 bars of the parent blueprint's window. A move is kept when none of its
bars is redone; a move with any redone bar is re-planned whole (the redo span grows to whole
moves), unless it also covers a bar the user asked to keep, which is refused, naming the move
and its bars. Bars in neither list follow the move they belong to.

When the revision's audio is the parent's (``RevisionInputs.same_audio``: the same content
hash), it is planned on the parent's own beat grid (``parent_grid.on_parent_grid``), so the kept
bars fit exactly even when the analysis code has changed since. Otherwise it is planned on the
new audio's analysis, and every kept move must land where it did: its first and last beat at the
same song time (within the blueprint's 1 ms timeline tolerance), inside the song; if not, the
kept bars are refused by name (the song changed).

Redone bars are filled by the planner's own dynamic programme (``sequencer.fill_bars``) and cost
model, stretch by stretch: continuing from the move before (pose continuity at the seam) and
looking ahead to the kept move after it (pose continuity at the far seam); a replaced move comes
back at its old place only when nothing else fits (``REPLACED_AT_PLACE_COST``), and the kept and
replaced moves
count as uses for the variety terms. A redone section whose source section (``repeat_of``) was
redone too copies the new moves at the same bar offsets, so repeats stay repeats; a repeat whose
source or copy is kept keeps its own moves.

Kept moves are the parent's ``moves_used`` entries with every field kept (move, clip span,
timeline span, counts, speed, mirror, section); their transition in is the parent's when the move
before is kept too, and recomputed from the pose jump when it is new.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from choreography.music.model import MusicAnalysis
from choreography.music.style_count import count_nearest
from choreography.planner.blueprint_document import PlacedMove, SongInfo, blueprint_document
from choreography.planner.candidates import MoveCandidate
from choreography.planner.costs import CostModel, Floats, PlannerSettings
from choreography.planner.parent_grid import on_parent_grid
from choreography.planner.planner import (
    FidelityPool,
    fidelity_pools,
    refuse_meter,
    resolve_constraints,
    substitutions,
    usable_candidates,
)
from choreography.planner.sequencer import Neighbour, NoSequence, Slot, fill_bars
from choreography.planner.tempo_fit import TempoFit, speed_in_band
from choreography.planner.window import PhraseWindow, WindowSection
from schemas.bar_spans import BarSpan, format_bars
from schemas.blueprint import TIMELINE_TOLERANCE_S, Blueprint, VideoOutput, parse_blueprint
from schemas.errors import InvalidInput
from schemas.events import Constraints as RequestedConstraints
from schemas.revision_bars import MoveBars, RevisionSplit, move_bars, split_bars

__all__ = [
    "KEPT_FIELDS",
    "MoveBars",
    "RevisedPlan",
    "RevisionCosts",
    "RevisionInputs",
    "RevisionSplit",
    "check_fit",
    "move_bars",
    "plan_revision",
    "split_bars",
]

# Fields of a kept move copied from the parent as they are (the transition is decided at seams).
KEPT_FIELDS = (
    "move_id",
    "name",
    "clip_uri",
    "clip_in_s",
    "clip_out_s",
    "timeline_start_s",
    "timeline_end_s",
    "counts",
    "speed_factor",
    "mirror",
    "section",
)


def check_fit(parent: Blueprint, analysis: MusicAnalysis, split: RevisionSplit, tol: float) -> int:
    """The analysis's beat index of bar 1; ``InvalidInput`` naming the kept bars whose beats
    moved or fell past the song's end (and redone bars past the end)."""
    beats = np.asarray(analysis.beats_s, dtype=float)
    per_bar = parent.song.time_signature
    window = parent.song.window
    if beats.size < 2 or analysis.beats_per_bar != per_bar:
        raise InvalidInput(
            f"kept bars {format_bars(split.kept_bars)} no longer fit the song: it is now analysed "
            f"in {analysis.beats_per_bar}/4 with {beats.size} beats"
        )
    b0 = int(np.argmin(np.abs(beats - window.start_s)))
    if 1 not in split.kept_bars and abs(float(beats[b0]) - window.start_s) > tol:
        # A redone bar 1 would start the video off the window's start (a kept one is named below).
        raise InvalidInput(
            f"bar 1 no longer fits the song: its nearest beat is now at {beats[b0]:.3f} s, the "
            f"video starts at {window.start_s:.3f} s (the song's audio changed); send a new "
            "request for the song as it is now"
        )
    interval = float(np.median(np.diff(beats)))

    def time(beat: int) -> float:
        last = beats.size - 1
        return float(beats[beat]) if beat <= last else float(beats[last]) + (beat - last) * interval

    end_of_song = analysis.duration_s + tol
    moved: dict[int, str] = {}
    past_end: set[int] = set()
    kept_index = {m.index for m in split.kept}
    for m in split.moves:
        start = time(b0 + per_bar * (m.first - 1))
        was_start = window.start_s + m.move.timeline_start_s
        if m.index == len(split.moves) - 1:
            end, was_end = window.end_s, window.end_s
        else:
            end = time(b0 + per_bar * m.last)
            was_end = window.start_s + m.move.timeline_end_s
        if end > end_of_song or b0 + per_bar * (m.first - 1) >= beats.size:
            past_end.update(m.bars)
        elif m.index in kept_index and max(abs(start - was_start), abs(end - was_end)) > tol:
            worst = start if abs(start - was_start) >= abs(end - was_end) else end
            was = was_start if worst == start else was_end
            moved[m.first] = f"{m.text()} {worst:.3f} s, was {was:.3f} s"
    kept_past = past_end & split.kept_bars
    if moved or kept_past:
        bad = kept_past | {b for m in split.kept if m.first in moved for b in m.bars}
        details = []
        if kept_past:
            details.append(
                f"bars {format_bars(kept_past)} are past the song's end at "
                f"{analysis.duration_s:.2f} s"
            )
        if moved:
            listed = [moved[k] for k in sorted(moved)]
            more = f"; {len(listed) - 3} more" if len(listed) > 3 else ""
            details.append(
                f"the beats moved by more than {tol * 1000:g} ms ("
                + "; ".join(listed[:3])
                + more
                + ")"
            )
        raise InvalidInput(
            f"kept bars {format_bars(bad)} no longer fit the song (it changed since task "
            f"{parent.task_id} was planned): " + "; ".join(details)
        )
    redone_past = past_end & split.redone_bars
    if redone_past:
        raise InvalidInput(
            f"redo bars {format_bars(redone_past)} are past the song's end at "
            f"{analysis.duration_s:.2f} s (it changed since task {parent.task_id} was planned)"
        )
    return b0


# A replaced move coming back at its old place costs this: far above any real placement (a few
# units per phrase), so a redo changes the move whenever another fits, and below the planner's
# cost of a move following itself across a boundary (``REPEAT_ACROSS_BOUNDARY_COST``, 100), so
# "a move never follows itself" still wins over "a redo changes the move".
REPLACED_AT_PLACE_COST = 50.0


class RevisionCosts(CostModel):
    """The planner's cost model with some candidates never placed and some discouraged at a beat.

    The kept moves join the candidates (for pose jumps at the seams) without being placeable
    when they are not among the searched moves; a replaced move costs more where it was.
    """

    def __init__(
        self, *args: Any, placeable: int, banned_at: Mapping[int, set[int]], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.placeable = placeable
        self.banned_at = dict(banned_at)

    def unary(self, first_beat: int) -> Floats:
        """The planner's placement cost; infinite for kept-only moves, and a replaced move at
        its old place costs ``REPLACED_AT_PLACE_COST`` more."""
        out = super().unary(first_beat)
        out[self.placeable :] = math.inf
        for c in self.banned_at.get(first_beat, ()):
            out[c] += REPLACED_AT_PLACE_COST
        return out


@dataclass(frozen=True)
class RevisionInputs:
    """The parent, what to keep and redo, the revision's identity, and its song.

    ``same_audio``: the audio to plan on is the parent's (same content hash), so the revision is
    planned on the parent's beat grid. ``song_id``: the catalog id of the audio planned on when
    it is not the parent's (None keeps the parent's).
    """

    parent: Blueprint
    keep: Sequence[BarSpan]
    redo: Sequence[BarSpan]
    task_id: str
    output: VideoOutput
    same_audio: bool = False
    song_id: str | None = None


@dataclass(frozen=True)
class RevisedPlan:
    """A revision's blueprint, its parent and its bars as ``1-8,17-24`` (kept may be empty)."""

    blueprint: Blueprint
    parent_task_id: str
    kept_bars: str
    redone_bars: str

    def detail(self) -> dict[str, str]:
        """For the task's history row (``choreo status`` shows it)."""
        return {
            "revision_of": self.parent_task_id,
            "kept_bars": self.kept_bars,
            "redone_bars": self.redone_bars,
        }


def plan_revision(
    inputs: RevisionInputs,
    analysis: MusicAnalysis,
    constraints: RequestedConstraints,
    candidates: Sequence[MoveCandidate],
    kept_moves: Mapping[str, MoveCandidate],
    *,
    seed: int = 0,
    settings: PlannerSettings | None = None,
    created_at: datetime | None = None,
) -> RevisedPlan:
    """The revised blueprint (validated) and its bars; ``InvalidInput`` names the bars that
    cannot be kept.

    ``analysis``: the revision's audio analysed now (on the parent's grid when
    ``inputs.same_audio``). ``kept_moves``: the library's candidate for every kept move id (for
    the seams' pose jumps).
    """
    parent = inputs.parent
    settings = settings or PlannerSettings()
    if inputs.same_audio:
        analysis = on_parent_grid(parent, analysis)
    else:  # new audio is counted at the level the parent was danced at (salsa at its double)
        analysis = count_nearest(analysis, parent.song.tempo_bpm)
    refuse_meter(analysis)
    split = split_bars(parent, inputs.keep, inputs.redo)
    b0 = check_fit(parent, analysis, split, TIMELINE_TOLERANCE_S)
    effective = resolve_constraints(analysis, constraints, candidates)
    usable, fits = usable_candidates(analysis, effective, candidates, inputs.task_id)
    typical = max(1, int(np.median([f.beats for f in fits])) // analysis.beats_per_bar)
    needed = max(2, math.ceil(len(split.redone_bars) / typical))
    pools = fidelity_pools(usable, fits, constraints, needed=needed)
    for attempt, pool in enumerate(pools):
        model, index_of = _costs(
            analysis, pool, kept_moves, split, b0=b0, energy=effective.energy, settings=settings,
            seed=seed,
        )  # fmt: skip
        try:
            placed, origins = _plan(parent, split, model, index_of, b0)
            break
        except InvalidInput:
            if attempt == len(pools) - 1:
                raise
    document = blueprint_document(
        task_id=inputs.task_id,
        created_at=created_at or datetime.now(UTC),
        analysis=analysis,
        song=SongInfo(
            parent.song.audio_uri,
            parent.song.title,
            parent.song.song_id if inputs.same_audio else inputs.song_id or parent.song.song_id,
            parent.song.artist,
            parent.song.choice_reason,
        ),
        window=_window(parent),
        constraints=effective,
        description=parent.request.description,
        moves=placed,
        model=model,
        output=inputs.output,
        substitutions=substitutions(placed, model, constraints, pool.reason),
    )
    if inputs.same_audio:  # the parent's song block as it was (its analysis summary included)
        document["song"] = parent.song.model_dump(mode="json")
    _restore_kept(document["moves_used"], parent, origins)
    return RevisedPlan(
        parse_blueprint(document),
        parent.task_id,
        format_bars(split.kept_bars),
        format_bars(split.redone_bars),
    )


def _costs(
    analysis: MusicAnalysis,
    pool: FidelityPool,
    kept_moves: Mapping[str, MoveCandidate],
    split: RevisionSplit,
    *,
    b0: int,
    energy: str,
    settings: PlannerSettings,
    seed: int,
) -> tuple[RevisionCosts, dict[str, int]]:
    """The cost model over the pool plus the parent's moves it lacks (for seams, not placed),
    each replaced move discouraged at its old first beat; and the candidate index of each move
    id."""
    candidates, fits = list(pool.candidates), list(pool.fits)
    index_of = {c.move_id: i for i, c in enumerate(candidates)}
    kept_ids = {m.move.move_id for m in split.kept}
    for m in split.moves:
        move_id = m.move.move_id
        if move_id in index_of:
            continue
        if move_id not in kept_moves:
            if move_id in kept_ids:
                raise InvalidInput(f"kept move {move_id} ({m.text()}) is not in the move library")
            continue  # a replaced move the search no longer finds: nothing to ban
        index_of[move_id] = len(candidates)
        candidates.append(kept_moves[move_id])
        fits.append(TempoFit("kept", m.move.counts, m.move.speed_factor))
    per_bar = analysis.beats_per_bar
    kept_index = {m.index for m in split.kept}
    banned: dict[int, set[int]] = {}
    for m in split.moves:
        if m.index not in kept_index and m.move.move_id in index_of:
            beat = b0 + per_bar * (m.first - 1)
            banned.setdefault(beat, set()).add(index_of[m.move.move_id])
    placeable = len(pool.candidates)
    model = RevisionCosts(
        analysis,
        candidates,
        fits,
        energy_level=energy,
        settings=settings,
        seed=seed,
        off_request=list(pool.off_request) + [0] * (len(candidates) - placeable),
        placeable=placeable,
        banned_at=banned,
    )
    return model, index_of


def _window(parent: Blueprint) -> PhraseWindow:
    """The parent's window, with its sections as the blueprint names them."""
    sections: dict[int, WindowSection] = {}
    for move in parent.moves_used:
        s = move.section
        known = sections.get(s.index)
        if known is None or (known.repeat_of is None and s.repeat_of is not None):
            sections[s.index] = WindowSection(s.index, s.index, s.label, 0, 0, s.repeat_of, 0.0)
    window = parent.song.window
    ordered = tuple(sections[i] for i in sorted(sections))
    return PhraseWindow(0, 0, window.start_s, window.end_s, ordered)


def _plan(
    parent: Blueprint,
    split: RevisionSplit,
    model: RevisionCosts,
    index_of: Mapping[str, int],
    b0: int,
) -> tuple[list[PlacedMove], list[int | None]]:
    """Kept moves where they were and redone stretches filled section by section, in timeline
    order; with each placement's parent move index (kept) or None (new)."""
    reviser = _Reviser(parent, split, model, index_of, b0)
    bar, last = 1, split.moves[-1].last
    while bar <= last:
        bar = reviser.place_from(bar)
    return reviser.placed, reviser.origins


class _Reviser:
    """The state of one revision's planning: what is placed so far and the moves' uses."""

    def __init__(
        self,
        parent: Blueprint,
        split: RevisionSplit,
        model: RevisionCosts,
        index_of: Mapping[str, int],
        b0: int,
    ) -> None:
        self.parent, self.split, self.model, self.index_of, self.b0 = (
            parent, split, model, index_of, b0,
        )  # fmt: skip
        self.per_bar = parent.song.time_signature
        self.sections = {s.index: s for s in _window(parent).sections}
        self.section_of = {bar: m.move.section.index for m in split.moves for bar in m.bars}
        self.kept_at = {m.first: m for m in split.kept}
        self.uses = np.zeros(len(model.candidates))
        for m in split.moves:
            if m.move.move_id in index_of:
                # Kept moves are used; replaced ones are discouraged from coming back elsewhere.
                self.uses[index_of[m.move.move_id]] += 1
        self.new_by_section: dict[int, list[Slot]] = {}
        self.placed: list[PlacedMove] = []
        self.origins: list[int | None] = []

    def beat(self, bar: int) -> int:
        """The analysis's beat index where ``bar`` starts."""
        return self.b0 + self.per_bar * (bar - 1)

    def place_from(self, bar: int) -> int:
        """Place the kept move or the redone stretch starting at ``bar``; the next bar."""
        kept = self.kept_at.get(bar)
        if kept is not None:
            move = kept.move
            slot = Slot(self.index_of[move.move_id], self.beat(bar), move.counts, move.mirror)
            section = self.sections[move.section.index]
            note = f"kept from task {self.parent.task_id} ({kept.text()})"
            self.placed.append(PlacedMove(slot, section, move.section.repeat_of, False, note))
            self.origins.append(kept.index)
            return kept.last + 1
        section_index, last = self.section_of[bar], self.split.moves[-1].last
        end = bar
        while (
            end < last
            and end + 1 in self.split.redone_bars
            and self.section_of[end + 1] == section_index
        ):
            end += 1
        slots, copied, source = self.redo(bar, end, section_index)
        self.new_by_section.setdefault(section_index, []).extend(slots)
        note = f"re-planned in a revision of task {self.parent.task_id} (bars {bar}-{end})"
        for i, slot in enumerate(slots):
            repeat_of = source if i < copied else None
            section = self.sections[section_index]
            self.placed.append(PlacedMove(slot, section, repeat_of, i < copied, note))
            self.origins.append(None)
        return end + 1

    def redo(self, bar: int, end: int, section_index: int) -> tuple[list[Slot], int, int | None]:
        """New slots for redone bars ``bar``..``end`` of one section, how many of them copy the
        section's source (a whole redone repeat of a whole redone source), and that source."""
        source = self.sections[section_index].repeat_of
        copied: list[Slot] = []
        if (
            source is not None
            and source in self.new_by_section
            and self._whole_redo(section_index, bar, end)
        ):
            copied = self._copy(self.new_by_section[source], bar, end - bar + 1)
        covered = sum(s.beats for s in copied) // self.per_bar
        slots = list(copied)
        if covered < end - bar + 1:
            previous = slots[-1] if slots else (self.placed[-1].slot if self.placed else None)
            following = self.kept_at.get(end + 1)
            slots += self._fill(
                bar + covered,
                end,
                Neighbour(previous.candidate, previous.mirror) if previous else None,
                Neighbour(self.index_of[following.move.move_id], following.move.mirror)
                if following
                else None,
            )
        for slot in slots[len(copied) :]:
            self.uses[slot.candidate] += 1
        return slots, len(copied), source if copied else None

    def _whole_redo(self, section_index: int, bar: int, end: int) -> bool:
        """Whether ``bar``..``end`` is the whole section and its source is wholly redone."""
        mine = [m for m in self.split.moves if m.move.section.index == section_index]
        source = self.sections[section_index].repeat_of
        theirs = [b for m in self.split.moves if m.move.section.index == source for b in m.bars]
        return (
            bar == mine[0].first
            and end == mine[-1].last
            and all(b in self.split.redone_bars for b in theirs)
        )

    def _copy(self, original: Sequence[Slot], bar: int, bars: int) -> list[Slot]:
        """The source's new slots at the same bar offsets, as far as bars and speed band allow."""
        flip = self.model.settings.mirror_repeats
        origin, first_beat = original[0].first_beat, self.beat(bar)
        limit = first_beat + bars * self.per_bar
        out: list[Slot] = []
        for slot in original:
            start = first_beat + slot.first_beat - origin
            speed = self.model.speed(slot.candidate, start)
            if start + slot.beats > limit or not speed_in_band(speed):
                break
            out.append(Slot(slot.candidate, start, slot.beats, slot.mirror != flip))
        return out

    def _fill(
        self, bar: int, end: int, previous: Neighbour | None, following: Neighbour | None
    ) -> list[Slot]:
        """``fill_bars`` over bars ``bar``..``end``; ``InvalidInput`` naming them when nothing
        fits."""
        try:
            return fill_bars(
                self.model,
                self.beat(bar),
                end - bar + 1,
                self.per_bar,
                previous=previous,
                following=following,
                uses=self.uses,
            )
        except NoSequence as exc:
            raise InvalidInput(
                f"redo bars {bar}-{end} of task {self.parent.task_id}: {exc}; moves must not "
                "follow themselves and their speed must stay in 0.85-1.15 at each placement"
            ) from exc


def _restore_kept(
    moves: list[dict[str, Any]], parent: Blueprint, origins: Sequence[int | None]
) -> None:
    """Kept moves as the parent had them; the parent's transition in where the move before is
    the parent's move before too (else the one the planner chose for the new seam)."""
    for position, origin in enumerate(origins):
        if origin is None:
            continue
        original = parent.moves_used[origin].model_dump(mode="json")
        entry = moves[position]
        for name in KEPT_FIELDS:
            entry[name] = original[name]
        before = origins[position - 1] if position > 0 else None
        note = f"; kept from task {parent.task_id}"
        reason = {**original["reason"]}
        if position == 0 or (before is not None and before == origin - 1):
            entry["transition_in"] = original["transition_in"]
        else:  # a new move before it: the seam's own pose jump and transition
            jump = entry["reason"]["transition_cost"]
            reason["transition_cost"] = jump
            note += f", after a re-planned move (pose jump {jump:.3f} m)"
        reason["text"] = (reason["text"] + note)[:2000]
        entry["reason"] = reason
