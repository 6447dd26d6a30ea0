"""Planner variety (no move or family repeated outside repeated sections) and request fidelity."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from choreography.music.model import MusicAnalysis
from choreography.planner.candidates import MoveCandidate, move_family
from choreography.planner.costs import CostModel, PlannerSettings
from choreography.planner.output import video_output
from choreography.planner.planner import (
    plan_choreography,
    resolve_constraints,
    usable_candidates,
)
from schemas.blueprint import Blueprint, MoveUsed
from schemas.events import Constraints
from schemas.settings import BlueprintConsumerSettings
from tests.fixtures.synthetic_library import SectionSpec, grid_analysis, synthetic_candidates

CREATED = datetime(2026, 1, 1, tzinfo=UTC)
# 1 + 3 + 2 fresh phrases; the second "a" (3 phrases) and the second "b" are repeats.
SONG = [
    SectionSpec("intro", 1, 0.3),
    SectionSpec("a", 3, 0.4),
    SectionSpec("b", 2, 0.9),
    SectionSpec("a", 3, 0.4),
    SectionSpec("b", 2, 0.9),
]
FRESH_PHRASES = 6


def plan(
    analysis: MusicAnalysis,
    candidates: list[MoveCandidate],
    constraints: Constraints,
    planner: PlannerSettings | None = None,
    seed: int = 1,
) -> Blueprint:
    """The planner with fixed ids and creation time."""
    return plan_choreography(
        analysis,
        constraints,
        candidates,
        task_id="t-1",
        audio_uri="songs/test.wav",
        output=video_output("videos/t-1.mp4"),
        seed=seed,
        settings=planner,
        created_at=CREATED,
    )


def fresh(blueprint: Blueprint) -> list[MoveUsed]:
    """Moves planned afresh: every move but a repeated section's copies."""
    return [m for m in blueprint.moves_used if "repeats section" not in m.reason.text]


def family_of(candidates: list[MoveCandidate]) -> dict[str, str]:
    """Move id -> family."""
    return {c.move_id: c.family for c in candidates}


def library(
    levels: list[tuple[str, str]], *, seed: int = 5, names: list[str] | None = None
) -> list[MoveCandidate]:
    """Hip-hop candidates with the given (difficulty, energy) each, equal scores, own names."""
    base = synthetic_candidates(len(levels), seed=seed, tempo_spread=0.03)
    return [
        replace(
            c,
            move_id=f"m-{i:02d}",
            name=names[i] if names else f"Family {i} ({d}, {e})",
            difficulty=d,
            energy=e,
            score=0.5,
        )
        for i, (c, (d, e)) in enumerate(zip(base, levels, strict=True))
    ]


def test_move_family_drops_the_parenthesised_variant() -> None:
    """Variants named "Name (level, energy)" share a family; other names are their own."""
    assert move_family("Rock Punch (advanced, low)") == "rock-punch"
    assert move_family("Rock Punch (beginner, high)") == "rock-punch"
    assert move_family("salsa-03 part 2") == "salsa-03-part-2"
    assert move_family("(only a variant)") == ""
    assert replace(library([("beginner", "low")])[0], name="(x)").family == "m-00"


def _fresh_families(library_seed: int, plan_seed: int, spare: int) -> list[str]:
    analysis = grid_analysis(120, SONG)
    candidates = synthetic_candidates(FRESH_PHRASES + spare, seed=library_seed, tempo_spread=0.03)
    blueprint = plan(analysis, candidates, Constraints(style="hip-hop"), seed=plan_seed)
    families = family_of(candidates)
    return [families[m.move_id] for m in fresh(blueprint)]


# Derandomized: the reuse penalty is a greedy approximation in the sequencer (its docstring),
# and random draws found the 3 libraries below where it repeats a family (3 of the 2,505
# library and spare combinations with plan seed 0). A CI run must not pass or fail by luck.
@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.integers(0, 500), st.integers(0, 2**16), st.integers(0, 4))
def test_no_move_repeats_outside_repeated_sections_when_the_library_has_enough(
    library_seed: int, plan_seed: int, spare: int
) -> None:
    """With as many fitting families as fresh phrases, no fresh move reuses a move or family."""
    placed = _fresh_families(library_seed, plan_seed, spare)
    assert len(placed) == FRESH_PHRASES
    assert len(set(placed)) == len(placed), placed


@pytest.mark.xfail(
    strict=True,
    reason="known: the sequencer's reuse penalty follows each state's cheapest path only, so a "
    "cheaper early path can hide the one without a repeated family (sequencer.py docstring)",
)
@pytest.mark.parametrize("library_seed", [118, 226, 406])
def test_libraries_where_the_greedy_reuse_repeats_a_family(library_seed: int) -> None:
    """Found by the property test above with random draws; exactly as many families as fresh
    phrases, and one family is placed twice. When the sequencer is exact, these pass."""
    placed = _fresh_families(library_seed, 0, 0)
    assert len(set(placed)) == len(placed), placed


