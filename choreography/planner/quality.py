"""Quality figures of a planned blueprint: cuts on beats, Beat Align Score, repeats, pose jumps.

Beat Align Score (BAS) follows Bailando (Li et al., CVPR 2022), ``BA`` and ``calc_db`` in
``utils/beat_align_score.py`` of github.com/lisiyao21/Bailando: for every music beat, the
squared distance (in frames) to the nearest motion beat, through ``exp(-d^2 / (2 * 3^2))``,
averaged over the music beats; motion beats are local minima of the mean joint speed smoothed
by a Gaussian of 5 frames, frames at AIST++'s 60 fps. Reference: AIST++ ground truth 0.237,
EDGE 0.233 (as reported by EDGE). Here the motion beats of each move come from its keypoints
(``MoveCandidate.motion_beats_s``, clip seconds) warped by the move's speed onto the timeline.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from choreography.music.model import MusicAnalysis
from choreography.planner.candidates import (
    BAS_FPS,
    BAS_SIGMA_FRAMES,
    MoveCandidate,
    mirror_pose,
    pose_distance,
)
from schemas.blueprint import Blueprint


@dataclass(frozen=True)
class QualityReport:
    """The figures for one blueprint; ``None`` where the inputs needed were not given."""

    cuts: int
    cuts_on_beat_share: float
    max_cut_error_s: float
    beat_align_score: float | None
    repeated_sections: int
    repeated_with_same_moves: int
    mean_pose_jump_m: float | None
    max_pose_jump_m: float | None

    def lines(self) -> list[str]:
        """Human-readable lines, one per figure."""
        bas = "n/a (needs the move library)"
        if self.beat_align_score is not None:
            bas = f"{self.beat_align_score:.3f} (AIST++ 0.237, EDGE 0.233, goal >= 0.30)"
        jumps = "n/a"
        if self.mean_pose_jump_m is not None:
            jumps = f"mean {self.mean_pose_jump_m:.3f} m, max {self.max_pose_jump_m:.3f} m"
        return [
            f"cuts on beat      {self.cuts_on_beat_share:.0%} of {self.cuts} within one frame "
            f"(max error {self.max_cut_error_s * 1000:.1f} ms)",
            f"beat align score  {bas}",
            f"repeats           {self.repeated_with_same_moves} of {self.repeated_sections} "
            "repeated sections dance the same moves",
            f"pose jump at cuts {jumps}",
        ]


def beat_align_score(
    music_beats_s: Sequence[float],
    motion_beats_s: Sequence[float],
    *,
    fps: float = BAS_FPS,
    sigma_frames: float = BAS_SIGMA_FRAMES,
) -> float:
    """Bailando's BA: mean over music beats of exp(-d^2 / 2 sigma^2), d to the nearest motion beat.

    ``d`` is in frames at ``fps``; times are seconds.
    """
    if len(music_beats_s) == 0:
        raise ValueError("beat align score needs at least one music beat")
    if len(motion_beats_s) == 0:
        return 0.0
    music = np.asarray(music_beats_s, dtype=float)[:, None] * fps
    motion = np.asarray(motion_beats_s, dtype=float)[None, :] * fps
    nearest = np.min((motion - music) ** 2, axis=1)
    return float(np.mean(np.exp(-nearest / (2 * sigma_frames**2))))


def timeline_motion_beats(
    blueprint: Blueprint, candidates: Mapping[str, MoveCandidate]
) -> list[float]:
    """Motion beats of the planned moves in window seconds (clip beats warped by speed)."""
    out: list[float] = []
    for move in blueprint.moves_used:
        candidate = candidates.get(move.move_id)
        if candidate is None:
            raise KeyError(f"move {move.move_id!r} is not in the move library given")
        for beat in candidate.motion_beats_s:
            if move.clip_in_s <= beat < move.clip_out_s:
                out.append(move.timeline_start_s + (beat - move.clip_in_s) / move.speed_factor)
    return out


def window_music_beats(blueprint: Blueprint) -> list[float]:
    """Music beats inside the window, in window seconds."""
    window = blueprint.song.window
    start, end = window.start_s, window.end_s
    return [b - start for b in blueprint.song.beats_s if start <= b < end]


def quality_report(
    blueprint: Blueprint,
    candidates: Mapping[str, MoveCandidate] | None = None,
    analysis: MusicAnalysis | None = None,
) -> QualityReport:
    """All figures; BAS and recomputed pose jumps need ``candidates`` (by move id)."""
    errors = _cut_errors(blueprint)
    frame = 1 / blueprint.video_output.fps
    bas = None
    if candidates is not None:
        bas = beat_align_score(
            window_music_beats(blueprint), timeline_motion_beats(blueprint, candidates)
        )
    expected, same = _repeats(blueprint, analysis)
    jumps = _pose_jumps(blueprint, candidates)
    return QualityReport(
        cuts=len(errors),
        cuts_on_beat_share=sum(e <= frame for e in errors) / len(errors),
        max_cut_error_s=max(errors),
        beat_align_score=bas,
        repeated_sections=expected,
        repeated_with_same_moves=same,
        mean_pose_jump_m=float(np.mean(jumps)) if jumps else None,
        max_pose_jump_m=float(np.max(jumps)) if jumps else None,
    )


def _cut_errors(blueprint: Blueprint) -> list[float]:
    beats, start = blueprint.song.beats_s, blueprint.song.window.start_s
    errors = []
    for move in blueprint.moves_used:
        cut = start + move.timeline_start_s
        i = bisect.bisect_left(beats, cut)
        errors.append(min(abs(b - cut) for b in beats[max(i - 1, 0) : i + 1]))
    return errors


def _section_moves(blueprint: Blueprint) -> dict[int, list[str]]:
    moves: dict[int, list[str]] = {}
    for move in blueprint.moves_used:
        moves.setdefault(move.section.index, []).append(move.move_id)
    return moves


def _repeats(blueprint: Blueprint, analysis: MusicAnalysis | None) -> tuple[int, int]:
    """Sections that should repeat an earlier one in the window, and how many do."""
    moves = _section_moves(blueprint)
    pairs = _expected_repeats(blueprint, analysis) if analysis else _declared_repeats(blueprint)
    same = 0
    for later, earlier in pairs.items():
        a, b = moves[earlier], moves[later]
        n = min(len(a), len(b))
        same += n > 0 and a[:n] == b[:n]
    return len(pairs), same


def _declared_repeats(blueprint: Blueprint) -> dict[int, int]:
    return {
        m.section.index: m.section.repeat_of
        for m in blueprint.moves_used
        if m.section.repeat_of is not None
    }


def _expected_repeats(blueprint: Blueprint, analysis: MusicAnalysis) -> dict[int, int]:
    """Window section -> earlier window section, from the analysis's own repeat labels."""
    start = blueprint.song.window.start_s
    roots: dict[int, int] = {}  # analysis root section -> first window section dancing it
    pairs: dict[int, int] = {}
    for move in blueprint.moves_used:
        if move.section.index in pairs or move.section.index in roots.values():
            continue
        at = start + move.timeline_start_s + 1e-6
        song_section = next(s for s in reversed(analysis.sections) if s.start_s <= at)
        root = song_section.index
        while analysis.sections[root].repeat_of is not None:
            root = analysis.sections[root].repeat_of  # type: ignore[assignment]
        if root in roots:
            pairs[move.section.index] = roots[root]
        else:
            roots[root] = move.section.index
    return pairs


def _pose_jumps(
    blueprint: Blueprint, candidates: Mapping[str, MoveCandidate] | None
) -> list[float]:
    moves = blueprint.moves_used
    if candidates is None:
        declared = [m.reason.transition_cost for m in moves[1:]]
        return [j for j in declared if j is not None]
    jumps = []
    for before, after in itertools.pairwise(moves):
        end = candidates[before.move_id].end_pose
        begin = candidates[after.move_id].start_pose
        jumps.append(
            pose_distance(
                mirror_pose(end) if before.mirror else end,
                mirror_pose(begin) if after.mirror else begin,
            )
        )
    return jumps
