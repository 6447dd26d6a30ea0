"""``refine_sequence``: a refiner (Gemini) may re-choose the planned moves, by the planner's rules.

The planner's plan is summarised slot by slot (``refinement_request``): the sections with their
energy, every placed move with its beats, its energy target and the moves that could take its
place (same length, speed in band there, with placement cost and pose jumps to the local
neighbours), and the pose-jump table between those moves. The refiner answers with a move id per
slot and a reason (:class:`SequenceRefinement`, the response schema). Only the move choice can
change: the slots keep the planner's timing, so moves still start on downbeats and last whole
counts. :func:`apply_refinement` accepts an answer only when

- every slot it names exists, once, and its move is one of that slot's candidates;
- the move still fits the slot (its length, speed within the band there);
- a slot that repeats an earlier section's slot gets the same move (it may be left out);
- no move follows itself, except where a repeated section begins (or where the local plan
  already had to, when nothing else fitted).

Anything else rejects the whole answer (``RefinementRejected``) and the local plan is kept; a
refiner that fails (refusal, malformed answer, unavailable) also keeps the local plan. Either way
each move's reason says what happened. Without a refiner nothing changes.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from choreography.planner.blueprint_document import PlacedMove
from choreography.planner.costs import CostModel
from choreography.planner.tempo_fit import speed_in_band
from choreography.planner.window import PhraseWindow
from schemas.errors import InvalidInput

log = logging.getLogger(__name__)

# Moves offered per slot besides the local choice (the cheapest placements there): enough to
# improve on the plan, few enough to keep the prompt small and the pose table readable.
CANDIDATES_PER_SLOT = 6
# Characters of the refiner's own reason kept in a move's reason (the field allows 2000).
REASON_CHARS = 240
MAX_SLOTS = 512


class SlotChoice(BaseModel):
    """The refiner's move for one slot."""

    model_config = ConfigDict(extra="ignore")

    slot: int = Field(ge=0, le=MAX_SLOTS)
    move_id: str = Field(min_length=1, max_length=128)


class SequenceRefinement(BaseModel):
    """The structured answer a refiner gives (Gemini's response schema)."""

    model_config = ConfigDict(extra="ignore")

    choices: list[SlotChoice] = Field(default_factory=list, max_length=MAX_SLOTS)
    reason: str = Field(default="", max_length=1000)


class SequenceRefiner(Protocol):
    """Re-chooses moves for a planned sequence; raises when it cannot answer."""

    def refine(self, request: dict[str, Any]) -> SequenceRefinement:
        """A move per slot for the summary ``request`` (see ``refinement_request``)."""
        ...


class RefinementRejected(InvalidInput):
    """The refiner's answer breaks one of the planner's rules; the local plan stays."""


@dataclass(frozen=True)
class SlotOptions:
    """What one slot may take: the candidate indices offered, and the slot it repeats."""

    candidates: tuple[int, ...]
    repeats: int | None


def refine_sequence(
    placed: list[PlacedMove],
    model: CostModel,
    window: PhraseWindow,
    refiner: SequenceRefiner | None,
    *,
    task_id: str = "",
) -> list[PlacedMove]:
    """The refiner's plan when it passes the planner's rules, else ``placed`` (noted per move)."""
    if refiner is None:
        return placed
    context = {"task_id": task_id}
    options = slot_options(placed, model)
    request = refinement_request(placed, model, window, options)
    try:
        answer = refiner.refine(request)
    except Exception as error:  # any refiner failure keeps the local plan, logged and noted
        why = f"{type(error).__name__}: {error}"
        log.warning("sequence refinement failed, local plan kept: %s", why, extra=context)
        return _noted(placed, f"Gemini refinement failed ({_clean(why)}); local plan kept")
    try:
        refined = apply_refinement(placed, answer, options, model)
    except RefinementRejected as error:
        log.warning("sequence refinement rejected, local plan kept: %s", error, extra=context)
        return _noted(placed, f"Gemini refinement rejected ({_clean(str(error))}); local plan kept")
    before, after = plan_cost(placed, model), plan_cost(refined, model)
    changed = sum(
        a.slot.candidate != b.slot.candidate for a, b in zip(placed, refined, strict=True)
    )
    log.info(
        "sequence refined: %d of %d moves changed, plan cost %.3f -> %.3f",
        changed,
        len(placed),
        before,
        after,
        extra=context,
    )
    summary = f"plan cost {before:.2f} -> {after:.2f}: {_clean(answer.reason) or 'no reason given'}"
    kept = f"Gemini refinement kept this move ({changed} of {len(placed)} changed)"
    return [
        dataclasses.replace(new, note=kept)
        if new.slot.candidate == old.slot.candidate
        else dataclasses.replace(
            new,
            note=f"Gemini refinement chose this over "
            f"{model.candidates[old.slot.candidate].name} ({summary})",
        )
        for old, new in zip(placed, refined, strict=True)
    ]