def test_variants_count_as_one_family_and_the_penalty_setting_decides() -> None:
    """Variants of one high-scored family are spread out by default, reused with penalty 0."""
    analysis = grid_analysis(120, SONG)
    variants = [("beginner", e) for e in ("low", "medium", "high")] * 2
    others = [("beginner", "medium")] * FRESH_PHRASES
    names = [f"Rock Punch (v{i})" for i in range(6)] + [f"Other {i}" for i in range(6)]
    candidates = [
        replace(c, score=0.9 if c.name.startswith("Rock") else 0.1)
        for c in library(variants + others, names=names)
    ]
    families = family_of(candidates)

    def rock_punches(planner: PlannerSettings | None) -> int:
        blueprint = plan(analysis, candidates, Constraints(style="hip-hop"), planner)
        return sum(families[m.move_id] == "rock-punch" for m in fresh(blueprint))

    assert rock_punches(None) == 1
    assert rock_punches(PlannerSettings(w_variety=0.0)) > 1


def test_the_variety_penalty_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """``PLANNER_VARIETY_PENALTY`` sets the planner's family reuse weight (default 2.0)."""
    monkeypatch.delenv("PLANNER_VARIETY_PENALTY", raising=False)
    assert PlannerSettings.of(BlueprintConsumerSettings()).w_variety == 2.0
    assert PlannerSettings().w_variety == 2.0
    monkeypatch.setenv("PLANNER_VARIETY_PENALTY", "0.5")
    assert PlannerSettings.of(BlueprintConsumerSettings()).w_variety == 0.5


def test_requested_levels_are_all_the_viewer_gets_when_the_library_has_enough() -> None:
    """Enough advanced medium-energy families: no other level is placed, nothing substituted,
    even when the others score far better and substitutes cost nothing extra (a filter)."""
    analysis = grid_analysis(120, SONG)
    exact = [("advanced", "medium")] * (FRESH_PHRASES + 1)
    near = [("advanced", "high"), ("intermediate", "medium"), ("beginner", "low")] * 3
    candidates = [
        replace(c, score=0.1 if (c.difficulty, c.energy) == ("advanced", "medium") else 0.9)
        for c in library(exact + near)
    ]
    request = Constraints(style="hip-hop", difficulty="advanced", energy="medium")
    blueprint = plan(analysis, candidates, request, PlannerSettings(w_substitute=0.0))
    levels = {c.move_id: (c.difficulty, c.energy) for c in candidates}
    assert {levels[m.move_id] for m in blueprint.moves_used} == {("advanced", "medium")}
    assert blueprint.request.substitutions == []


def test_too_few_requested_moves_let_in_the_nearest_levels_and_the_blueprint_says_so() -> None:
    """One advanced medium move: advanced moves of other energies fill in, recorded with why."""
    analysis = grid_analysis(120, SONG)
    levels = [("advanced", "medium"), ("advanced", "low"), *[("advanced", "high")] * 4]
    levels += [("intermediate", "medium"), ("beginner", "medium")] * 2
    candidates = library(levels)
    request = Constraints(style="hip-hop", difficulty="advanced", energy="medium")
    blueprint = plan(analysis, candidates, request)
    by_id = {c.move_id: c for c in candidates}
    placed = [by_id[m.move_id] for m in blueprint.moves_used]
    # The advanced moves of other energies bring the 6 families needed: difficulty is kept.
    assert {c.difficulty for c in placed} == {"advanced"}
    assert {c.energy for c in placed} > {"medium"}
    subs = blueprint.request.substitutions
    assert {(s.field, s.requested) for s in subs} == {("energy", "medium")}
    for sub in subs:
        ids = [c.move_id for c in placed if c.energy == sub.given]
        assert sub.placements == len(ids)
        assert sub.move_ids == list(dict.fromkeys(ids))
        assert "1 candidate move in 1 family at difficulty advanced and energy medium" in (
            sub.reason
        )


def test_nothing_at_the_requested_level_is_recorded_as_such() -> None:
    """No move at the requested energy: the plan uses the nearest and names the gap."""
    analysis = grid_analysis(120, SONG)
    candidates = library([("beginner", "low")] * 8)
    request = Constraints(style="hip-hop", difficulty="beginner", energy="high")
    blueprint = plan(analysis, candidates, request)
    (sub,) = blueprint.request.substitutions
    assert (sub.field, sub.requested, sub.given) == ("energy", "high", "low")
    assert sub.placements == len(blueprint.moves_used)
    assert sub.reason.startswith("no candidate move at difficulty beginner and energy high")
    assert sub.line().startswith(
        f"energy: asked high, given low in {sub.placements} placements ({sub.move_ids[0]}, "
    )


