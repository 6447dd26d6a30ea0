"""How a render groups its missing pieces into FFmpeg runs (stretches)."""

from __future__ import annotations

from pathlib import Path

from job.assemble import MAX_STRETCH_MOVES, MIN_STRETCH_FRAMES, plan_stretches
from job.timeline import ClipFile, Piece, SourceSpan

CLIP = ClipFile(Path("/in/a.mp4"), "a" * 64)


def _pieces(frames: list[int], moves: list[int]) -> list[Piece]:
    pieces, start = [], 0
    for count, move in zip(frames, moves, strict=True):
        pieces.append(Piece("segment", move, start, count, (SourceSpan(CLIP, 0.0, 1.0, False),)))
        start += count
    return pieces


def test_scattered_missing_pieces_share_a_run_and_a_repeated_piece_renders_once() -> None:
    """Cached pieces in between do not cut a stretch; a key seen before is not rendered again."""
    pieces = _pieces([30] * 6, [0, 0, 1, 1, 2, 2])
    keys = ["a", "b", "c", "d", "a", "f"]
    done = [False, True, False, True, False, False]
    assert plan_stretches(pieces, keys, done, workers=1) == [[0, 2, 5]]


def test_stretches_shrink_towards_the_end_and_hold_few_moves() -> None:
    """Long runs first, then shorter ones down to the minimum, so the workers end together; no
    run reads more than ``MAX_STRETCH_MOVES`` moves."""
    pieces = _pieces([30] * 80, [slot // 4 for slot in range(80)])
    stretches = plan_stretches(pieces, [str(i) for i in range(80)], [False] * 80, workers=2)
    assert sorted(slot for stretch in stretches for slot in stretch) == list(range(80))
    lengths = [sum(pieces[slot].frames for slot in stretch) for stretch in stretches]
    assert lengths[0] > lengths[-2] >= MIN_STRETCH_FRAMES
    assert all(len({pieces[s].move_index for s in stretch}) <= MAX_STRETCH_MOVES
               for stretch in stretches)  # fmt: skip
    assert len(plan_stretches(pieces, [str(i) for i in range(80)], [True] * 80)) == 0