def slot_options(placed: Sequence[PlacedMove], model: CostModel) -> list[SlotOptions]:
    """Per slot: the moves that fit its beats and speed band (cheapest first, local included)."""
    out: list[SlotOptions] = []
    for i, p in enumerate(placed):
        repeats = _repeated_slot(placed, i)
        if repeats is not None:
            out.append(SlotOptions((), repeats))
            continue
        slot = p.slot
        unary = model.unary(slot.first_beat)
        fitting = [
            c
            for c in range(len(model.candidates))
            if int(model.beats[c]) == slot.beats and math.isfinite(unary[c])
        ]
        fitting.sort(key=lambda c: (unary[c], model.candidates[c].move_id))
        offered = [slot.candidate, *(c for c in fitting if c != slot.candidate)]
        out.append(SlotOptions(tuple(offered[: CANDIDATES_PER_SLOT + 1]), None))
    return out


def refinement_request(
    placed: Sequence[PlacedMove],
    model: CostModel,
    window: PhraseWindow,
    options: Sequence[SlotOptions],
) -> dict[str, Any]:
    """The compact, JSON-ready summary a refiner sees (ids, numbers rounded to 3 places)."""
    offered = sorted(
        {c for o in options for c in o.candidates} | {p.slot.candidate for p in placed}
    )
    ids = [model.candidates[c].move_id for c in offered]
    origin = placed[0].slot.first_beat if placed else 0
    slots = []
    for i, (p, option) in enumerate(zip(placed, options, strict=True)):
        entry: dict[str, Any] = {
            "slot": i,
            "section": p.section.index,
            "start_count": p.slot.first_beat - origin,
            "counts": p.slot.beats,
            "local_move": model.candidates[p.slot.candidate].move_id,
        }
        if option.repeats is not None:
            entry["repeats_slot"] = option.repeats
        else:
            entry["target_energy"] = _r(model.target_energy(p.slot.first_beat, p.slot.beats))
            entry["candidates"] = _slot_candidates(placed, i, option, model)
        slots.append(entry)
    return {
        "requested_energy_shift": model.energy_shift,
        "sections": [
            {"index": s.index, "label": s.label, "energy": _r(s.energy), "repeat_of": s.repeat_of}
            for s in window.sections
        ],
        "moves": [
            {
                "id": model.candidates[c].move_id,
                "name": model.candidates[c].name,
                "energy": model.candidates[c].energy,
                "search_score": _r(model.candidates[c].score),
                "beat_alignment": _r(model.candidates[c].beat_alignment),
            }
            for c in offered
        ],
        "pose_jump_m": {
            "ids": ids,
            "rows": [[_r(float(model.jump[a, b])) for b in offered] for a in offered],
        },
        "slots": slots,
        "local_plan_cost": _r(plan_cost(placed, model)),
    }


def apply_refinement(
    placed: Sequence[PlacedMove],
    answer: SequenceRefinement,
    options: Sequence[SlotOptions],
    model: CostModel,
) -> list[PlacedMove]:
    """The plan with the answer's moves, or ``RefinementRejected`` naming the first broken rule."""
    index_of = {c.move_id: i for i, c in enumerate(model.candidates)}
    named: dict[int, str] = {}
    for choice in answer.choices:
        if choice.slot >= len(placed):
            raise RefinementRejected(f"slot {choice.slot} does not exist ({len(placed)} slots)")
        if choice.slot in named:
            raise RefinementRejected(f"slot {choice.slot} is answered twice")
        named[choice.slot] = choice.move_id
    chosen: dict[int, int] = {}
    for slot, move_id in sorted(named.items()):
        candidate, option = index_of.get(move_id), options[slot]
        if option.repeats is not None:
            original = named.get(
                option.repeats, model.candidates[placed[option.repeats].slot.candidate].move_id
            )
            if move_id != original:
                raise RefinementRejected(
                    f"slot {slot} repeats slot {option.repeats} but got move {move_id!r}, "
                    f"not {original!r}: repeated sections must stay identical"
                )
        elif candidate is None or candidate not in option.candidates:
            raise RefinementRejected(f"move {move_id!r} is not a candidate for slot {slot}")
        else:
            chosen[slot] = candidate
    out: list[PlacedMove] = []
    for i, p in enumerate(placed):
        repeats = options[i].repeats
        candidate = out[repeats].slot.candidate if repeats is not None else chosen.get(i)
        if candidate is None:
            candidate = p.slot.candidate
        _check_fits(i, candidate, p, model)
        out.append(dataclasses.replace(p, slot=dataclasses.replace(p.slot, candidate=candidate)))
    _check_no_immediate_repeats(placed, out, model)
    return out


