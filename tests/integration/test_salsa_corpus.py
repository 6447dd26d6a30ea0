"""The salsa library cut from the real CMU captures: frame rate, tempo, glitches, continuity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from choreography.moves.bundle import MoveDraft, storage_key
from choreography.moves.model import next_move_of
from choreography.moves.salsa import ACKNOWLEDGEMENT, TEMPO_RANGE_BPM, SalsaReport, salsa_drafts
from choreography.moves.skeleton import centre_on_pelvis

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "cmu-mocap-salsa"
Built = tuple[list[MoveDraft], SalsaReport]
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus not at {CORPUS}")


@pytest.fixture(scope="module")
def built() -> Built:
    """Trial 03 (clean) and trial 10 (flagged upstream: tremble at the beginning)."""
    return salsa_drafts(CORPUS, trials=["03", "10"])


def test_every_take_is_sixty_fps_at_a_salsa_tempo(built: Built) -> None:
    drafts, report = built
    assert set(report.frame_rates) == {"60_03", "61_03", "60_10", "61_10"}
    assert set(report.frame_rates.values()) == {60.0}
    slow, fast = TEMPO_RANGE_BPM
    for grid in report.grids.values():
        assert slow <= grid.bpm <= fast
    assert {d.fps for d in drafts} == {60.0}


def test_the_flagged_tremble_at_the_start_of_60_10_is_dropped(built: Built) -> None:
    _, report = built
    early = [v for v in report.verdicts if v.take == "60_10" and v.start_s < 6.0]
    assert early and not any(v.kept for v in early[1:])  # the tremble is at 3-6 s
    named = {p.split(" (")[0] for v in early for p in v.problems}
    assert named & {"speed spike", "tremble"}
    assert any(v.kept for v in report.verdicts if v.take == "60_10")


def test_kept_windows_are_valid_moves_with_the_acknowledgement(built: Built) -> None:
    drafts, report = built
    assert len(drafts) == report.kept() > 20
    assert len({d.move_id for d in drafts}) == len(drafts)
    for draft in drafts:
        move = draft.as_move(storage_key(draft.style, draft.move_id))
        assert move.style == "salsa" and move.counts == 8
        assert ACKNOWLEDGEMENT in draft.description
        assert {"mocap", "cmu"} <= set(draft.tags)
        # Life size: the head joint of a standing adult is about 1.5 m above the floor.
        assert 1.2 < float(np.median(draft.keypoints[:, 3, 1])) < 1.8
    assert {d.difficulty for d in drafts} >= {"intermediate", "advanced"}


def test_consecutive_windows_of_a_take_join_without_a_jump(built: Built) -> None:
    """The end of window n is the frame before window n+1: the planner can chain them seamlessly."""
    drafts, _ = built
    by_id = {d.move_id: d for d in drafts}
    joined = 0
    for draft in drafts:
        prefix, number = draft.move_id.rsplit("-", 1)
        following = by_id.get(f"{prefix}-{int(number) + 1:02d}")
        # The next: tag names exactly the kept window that follows.
        assert next_move_of(draft.tags) == (following.move_id if following else None)
        if following is None:
            continue
        end = centre_on_pelvis(draft.keypoints[-1:])[0]
        start = centre_on_pelvis(following.keypoints[:1])[0]
        jump = float(np.linalg.norm(end - start, axis=-1).mean())
        step = np.linalg.norm(np.diff(centre_on_pelvis(draft.keypoints), axis=0), axis=-1)
        assert jump <= 3 * float(np.median(step.mean(axis=1))) + 1e-4, draft.move_id
        joined += 1
    assert joined > 10
