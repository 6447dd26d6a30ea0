"""Quality figures of a planned blueprint: cuts on beats, Beat Align Score, repeats, pose jumps.

With the library's moves (keypoints), the figures of the assembled motion too
(``assembled_motion``): Bailando's BAS on the one stitched sequence, so the cuts count; the
pose jump at each cut against the moves' median frame step; foot sliding near cuts and inside
moves. Variety: distinct moves per minute; repeats: the share of identical moves.

Beat Align Score (BAS) follows Bailando (Li et al., CVPR 2022), ``BA`` and ``calc_db`` in
``utils/beat_align_score.py`` of github.com/lisiyao21/Bailando: for every music beat, the
squared distance (in frames) to the nearest motion beat, through ``exp(-d^2 / (2 * 3^2))``,
averaged over the music beats; motion beats are local minima of the mean joint speed smoothed
by a Gaussian of 5 frames, frames at AIST++'s 60 fps. Reference: AIST++ ground truth 0.237,
EDGE 0.233 (as reported by EDGE). The per-move figure takes the motion beats of each move
from its keypoints (``MoveCandidate.motion_beats_s``, clip seconds) warped by the move's speed
onto the timeline; the assembled figure finds them on the stitched motion.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from choreography.moves.model import Move
from choreography.music.model import MusicAnalysis
from choreography.planner.assembled_motion import (
    CUT_WINDOW_S,
    CutJump,
    FootSliding,
    assemble_motion,
    bailando_motion_beats,
    cut_jumps,
    foot_sliding,
    require_moves,
)
from choreography.planner.candidates import (
    BAS_FPS,
    BAS_SIGMA_FRAMES,
    MoveCandidate,
    mirror_pose,
    pose_distance,
)
from schemas.blueprint import Blueprint

BAS_GOAL: Final[float] = 0.30


@dataclass(frozen=True)
class MotionQuality:
    """Figures of the assembled motion (``assembled_motion``): they need the moves' keypoints."""

    beat_align_score: float
    """Bailando's BAS of the stitched sequence against the window's music beats."""
    music_beats: int
    motion_beats: int
    cut_jumps: tuple[CutJump, ...]
    sliding: FootSliding

    @property
    def cuts_below_median_step_share(self) -> float | None:
        """Share of cuts whose pose jump is under the two moves' median frame step."""
        if not self.cut_jumps:
            return None
        return sum(j.below_median_step for j in self.cut_jumps) / len(self.cut_jumps)

    def lines(self) -> list[str]:
        """Summary lines: BAS, pose jumps at cuts, foot sliding."""
        lines = [
            f"BAS, assembled    {self.beat_align_score:.3f} ({self.music_beats} music beats, "
            f"{self.motion_beats} motion beats; goal >= {BAS_GOAL:.2f}, AIST++ 0.237, "
            "best generative ~0.27)"
        ]
        if self.cut_jumps:
            jumps = [j.jump_m for j in self.cut_jumps]
            steps = [j.median_step_m for j in self.cut_jumps]
            below = sum(j.below_median_step for j in self.cut_jumps)
            lines.append(
                f"cut pose jumps    mean {np.mean(jumps):.3f} m, max {max(jumps):.3f} m "
                f"(pelvis-centred); {below} of {len(jumps)} below the moves' median frame step "
                f"(median {np.median(steps):.4f} m)"
            )
        slide = self.sliding
        lines.append(
            f"foot sliding      planted {_cm_s(slide.mean_m_s)} over {slide.planted_steps} "
            f"foot-steps; within {CUT_WINDOW_S:g} s of cuts {_cm_s(slide.near_cuts_m_s)} "
            f"({slide.near_cut_steps}), inside moves {_cm_s(slide.inside_moves_m_s)} "
            f"({slide.inside_steps})"
        )
        return lines

    def cut_lines(self) -> list[str]:
        """One line per cut: where, the jump, the moves' median frame step."""
        return [
            f"cut {i:>3} at {j.time_s:7.2f} s  jump {j.jump_m:.3f} m  "
            f"median step {j.median_step_m:.4f} m{'  below' if j.below_median_step else ''}"
            for i, j in enumerate(self.cut_jumps, start=1)
        ]


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
    distinct_moves: int = 0
    distinct_moves_per_minute: float = 0.0
    repeated_moves_compared: int = 0
    """Moves of repeated sections compared with the moves at the same place in the original."""
    repeated_moves_identical: int = 0
    motion: MotionQuality | None = None
    """Figures of the assembled motion, when the moves' keypoints were given."""

    @property
    def repeated_identical_share(self) -> float | None:
        """Share of the moves of repeated sections that repeat the original's move."""
        if not self.repeated_moves_compared:
            return None
        return self.repeated_moves_identical / self.repeated_moves_compared

    def lines(self) -> list[str]:
        """Human-readable lines, one per figure."""
        bas = "n/a (needs the move library)"
        if self.beat_align_score is not None:
            bas = f"{self.beat_align_score:.3f} from each move's own motion beats, cuts unseen"
        jumps = "n/a"
        if self.mean_pose_jump_m is not None:
            jumps = f"mean {self.mean_pose_jump_m:.3f} m, max {self.max_pose_jump_m:.3f} m"
        share = self.repeated_identical_share
        identical = (
            ""
            if share is None
            else f"; {self.repeated_moves_identical} of {self.repeated_moves_compared} "
            f"moves identical ({share:.0%})"
        )
        lines = [
            f"cuts on beat      {self.cuts_on_beat_share:.0%} of {self.cuts} within one frame "
            f"(max error {self.max_cut_error_s * 1000:.1f} ms)",
            f"beat align score  {bas}",
            f"repeats           {self.repeated_with_same_moves} of {self.repeated_sections} "
            f"repeated sections dance the same moves{identical}",
            f"variety           {self.distinct_moves} distinct moves, "
            f"{self.distinct_moves_per_minute:.1f} per minute",
            f"pose jump at cuts {jumps}",
        ]
        if self.motion is not None:
            lines += self.motion.lines()
        return lines