def plan_cost(placed: Sequence[PlacedMove], model: CostModel) -> float:
    """Placement costs plus weighted pose jumps at the cuts (the planner's terms, no repetition)."""
    total = 0.0
    for i, p in enumerate(placed):
        total += float(model.unary(p.slot.first_beat)[p.slot.candidate])
        if i:
            before = placed[i - 1].slot
            total += model.settings.w_pose * model.jump_between(
                before.candidate, before.mirror, p.slot.candidate, p.slot.mirror
            )
    return total


def _repeated_slot(placed: Sequence[PlacedMove], i: int) -> int | None:
    """The slot that slot ``i`` copies (same position in the repeated section), if any."""
    p = placed[i]
    if not p.copied or p.repeat_of is None:
        return None
    ordinal = sum(1 for q in placed[:i] if q.section.index == p.section.index)
    originals = [j for j, q in enumerate(placed) if q.section.index == p.repeat_of]
    return originals[ordinal] if ordinal < len(originals) else None


def _check_fits(i: int, candidate: int, p: PlacedMove, model: CostModel) -> None:
    name = model.candidates[candidate].move_id
    if int(model.beats[candidate]) != p.slot.beats:
        raise RefinementRejected(
            f"slot {i}: move {name!r} lasts {int(model.beats[candidate])} beats, "
            f"the slot {p.slot.beats}"
        )
    speed = model.speed(candidate, p.slot.first_beat)
    if not speed_in_band(speed):
        raise RefinementRejected(f"slot {i}: move {name!r} would play at speed {speed:.3f}")


def _check_no_immediate_repeats(
    local: Sequence[PlacedMove], refined: Sequence[PlacedMove], model: CostModel
) -> None:
    for i in range(1, len(refined)):
        before, after = refined[i - 1], refined[i]
        if before.slot.candidate != after.slot.candidate:
            continue
        starts_repeat = after.copied and after.section.index != before.section.index
        planner_had_it = local[i - 1].slot.candidate == local[i].slot.candidate
        if not (starts_repeat or planner_had_it):
            raise RefinementRejected(
                f"move {model.candidates[after.slot.candidate].move_id!r} would follow itself "
                f"at slots {i - 1} and {i}"
            )


def _slot_candidates(
    placed: Sequence[PlacedMove], i: int, option: SlotOptions, model: CostModel
) -> list[dict[str, Any]]:
    slot = placed[i].slot
    unary = model.unary(slot.first_beat)
    before = placed[i - 1].slot if i > 0 else None
    after = placed[i + 1].slot if i + 1 < len(placed) else None
    out = []
    for c in option.candidates:
        entry: dict[str, Any] = {
            "id": model.candidates[c].move_id,
            "placement_cost": _r(float(unary[c])),
        }
        if before is not None:
            entry["pose_jump_from_previous_m"] = _r(
                model.jump_between(before.candidate, before.mirror, c, slot.mirror)
            )
        if after is not None:
            entry["pose_jump_to_next_m"] = _r(
                model.jump_between(c, slot.mirror, after.candidate, after.mirror)
            )
        out.append(entry)
    return out


def _noted(placed: Sequence[PlacedMove], note: str) -> list[PlacedMove]:
    return [dataclasses.replace(p, note=note) for p in placed]


def _clean(text: str) -> str:
    """One printable line of at most ``REASON_CHARS`` (the blueprint refuses control chars)."""
    line = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return line if len(line) <= REASON_CHARS else line[: REASON_CHARS - 3] + "..."


def _r(value: float) -> float:
    return round(float(value), 3)