def test_allow_repeats_keeps_to_the_requested_levels() -> None:
    """Two exact moves and repeats allowed: only they are placed; without it, substitutes too."""
    analysis = grid_analysis(120, SONG)
    candidates = library([("intermediate", "high")] * 2 + [("intermediate", "medium")] * 6)
    asked = {"style": "hip-hop", "difficulty": "intermediate", "energy": "high"}
    energies = {c.move_id: c.energy for c in candidates}

    strict = plan(analysis, candidates, Constraints(**asked, allow_repeats=True))
    assert {energies[m.move_id] for m in strict.moves_used} == {"high"}
    assert strict.request.substitutions == []
    assert strict.request.constraints.allow_repeats is True

    varied = plan(analysis, candidates, Constraints(**asked))
    assert "medium" in {energies[m.move_id] for m in varied.moves_used}
    assert varied.request.substitutions[0].given == "medium"
    assert "without repeating a move" in varied.request.substitutions[0].reason


def test_a_repeat_copies_the_longest_earlier_section_of_its_label() -> None:
    """The second "a" copies the first full "a", not the one-phrase "a" the song opens with."""
    analysis = grid_analysis(120, [SectionSpec("a", 1, 0.3), *SONG[1:]])
    blueprint = plan(analysis, synthetic_candidates(10, seed=3), Constraints(style="hip-hop"))
    by_section: dict[int, list[str]] = {}
    for move in blueprint.moves_used:
        by_section.setdefault(move.section.index, []).append(move.move_id)
    assert blueprint.moves_used[-1].section.repeat_of == 2
    assert [m.section.repeat_of for m in blueprint.moves_used if m.section.index == 3] == [1] * 3
    assert by_section[3] == by_section[1]


def test_an_easier_difficulty_comes_in_only_when_the_energies_run_out_of_families() -> None:
    """Two advanced families for six fresh phrases: intermediate ones fill in, recorded."""
    analysis = grid_analysis(120, SONG)
    candidates = library(
        [("advanced", "medium"), ("advanced", "high")] + [("intermediate", "medium")] * 5
    )
    request = Constraints(style="hip-hop", difficulty="advanced", energy="medium")
    blueprint = plan(analysis, candidates, request)
    fields = {(s.field, s.requested, s.given) for s in blueprint.request.substitutions}
    assert ("difficulty", "advanced", "intermediate") in fields
    levels = {c.move_id: c.difficulty for c in candidates}
    assert "advanced" in {levels[m.move_id] for m in blueprint.moves_used}


def test_a_pool_that_cannot_fill_a_section_gives_way_to_every_usable_move() -> None:
    """Requested moves all 16 counts long cannot fill a one-phrase intro: others do, named."""
    analysis = grid_analysis(120, [SectionSpec("intro", 1, 0.3), SectionSpec("a", 4, 0.6)])
    long = [
        replace(c, move_id=f"long-{i}", name=f"Long {i}", energy="high", score=0.5)
        for i, c in enumerate(synthetic_candidates(2, seed=2, counts=(16,), tempo_spread=0.03))
    ]
    candidates = long + library([("beginner", "medium")] * 3)
    asked = Constraints(style="hip-hop", difficulty="beginner", energy="high", allow_repeats=True)
    blueprint = plan(analysis, candidates, asked)
    (sub,) = blueprint.request.substitutions
    assert (sub.field, sub.requested, sub.given) == ("energy", "high", "medium")
    assert sub.reason.endswith("the moves nearer the request could not fill every section")
    assert blueprint.moves_used[0].move_id.startswith("m-")


def test_reuse_cost_counts_a_family_once_per_use_of_any_variant() -> None:
    """Uses of a move add w_repeat to it and w_variety to every move of its family, per row."""
    analysis = grid_analysis(120, SONG)
    names = ["Kick (low)", "Other", "Kick (high)"]
    candidates = library([("beginner", "low")] * 3, names=names)
    usable, fits = usable_candidates(
        analysis, resolve_constraints(analysis, None, candidates), candidates, "t-1"
    )
    model = CostModel(
        analysis,
        usable,
        fits,
        energy_level="medium",
        settings=PlannerSettings(w_repeat=1.0, w_variety=10.0),
        seed=0,
    )
    order = [c.name for c in usable]
    uses = np.zeros((2, 3))
    uses[0, order.index("Kick (low)")] = 1
    uses[1, order.index("Other")] = 2
    cost = {name: model.reuse(uses)[:, i].tolist() for i, name in enumerate(order)}
    assert cost == {"Kick (low)": [11.0, 0.0], "Other": [0.0, 22.0], "Kick (high)": [10.0, 0.0]}
    assert model.reuse(np.zeros(0)).shape == (0,)
