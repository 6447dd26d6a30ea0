"""Revisions: kept bars' moves stay exactly; redone bars are re-planned by the planner's rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest

from choreography.music.model import MusicAnalysis
from choreography.planner.candidates import MoveCandidate, pose_distance
from choreography.planner.output import video_output
from choreography.planner.parent_grid import on_parent_grid
from choreography.planner.planner import plan_choreography
from choreography.planner.revision import (
    KEPT_FIELDS,
    RevisedPlan,
    RevisionInputs,
    move_bars,
    plan_revision,
)
from schemas.bar_spans import BadBars, BarSpan, format_bars, parse_bars
from schemas.blueprint import Blueprint
from schemas.errors import InvalidInput
from schemas.events import Constraints
from tests.fixtures.synthetic_library import SectionSpec, grid_analysis, synthetic_candidates

CREATED = datetime(2026, 1, 1, tzinfo=UTC)
CONSTRAINTS = Constraints(style="hip-hop", difficulty="beginner")
# verse (bars 1-8), chorus (9-16), verse again (17-24, repeats section 0), chorus (25-32).
SONG = [
    SectionSpec("verse", 4, 0.2),
    SectionSpec("chorus", 4, 0.9),
    SectionSpec("verse", 4, 0.2),
    SectionSpec("chorus", 4, 0.9),
]
ANALYSIS = grid_analysis(120, SONG)
CANDIDATES = synthetic_candidates(12, seed=3)
LIBRARY = {c.move_id: c for c in CANDIDATES}


@pytest.fixture(scope="module")
def parent() -> Blueprint:
    """A 32-bar blueprint (2-bar moves) planned by the planner itself."""
    return plan_choreography(
        ANALYSIS,
        CONSTRAINTS,
        CANDIDATES,
        task_id="parent",
        audio_uri="songs/song.wav",
        output=video_output("videos/parent.mp4"),
        seed=1,
        created_at=CREATED,
    )


def revise(
    parent: Blueprint,
    keep: str,
    redo: str,
    *,
    analysis: object = ANALYSIS,
    candidates: list[MoveCandidate] | None = None,
) -> Blueprint:
    """``plan_revision``'s blueprint for ``parent``, bars written as on the command line."""
    return revise_plan(parent, keep, redo, analysis=analysis, candidates=candidates).blueprint


def revise_plan(
    parent: Blueprint,
    keep: str,
    redo: str,
    *,
    analysis: object = ANALYSIS,
    candidates: list[MoveCandidate] | None = None,
) -> RevisedPlan:
    """``plan_revision`` of ``parent`` with bars written as on the command line."""
    return plan_revision(
        RevisionInputs(
            parent,
            parse_bars(keep) if keep else [],
            parse_bars(redo),
            "child",
            video_output("videos/child.mp4"),
        ),
        analysis,  # type: ignore[arg-type]
        CONSTRAINTS,
        candidates or CANDIDATES,
        LIBRARY,
        seed=1,
        created_at=CREATED,
    )


def by_first_bar(blueprint: Blueprint) -> dict[int, object]:
    """Each move by the bar it starts on."""
    return {m.first: m.move for m in move_bars(blueprint)}


def test_kept_moves_are_the_parents_field_by_field(parent: Blueprint) -> None:
    """Every kept move has the parent's move, clip span, timeline span, speed and mirror."""
    child = revise(parent, "1-4,17-32", "5-16")
    kept = {bar: move for bar, move in by_first_bar(child).items() if bar < 5 or bar >= 17}
    before = by_first_bar(parent)
    assert kept
    for bar, move in kept.items():
        for field in KEPT_FIELDS:
            assert getattr(move, field) == getattr(before[bar], field), (bar, field)


def test_redone_bars_get_other_moves_and_the_revision_is_recorded(parent: Blueprint) -> None:
    """No redone place keeps its old move; the blueprint names its parent and the bars."""
    plan = revise_plan(parent, "1-4", "5-8,13-16")
    child = plan.blueprint
    before, after = by_first_bar(parent), by_first_bar(child)
    for bar in (5, 7, 13, 15):
        assert after[bar].move_id != before[bar].move_id, bar  # type: ignore[attr-defined]
        assert "re-planned in a revision of task parent" in after[bar].reason.text  # type: ignore[attr-defined]
    assert plan.detail() == {
        "revision_of": "parent",
        "kept_bars": "1-4,9-12,17-32",
        "redone_bars": "5-8,13-16",
    }
    assert child.task_id == "child"
    assert child.video_output.uri == "videos/child.mp4"


