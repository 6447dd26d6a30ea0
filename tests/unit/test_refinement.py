"""Sequence refinement: a refiner's answer is applied only through the planner's own rules."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from choreography.planner.candidates import MoveCandidate
from choreography.planner.costs import CostModel, PlannerSettings
from choreography.planner.output import video_output
from choreography.planner.planner import (
    plan_choreography,
    plan_sections,
    resolve_constraints,
    usable_candidates,
)
from choreography.planner.refinement import (
    RefinementRejected,
    SequenceRefinement,
    SlotChoice,
    SlotOptions,
    apply_refinement,
    slot_options,
)
from choreography.planner.window import choose_window
from schemas.blueprint import Blueprint
from schemas.events import Constraints
from tests.fixtures.synthetic_library import SectionSpec, grid_analysis, synthetic_candidates

CREATED = datetime(2026, 1, 1, tzinfo=UTC)
CONSTRAINTS = Constraints(style="hip-hop", difficulty="beginner")
# The second chorus copies the first; verse and bridge are planned freely.
SONG = [
    SectionSpec("verse", 2, 0.2),
    SectionSpec("chorus", 2, 0.9),
    SectionSpec("bridge", 2, 0.5),
    SectionSpec("chorus", 2, 0.9),
]
Answer = Callable[[dict[str, Any]], SequenceRefinement]


@dataclass
class FakeRefiner:
    """Answers with ``answer(request)``, or raises ``error``; keeps the requests it saw."""

    answer: Answer = lambda request: SequenceRefinement()
    error: Exception | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)

    def refine(self, request: dict[str, Any]) -> SequenceRefinement:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        return self.answer(request)


def candidates() -> list[MoveCandidate]:
    return synthetic_candidates(10, seed=4)


def plan(refiner: FakeRefiner | None = None) -> Blueprint:
    return plan_choreography(
        grid_analysis(120, SONG),
        CONSTRAINTS,
        candidates(),
        task_id="t-1",
        audio_uri="songs/test.wav",
        output=video_output("videos/t-1.mp4"),
        seed=1,
        created_at=CREATED,
        refiner=refiner,
    )


def free_slot_swap(request: dict[str, Any]) -> tuple[int, str]:
    """A slot no other slot repeats, and a candidate of it unlike both local neighbours."""
    slots = request["slots"]
    repeated = {s.get("repeats_slot") for s in slots}
    for entry in slots:
        i = entry["slot"]
        if "candidates" not in entry or i in repeated:
            continue
        neighbours = {slots[j]["local_move"] for j in (i - 1, i + 1) if 0 <= j < len(slots)}
        for option in entry["candidates"]:
            if option["id"] != entry["local_move"] and option["id"] not in neighbours:
                return i, option["id"]
    raise AssertionError("no swappable slot in the test plan")


def timing(blueprint: Blueprint) -> list[tuple[float, float, int]]:
    return [(m.timeline_start_s, m.timeline_end_s, m.counts) for m in blueprint.moves_used]


def test_without_a_refiner_the_plan_is_unchanged_and_deterministic() -> None:
    """No refiner: two runs give the same blueprint and no reason mentions Gemini."""
    first, second = plan(), plan()
    assert first == second
    assert not any("Gemini" in m.reason.text for m in first.moves_used)


def test_an_accepted_choice_changes_only_the_move_not_the_timing() -> None:
    """A valid swap replaces the move, keeps the planner's timing and says so in the reason."""
    local = plan()
    chosen: dict[str, Any] = {}

    def answer(request: dict[str, Any]) -> SequenceRefinement:
        chosen["slot"], chosen["move"] = free_slot_swap(request)
        return SequenceRefinement(
            choices=[SlotChoice(slot=chosen["slot"], move_id=chosen["move"])],
            reason="smoother cut",
        )

    refined = plan(FakeRefiner(answer))
    assert timing(refined) == timing(local)
    moved = refined.moves_used[chosen["slot"]]
    assert moved.move_id == chosen["move"] != local.moves_used[chosen["slot"]].move_id
    assert "Gemini refinement chose this over" in moved.reason.text
    assert "smoother cut" in moved.reason.text
    others = [m for i, m in enumerate(refined.moves_used) if i != chosen["slot"]]
    assert all("Gemini refinement kept this move" in m.reason.text for m in others)


def test_changing_a_repeated_slot_changes_its_repeat_too() -> None:
    """The choice for a chorus slot is danced again where the chorus repeats."""
    captured: list[int] = []

    def answer(request: dict[str, Any]) -> SequenceRefinement:
        repeated = {s["repeats_slot"] for s in request["slots"] if "repeats_slot" in s}
        for original in sorted(repeated):
            entry = request["slots"][original]
            copy = next(s["slot"] for s in request["slots"] if s.get("repeats_slot") == original)
            for option in entry["candidates"][1:]:
                around = {
                    request["slots"][k]["local_move"]
                    for k in (original - 1, original + 1, copy - 1, copy + 1)
                    if 0 <= k < len(request["slots"])
                }
                if option["id"] not in around:
                    captured.extend([original, copy])
                    return SequenceRefinement(
                        choices=[SlotChoice(slot=original, move_id=option["id"])]
                    )
        raise AssertionError("no repeated slot to change")

    refined = plan(FakeRefiner(answer))
    original, copy = captured
    assert refined.moves_used[copy].move_id == refined.moves_used[original].move_id
    assert refined.moves_used[copy].move_id != plan().moves_used[copy].move_id


