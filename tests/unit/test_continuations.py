"""Continuations: windows cut from one capture are offered to the planner together."""

from __future__ import annotations

import numpy as np

from choreography.moves.model import Move, next_move_of
from choreography.moves.skeleton import rest_pose
from choreography.planner.candidates import MoveCandidate, candidate_from_move
from choreography.planner.pipeline import CONTINUATION_DEPTH, with_continuations
from schemas.errors import NotFound


def window(number: int, *, difficulty: str = "beginner", style: str = "salsa",
           last: int = 9) -> Move:  # fmt: skip
    tags = ("mocap",) + ((f"next:take-{number + 1:02d}",) if number < last else ())
    keypoints = np.repeat(rest_pose()[None], 30, axis=0)
    return Move(
        move_id=f"take-{number:02d}", name=f"take window {number}", description="",
        style=style, difficulty=difficulty, energy="medium", tempo_bpm=170.0, counts=8,
        clip_uri=f"moves/{style}/take-{number:02d}.mp4", tags=tags, keypoints=keypoints, fps=30.0,
    )  # fmt: skip


class Loader:
    def __init__(self, moves: list[Move]) -> None:
        self.by_id = {m.move_id: m for m in moves}

    def candidate(self, move_id: str, score: float) -> MoveCandidate:
        if move_id not in self.by_id:
            raise NotFound(f"no move {move_id}")
        return candidate_from_move(self.by_id[move_id], score)


def test_the_next_tag_names_the_following_window() -> None:
    assert next_move_of(("mocap", "next:take-04")) == "take-04"
    assert next_move_of(("mocap",)) is None
    assert candidate_from_move(window(3), 0.5).next_move_id == "take-04"


def test_continuations_follow_each_hit_up_to_the_depth_with_its_score() -> None:
    moves = [window(n) for n in range(1, 10)]
    loader = Loader(moves)
    found = [loader.candidate("take-01", 0.9)]
    chosen = with_continuations(found, loader, ("beginner",))
    assert [c.move_id for c in chosen] == [
        f"take-{n:02d}" for n in range(1, 2 + CONTINUATION_DEPTH)
    ]
    assert {c.score for c in chosen} == {0.9}


def test_continuations_skip_missing_off_level_and_other_style_windows() -> None:
    moves = [window(1), window(2, difficulty="advanced"), window(4), window(5, style="pop")]
    loader = Loader(moves)
    assert [c.move_id for c in with_continuations([loader.candidate("take-01", 1.0)], loader,
                                                  ("beginner",))] == ["take-01"]  # fmt: skip
    # No ceiling: the advanced window continues the beginner one; 03 is missing, so it stops.
    chosen = with_continuations([loader.candidate("take-01", 1.0)], loader, None)
    assert [c.move_id for c in chosen] == ["take-01", "take-02"]
    four = loader.candidate("take-04", 1.0)
    assert [c.move_id for c in with_continuations([four], loader, None)] == ["take-04"]


def test_a_hit_already_found_is_not_added_twice() -> None:
    loader = Loader([window(1), window(2)])
    found = [loader.candidate("take-02", 0.2), loader.candidate("take-01", 0.8)]
    chosen = with_continuations(found, loader, None)
    assert [(c.move_id, c.score) for c in chosen] == [("take-02", 0.2), ("take-01", 0.8)]
    assert chosen[0].next_move_id == "take-03"  # named, but not in the library: skipped