def test_a_seamless_move_is_chosen_at_both_seams(parent: Blueprint) -> None:
    """A move whose edge poses continue the kept neighbours exactly wins the redone slot."""
    before = by_first_bar(parent)
    left, right = LIBRARY[before[3].move_id], LIBRARY[before[7].move_id]  # type: ignore[attr-defined]
    template = LIBRARY[before[5].move_id]  # type: ignore[attr-defined]
    seamless = replace(
        template,
        move_id="seamless",
        name="Seamless",
        start_pose=left.end_pose,
        end_pose=right.start_pose,
    )
    child = revise(parent, "1-4,7-32", "5-6", candidates=[*CANDIDATES, seamless])
    moves = by_first_bar(child)
    assert moves[5].move_id == "seamless"  # type: ignore[attr-defined]
    assert moves[5].reason.transition_cost == 0  # type: ignore[attr-defined]
    assert moves[7].reason.transition_cost == 0  # type: ignore[attr-defined]
    assert moves[5].transition_in.type == "cut"  # type: ignore[attr-defined]


def test_the_seam_jump_is_scored_and_recorded(parent: Blueprint) -> None:
    """The pose jump into the first redone move is the one between the kept and the new move."""
    child = revise(parent, "", "9-12")
    moves = by_first_bar(child)
    kept, new = LIBRARY[moves[7].move_id], LIBRARY[moves[9].move_id]  # type: ignore[attr-defined]
    jump = pose_distance(kept.end_pose, new.start_pose)
    assert moves[9].reason.transition_cost == pytest.approx(jump, abs=1e-4)  # type: ignore[attr-defined]


def test_a_repeat_redone_with_its_source_copies_the_new_moves(parent: Blueprint) -> None:
    """Redoing both verses keeps the second verse a copy of the first."""
    child = revise(parent, "", "1-8,17-24")
    moves = by_first_bar(child)
    first = [moves[b].move_id for b in (1, 3, 5, 7)]  # type: ignore[attr-defined]
    second = [moves[b].move_id for b in (17, 19, 21, 23)]  # type: ignore[attr-defined]
    assert first == second
    assert first != [by_first_bar(parent)[b].move_id for b in (1, 3, 5, 7)]  # type: ignore[attr-defined]
    assert moves[17].section.repeat_of == 0  # type: ignore[attr-defined]


def test_a_repeat_whose_source_alone_is_redone_keeps_its_moves(parent: Blueprint) -> None:
    """Redoing only the first verse leaves the second verse as the parent had it."""
    child = revise(parent, "", "1-8")
    before, after = by_first_bar(parent), by_first_bar(child)
    for bar in (17, 19, 21, 23):
        assert after[bar].move_id == before[bar].move_id  # type: ignore[attr-defined]


def test_kept_bars_on_moved_beats_are_refused_by_name(parent: Blueprint) -> None:
    """A song whose beats moved (another tempo) refuses the kept bars, naming them."""
    changed = grid_analysis(121, SONG)
    with pytest.raises(InvalidInput, match=r"kept bars 1-4,9-32 no longer fit the song"):
        revise(parent, "", "5-8", analysis=changed)


def test_unchanged_audio_is_planned_on_the_parents_grid(parent: Blueprint) -> None:
    """The same audio analysed differently now (a newer analysis version: 121 instead of 120
    BPM): the kept bars are the parent's exactly, and so is the song's grid."""
    plan = plan_revision(
        RevisionInputs(
            parent, [], parse_bars("5-8"), "child", video_output("videos/child.mp4"),
            same_audio=True, song_id="ignored",
        ),
        grid_analysis(121, SONG),
        CONSTRAINTS,
        CANDIDATES,
        LIBRARY,
        seed=1,
        created_at=CREATED,
    )  # fmt: skip
    child, before = plan.blueprint, by_first_bar(parent)
    assert child.song == parent.song
    kept = {bar: move for bar, move in by_first_bar(child).items() if bar not in (5, 7)}
    assert len(kept) == 14
    for bar, move in kept.items():
        for field in KEPT_FIELDS:
            assert getattr(move, field) == getattr(before[bar], field), (bar, field)
    assert plan.redone_bars == "5-8"