@pytest.mark.parametrize(
    ("make_choices", "why"),
    [
        (lambda r: [SlotChoice(slot=0, move_id="not-in-the-library")], "not a candidate"),
        (lambda r: [SlotChoice(slot=len(r["slots"]), move_id="x")], "does not exist"),
        (
            lambda r: [SlotChoice(slot=0, move_id=r["slots"][0]["local_move"])] * 2,
            "answered twice",
        ),
        (
            lambda r: [SlotChoice(slot=0, move_id=r["slots"][1]["local_move"])],
            "would follow itself",
        ),
        (
            lambda r: [
                SlotChoice(slot=s["slot"], move_id=_other_move(r, s["local_move"]))
                for s in r["slots"]
                if "repeats_slot" in s
            ][:1],
            "repeated sections must stay identical",
        ),
    ],
    ids=["unknown-id", "unknown-slot", "slot-twice", "move-follows-itself", "repeat-differs"],
)
def test_a_rule_breaking_answer_keeps_the_local_plan(
    make_choices: Callable[[dict[str, Any]], list[SlotChoice]], why: str
) -> None:
    """Any broken rule rejects the whole answer: the local plan stays and each reason says why."""
    local = plan()
    refined = plan(FakeRefiner(lambda r: SequenceRefinement(choices=make_choices(r))))
    assert [m.move_id for m in refined.moves_used] == [m.move_id for m in local.moves_used]
    assert timing(refined) == timing(local)
    for move in refined.moves_used:
        assert "Gemini refinement rejected" in move.reason.text
        assert "local plan kept" in move.reason.text
    assert why in refined.moves_used[0].reason.text


def _other_move(request: dict[str, Any], move: str) -> str:
    return next(m["id"] for m in request["moves"] if m["id"] != move)


def test_a_failing_refiner_keeps_the_local_plan_with_the_error_named() -> None:
    """A refiner that raises (refusal, timeout) leaves the local plan, noted per move."""
    local = plan()
    refined = plan(FakeRefiner(error=TimeoutError("no answer in 20 s")))
    assert [m.move_id for m in refined.moves_used] == [m.move_id for m in local.moves_used]
    assert "Gemini refinement failed (TimeoutError: no answer in 20 s)" in (
        refined.moves_used[0].reason.text
    )


def test_the_request_is_a_compact_json_summary_of_the_plan() -> None:
    """The refiner sees sections, slots with candidates (local first) and the pose table."""
    refiner = FakeRefiner()
    local = plan(refiner)
    request = refiner.requests[0]
    json.dumps(request)  # JSON-ready, nothing numpy
    assert [s["local_move"] for s in request["slots"]] == [m.move_id for m in local.moves_used]
    assert [s["label"] for s in request["sections"]] == ["verse", "chorus", "bridge", "chorus"]
    assert request["sections"][3]["repeat_of"] == 1
    free = [s for s in request["slots"] if "candidates" in s]
    copies = [s for s in request["slots"] if "repeats_slot" in s]
    assert free and copies
    for entry in free:
        assert entry["candidates"][0]["id"] == entry["local_move"]
        assert {"placement_cost", "id"} <= set(entry["candidates"][0])
    ids = request["pose_jump_m"]["ids"]
    assert len(request["pose_jump_m"]["rows"]) == len(ids) == len(request["moves"])


def test_a_move_that_does_not_fit_the_slot_is_rejected_even_if_offered() -> None:
    """The fit is checked again: a move of another length is refused whatever the options say."""
    analysis = grid_analysis(120, SONG)
    mixed = [*candidates(), *synthetic_candidates(2, seed=9, counts=(16,))]
    mixed[-1] = _renamed(mixed[-1], "long-move")
    effective = resolve_constraints(analysis, CONSTRAINTS, mixed)
    usable, fits = usable_candidates(analysis, effective, mixed, "t-1")
    window = choose_window(analysis, None)
    model = CostModel(
        analysis, usable, fits, energy_level="medium", settings=PlannerSettings(), seed=1
    )
    placed = plan_sections(analysis, window, model)
    options = slot_options(placed, model)
    long_move = next(i for i, c in enumerate(usable) if c.move_id == "long-move")
    long_beats = int(model.beats[long_move])
    short_slot = next(i for i, p in enumerate(placed) if p.slot.beats != long_beats)
    options[short_slot] = SlotOptions((*options[short_slot].candidates, long_move), None)
    answer = SequenceRefinement(choices=[SlotChoice(slot=short_slot, move_id="long-move")])
    with pytest.raises(RefinementRejected, match="lasts"):
        apply_refinement(placed, answer, options, model)


def _renamed(candidate: MoveCandidate, move_id: str) -> MoveCandidate:
    from dataclasses import replace  # noqa: PLC0415

    return replace(candidate, move_id=move_id)