def _cm_s(speed_m_s: float | None) -> str:
    return "n/a" if speed_m_s is None else f"{speed_m_s * 100:.1f} cm/s"


def distinct_moves_per_minute(move_ids: Iterable[str], duration_s: float) -> float:
    """Distinct move ids per minute of timeline (the planner's variety measure)."""
    if not math.isfinite(duration_s) or duration_s <= 0:
        raise ValueError(f"duration_s must be finite and > 0, got {duration_s}")
    return len(set(move_ids)) * 60.0 / duration_s


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
    require_moves(blueprint, candidates)
    out: list[float] = []
    for move in blueprint.moves_used:
        candidate = candidates[move.move_id]
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
    moves: Mapping[str, Move] | None = None,
) -> QualityReport:
    """All figures; BAS and pose jumps need ``candidates``, the assembled motion ``moves``."""
    for library in (candidates, moves):
        if library is not None:
            require_moves(blueprint, library)
    errors = _cut_errors(blueprint)
    frame = 1 / blueprint.video_output.fps
    bas = None
    if candidates is not None:
        bas = beat_align_score(
            window_music_beats(blueprint), timeline_motion_beats(blueprint, candidates)
        )
    repeats = _repeats(blueprint, analysis)
    jumps = _pose_jumps(blueprint, candidates)
    ids = [m.move_id for m in blueprint.moves_used]
    return QualityReport(
        cuts=len(errors),
        cuts_on_beat_share=sum(e <= frame for e in errors) / len(errors),
        max_cut_error_s=max(errors),
        beat_align_score=bas,
        repeated_sections=repeats.sections,
        repeated_with_same_moves=repeats.same_sections,
        mean_pose_jump_m=float(np.mean(jumps)) if jumps else None,
        max_pose_jump_m=float(np.max(jumps)) if jumps else None,
        distinct_moves=len(set(ids)),
        distinct_moves_per_minute=distinct_moves_per_minute(ids, blueprint.song.window.length_s),
        repeated_moves_compared=repeats.moves_compared,
        repeated_moves_identical=repeats.moves_identical,
        motion=motion_quality(blueprint, moves) if moves is not None else None,
    )


def motion_quality(blueprint: Blueprint, moves: Mapping[str, Move]) -> MotionQuality:
    """The assembled-motion figures: Bailando's BAS, pose jumps at cuts, foot sliding."""
    motion = assemble_motion(blueprint, moves)
    # Bailando keeps the music beats inside the motion (``get_mb(key, length)``).
    length_s = (len(motion.keypoints) - 1) / motion.fps
    music = [b for b in window_music_beats(blueprint) if b < length_s]
    beats = bailando_motion_beats(motion.keypoints, motion.fps)
    return MotionQuality(
        beat_align_score=beat_align_score(music, beats, fps=motion.fps),
        music_beats=len(music),
        motion_beats=len(beats),
        cut_jumps=tuple(cut_jumps(motion)),
        sliding=foot_sliding(motion),
    )


def move_beat_align_score(move: Move) -> float:
    """Bailando's BAS of one library move alone against its own counts (the dance's reference).

    The counts are ``k * 60 / tempo_bpm`` clip seconds; motion beats as ``calc_db`` finds them.
    """
    counts = [k * 60.0 / move.tempo_bpm for k in range(move.counts)]
    length_s = (move.frames - 1) / move.fps
    music = [c for c in counts if c < length_s]
    return beat_align_score(music, bailando_motion_beats(move.keypoints, move.fps), fps=BAS_FPS)


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


@dataclass(frozen=True)
class _Repeats:
    sections: int
    same_sections: int
    moves_compared: int
    moves_identical: int


def _repeats(blueprint: Blueprint, analysis: MusicAnalysis | None) -> _Repeats:
    """Sections that should repeat an earlier one in the window, how many do, move by move.

    Moves are compared place by place up to the shorter section (the window may cut the last
    repeat short).
    """
    moves = _section_moves(blueprint)
    pairs = _expected_repeats(blueprint, analysis) if analysis else _declared_repeats(blueprint)
    same = compared = identical = 0
    for later, earlier in pairs.items():
        a, b = moves[earlier], moves[later]
        n = min(len(a), len(b))
        same += n > 0 and a[:n] == b[:n]
        compared += n
        identical += sum(x == y for x, y in zip(a[:n], b[:n], strict=True))
    return _Repeats(len(pairs), same, compared, identical)


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