def test_the_parents_grid_keeps_its_beats_and_takes_the_energy_now(parent: Blueprint) -> None:
    """On the parent's grid: its beats and 8-counts; the energy of the analysis now (here the
    same song counted twice as fast) at those beats."""
    same = on_parent_grid(parent, ANALYSIS)
    assert same.beats_s == ANALYSIS.beats_s and same.downbeats_s == ANALYSIS.downbeats_s
    assert [p.first_beat for p in same.phrases] == [p.first_beat for p in ANALYSIS.phrases]
    assert np.allclose(same.energy_per_beat, ANALYSIS.energy_per_beat)
    doubled = on_parent_grid(parent, grid_analysis(240, SONG))
    assert doubled.beats_s == ANALYSIS.beats_s and doubled.tempo_bpm == ANALYSIS.tempo_bpm
    assert len(doubled.energy_per_beat) == len(ANALYSIS.beats_s)


def _shifted(analysis: MusicAnalysis, seconds: float) -> MusicAnalysis:
    """The same analysis with every time ``seconds`` later (audio with silence put in front)."""
    data = analysis.model_dump()
    data["duration_s"] += seconds
    data["beats_s"] = [t + seconds for t in data["beats_s"]]
    data["downbeats_s"] = [t + seconds for t in data["downbeats_s"]]
    for span in (*data["phrases"], *data["sections"]):
        span["start_s"] += seconds
        span["end_s"] += seconds
    return MusicAnalysis.model_validate(data)


def test_redoing_bar_one_of_changed_audio_is_refused_by_name(parent: Blueprint) -> None:
    """Audio 50 ms later (silence put in front), every bar redone: bar 1 would start off the
    video's start; refused naming bar 1, not with a schema message about the first move."""
    later = _shifted(grid_analysis(120, SONG), 0.05)
    with pytest.raises(InvalidInput, match=r"bar 1 no longer fits the song: .* now at 0\.250 s"):
        revise(parent, "", "1-32", analysis=later)


def test_kept_bars_past_a_shorter_song_are_refused_by_name(parent: Blueprint) -> None:
    """A song now shorter than the parent's window names the kept bars past its end."""
    shorter = grid_analysis(120, SONG[:3])
    with pytest.raises(InvalidInput, match=r"kept bars 25-32 no longer fit.*past the song's end"):
        revise(parent, "", "1-8", analysis=shorter)


def test_a_move_both_kept_and_redone_is_refused(parent: Blueprint) -> None:
    """Keeping bar 5 and redoing bar 6 of one 2-bar move names the move's bars."""
    with pytest.raises(InvalidInput, match=r"bars 5-6 are one move .*keep or redo all of 5-6"):
        revise(parent, "5", "6")


def test_bars_in_neither_list_follow_their_move(parent: Blueprint) -> None:
    """Redoing bar 6 alone redoes the whole move on bars 5-6."""
    assert revise_plan(parent, "", "6").redone_bars == "5-6"


def test_bars_past_the_blueprint_are_refused(parent: Blueprint) -> None:
    """A redo past bar 32 names the bars and the blueprint's range."""
    with pytest.raises(InvalidInput, match=r"--redo bars 33-40 are past .* bars 1-32"):
        revise(parent, "", "30-40")


def test_overlapping_keep_and_redo_are_refused(parent: Blueprint) -> None:
    """A bar in both lists is named."""
    with pytest.raises(InvalidInput, match=r"bars 3-4 are in both --keep and --redo"):
        revise(parent, "1-4", "3-8")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "is empty"),
        ("a-b", "'a-b' is not a bar or a range"),
        ("0-3", "bar 0 does not exist"),
        ("8-2", "'8-2' ends before it starts"),
        ("1-", "'1-' is not a bar"),
        ("1,,2", "'' is not a bar"),
        ("99999", "past the largest bar number"),
    ],
)
def test_bad_bars_text_gets_a_clear_error(text: str, problem: str) -> None:
    """Each malformed BARS text names the option and the part that is wrong."""
    with pytest.raises(BadBars, match=f"--keep.*{problem}"):
        parse_bars(text, option="--keep")


def test_bars_text_reads_and_writes_back_merged() -> None:
    """``1-8, 9,17-24`` reads as three spans and writes back merged."""
    spans = parse_bars("1-8, 9,17-24")
    assert spans == [BarSpan(first=1, last=8), BarSpan(first=9, last=9), BarSpan(first=17, last=24)]
    assert format_bars({b for s in spans for b in s.bars()}) == "1-9,17-24"


def test_revision_is_deterministic(parent: Blueprint) -> None:
    """The same revision twice gives the same moves (the planner's seed decides ties)."""
    a = revise(parent, "1-8", "9-16")
    b = revise(parent, "1-8", "9-16")
    assert [m.move_id for m in a.moves_used] == [m.move_id for m in b.moves_used]
    assert np.isclose(a.moves_used[-1].timeline_end_s, parent.moves_used[-1].timeline_end_s)


PAIR = synthetic_candidates(2, seed=5)
ONE_SECTION = grid_analysis(120, [SectionSpec("a", 4, 0.5)])


@pytest.fixture(scope="module")
def alternating() -> Blueprint:
    """An 8-bar blueprint of two moves taking turns (a move never follows itself)."""
    return plan_choreography(
        ONE_SECTION,
        CONSTRAINTS,
        PAIR,
        task_id="pair",
        audio_uri="songs/song.wav",
        output=video_output("videos/pair.mp4"),
        created_at=CREATED,
    )


def revise_pair(parent: Blueprint, redo: str, candidates: list[MoveCandidate]) -> Blueprint:
    """``plan_revision`` of the two-move blueprint with only ``candidates`` searchable."""
    return plan_revision(
        RevisionInputs(parent, [], parse_bars(redo), "child", video_output("videos/c.mp4")),
        ONE_SECTION,
        CONSTRAINTS,
        candidates,
        {c.move_id: c for c in PAIR},
        created_at=CREATED,
    ).blueprint


def test_a_replaced_move_comes_back_rather_than_a_move_following_itself(
    alternating: Blueprint,
) -> None:
    """Between two kept A's only B avoids A following A, so the replaced B is placed again."""
    before = [m.move_id for m in alternating.moves_used]
    after = [m.move_id for m in revise_pair(alternating, "3-4", PAIR).moves_used]
    assert after == before


def test_redo_bars_nothing_can_fill_are_refused_by_name(alternating: Blueprint) -> None:
    """Only 4-bar moves searchable for a 2-bar redo: the redo bars are named as unfillable."""
    long_moves = synthetic_candidates(3, seed=5, counts=(16,))
    with pytest.raises(InvalidInput, match=r"redo bars 3-4 of task pair: .*follow themselves"):
        revise_pair(alternating, "3-4", long_moves)


def test_a_kept_move_gone_from_the_library_is_refused(alternating: Blueprint) -> None:
    """A kept move neither searchable nor in the library cannot be kept; the bars are named."""
    gone = alternating.moves_used[0].move_id
    other = [c for c in PAIR if c.move_id != gone]
    with pytest.raises(InvalidInput, match=rf"kept move {gone} \(bars 1-2\) is not in the move"):
        plan_revision(
            RevisionInputs(
                alternating, [], parse_bars("3-4"), "child", video_output("videos/c.mp4")
            ),
            ONE_SECTION,
            CONSTRAINTS,
            other,
            {c.move_id: c for c in other},
            created_at=CREATED,
        )


def test_a_style_override_changes_only_the_redone_moves(parent: Blueprint) -> None:
    """Redoing bars in pop: the new moves are pop, the kept hip-hop moves stay, and the
    blueprint's constraints say pop."""
    pop = [
        replace(c, move_id=f"pop-{i}", clip_uri=f"moves/pop/pop-{i}.mp4", style="pop")
        for i, c in enumerate(synthetic_candidates(8, seed=9))
    ]
    child = plan_revision(
        RevisionInputs(parent, [], parse_bars("9-16"), "child", video_output("videos/c.mp4")),
        ANALYSIS,
        Constraints(style="pop", difficulty="beginner"),
        [*pop, *CANDIDATES],
        LIBRARY,
        created_at=CREATED,
    ).blueprint
    moves = by_first_bar(child)
    assert {moves[b].move_id[:4] for b in (9, 11, 13, 15)} == {"pop-"}  # type: ignore[attr-defined]
    assert all(not moves[b].move_id.startswith("pop-") for b in (1, 3, 5, 7, 17))  # type: ignore[attr-defined]
    assert child.request.constraints.style == "pop"
