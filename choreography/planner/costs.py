"""The planner's cost model: what one placement and one cut cost, and the knobs that weigh them.

For candidate ``c`` placed over ``b`` song beats starting at beat ``k`` after move ``p``::

    cost = (b / 8) * (-w_score * score01[c] + w_energy * |energy[c] - target(k, b)|
                      + w_speed * |ln speed(c, k)| + w_beat * (1 - beat_alignment[c])
                      + w_substitute * off_request[c] + jitter[c])
           + w_pose * pose_jump(p, c)
           + w_repeat * uses_so_far[c] + w_variety * family_uses_so_far[c]

``beat_alignment`` is how well the move's motion beats sit on its own counts (its Beat Align
Score; a uniform speed change keeps it), so on-beat moves win. ``score01`` is the search score
rescaled to [0, 1] over the candidates; ``target`` is the mean
song energy over the placed beats shifted by the requested energy level; ``off_request`` is how
many levels a substitute move is from the requested difficulty and energy (0 for a move that
matches, see ``planner.fidelity_pools``); ``pose_jump`` is the
mean joint distance (m) between ``p``'s end pose and ``c``'s start pose; ``jitter`` is a small
seeded random preference so two seeds give two plans. Unary terms scale with the beats placed so
one 16-count move and two 8-counts cost alike; the pose and reuse terms are per cut. The uses
count only moves planned afresh: a repeated section's copy is free and adds none. A move's family
(``MoveCandidate.family``: "Rock Punch" for all its variants) is used whenever any of its
variants is, so variety is variety of families first and of moves second.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from choreography.music.model import MusicAnalysis
from choreography.planner.candidates import MoveCandidate, mirror_pose, pose_distance
from choreography.planner.tempo_fit import TempoFit, placement_speed, speed_in_band
from schemas.settings import BlueprintConsumerSettings

Floats = npt.NDArray[np.float64]
BEATS_PER_PHRASE = 8
# Requested energy shifts the song's own energy curve by this much (levels are thirds of 0..1).
ENERGY_SHIFT = {"low": -0.25, "medium": 0.0, "high": 0.25}
# The default of ``PLANNER_VARIETY_PENALTY`` (declared once, with the consumer's settings).
DEFAULT_VARIETY_PENALTY: float = BlueprintConsumerSettings.model_fields["variety_penalty"].default
DEFAULT_POSE_WEIGHT: float = BlueprintConsumerSettings.model_fields["pose_weight"].default


@dataclass(frozen=True)
class PlannerSettings:
    """Weights and limits of the planner (defaults tuned on the demo library)."""

    w_score: float = 1.0
    w_energy: float = 2.0
    w_speed: float = 2.0
    w_beat: float = 3.0
    """Per phrase, times (1 - the move's own Beat Align Score)."""
    w_pose: float = DEFAULT_POSE_WEIGHT
    """Per metre of mean joint distance at a cut (``PLANNER_POSE_WEIGHT``)."""
    w_repeat: float = 1.0
    """Per earlier use of the same move in the plan (copies in repeated sections are free)."""
    w_variety: float = DEFAULT_VARIETY_PENALTY
    """Per earlier use of a move of the same family (``PLANNER_VARIETY_PENALTY``)."""
    w_substitute: float = 2.0
    """Per phrase and per level a substitute is from the requested difficulty and energy."""
    jitter: float = 0.05
    mirror_repeats: bool = False
    """Dance a repeated section mirrored (chorus 2 = chorus 1 flipped)."""
    cut_max_jump_m: float = 0.08
    """Pose jumps up to this are hard cuts; larger ones get a crossfade."""
    crossfade_s_per_m: float = 2.0
    crossfade_min_s: float = 0.1
    crossfade_max_s: float = 0.5

    @classmethod
    def of(cls, settings: BlueprintConsumerSettings) -> PlannerSettings:
        """The defaults with what the environment sets (``PLANNER_VARIETY_PENALTY``,
        ``PLANNER_POSE_WEIGHT``)."""
        return cls(w_variety=settings.variety_penalty, w_pose=settings.pose_weight)


@dataclass(frozen=True)
class BeatGrid:
    """Beat times with extrapolation past the last beat (a final phrase may end there)."""

    beats_s: Floats
    interval_s: float

    @classmethod
    def of(cls, analysis: MusicAnalysis) -> BeatGrid:
        """The analysis's beat grid."""
        beats = np.asarray(analysis.beats_s, dtype=float)
        return cls(beats, float(np.median(np.diff(beats))) if beats.size > 1 else 0.5)

    def time(self, beat: int) -> float:
        """Song time of beat ``beat`` (extrapolated at the median interval past the end)."""
        last = self.beats_s.size - 1
        if beat <= last:
            return float(self.beats_s[beat])
        return float(self.beats_s[last]) + (beat - last) * self.interval_s


class CostModel:
    """Precomputed per-candidate terms and the pose-jump matrix for one song and request."""

    def __init__(
        self,
        analysis: MusicAnalysis,
        candidates: Sequence[MoveCandidate],
        fits: Sequence[TempoFit],
        *,
        energy_level: str,
        settings: PlannerSettings,
        seed: int,
        off_request: Sequence[int] | None = None,
    ) -> None:
        self.candidates, self.fits, self.settings = candidates, fits, settings
        self.grid = BeatGrid.of(analysis)
        self.energy_per_beat = np.asarray(analysis.energy_per_beat, dtype=float)
        self.energy_shift = ENERGY_SHIFT[energy_level]
        scores = np.array([c.score for c in candidates], dtype=float)
        spread = float(scores.max() - scores.min()) if scores.size else 0.0
        self.score01 = (scores - scores.min()) / spread if spread > 0 else np.ones_like(scores)
        self.energy = np.array([c.energy_value for c in candidates], dtype=float)
        self.off_beat = 1.0 - np.array([c.beat_alignment for c in candidates], dtype=float)
        self.beats = np.array([f.beats for f in fits], dtype=int)
        self.jitter = np.random.default_rng(seed).uniform(0.0, settings.jitter, len(candidates))
        self.off_request = np.asarray(off_request or [0] * len(candidates), dtype=float)
        # family_of[c]: index of c's family; by_family: candidates sorted by family, family_starts:
        # where each family begins in that order (for summing uses per family, see ``reuse``).
        families = np.array([c.family for c in candidates], dtype=str)
        _, self.family_of = np.unique(families, return_inverse=True)
        self.by_family = np.argsort(self.family_of, kind="stable")
        sorted_families = self.family_of[self.by_family]
        changes = sorted_families[1:] != sorted_families[:-1]
        self.family_starts = np.flatnonzero(np.r_[True, changes])
        ends = np.stack([c.end_pose for c in candidates]) if candidates else np.zeros((0, 1, 3))
        starts = np.stack([c.start_pose for c in candidates]) if candidates else ends
        # jump[p, c]: mean joint distance from p's end pose to c's start pose.
        self.jump = np.linalg.norm(ends[:, None] - starts[None, :], axis=3).mean(axis=2)

    def target_energy(self, first_beat: int, beats: int) -> float:
        """Song energy over the placed beats, shifted by the requested level, in [0, 1]."""
        part = self.energy_per_beat[first_beat : first_beat + beats]
        level = float(part.mean()) if part.size else 0.5
        return min(1.0, max(0.0, level + self.energy_shift))

    def span(self, first_beat: int, beats: int) -> tuple[float, float]:
        """Song start and end time of a placement."""
        return self.grid.time(first_beat), self.grid.time(first_beat + beats)

    def speed(self, c: int, first_beat: int) -> float:
        """Playback speed of candidate ``c`` placed at ``first_beat``."""
        start, end = self.span(first_beat, int(self.beats[c]))
        return placement_speed(self.candidates[c], end - start)

    def unary(self, first_beat: int) -> Floats:
        """Placement cost of every candidate at ``first_beat`` (inf where speed is off band)."""
        s = self.settings
        out = np.full(len(self.candidates), math.inf)
        for c in range(len(self.candidates)):
            speed = self.speed(c, first_beat)
            if not speed_in_band(speed):
                continue
            b = int(self.beats[c])
            mismatch = abs(self.energy[c] - self.target_energy(first_beat, b))
            per_phrase = (
                -s.w_score * self.score01[c]
                + s.w_energy * mismatch
                + s.w_speed * abs(math.log(speed))
                + s.w_beat * self.off_beat[c]
                + s.w_substitute * self.off_request[c]
                + self.jitter[c]
            )
            out[c] = b / BEATS_PER_PHRASE * per_phrase
        return out

    def reuse(self, uses: Floats) -> Floats:
        """Reuse cost of every candidate given earlier uses per candidate (last axis)."""
        s = self.settings
        if uses.shape[-1] == 0:
            return np.zeros_like(uses)
        per_family = np.add.reduceat(uses[..., self.by_family], self.family_starts, axis=-1)
        family_uses = per_family[..., self.family_of]
        out: Floats = s.w_repeat * uses + s.w_variety * family_uses
        return out

    def jump_from(self, previous: int, mirrored: bool) -> Floats:
        """Pose jump from ``previous``'s end pose (mirrored or not) to every start pose."""
        if not mirrored:
            return np.asarray(self.jump[previous], dtype=float)
        end = mirror_pose(self.candidates[previous].end_pose)
        return np.array([pose_distance(end, c.start_pose) for c in self.candidates])

    def jump_into(self, following: int, mirrored: bool) -> Floats:
        """Pose jump from every end pose to ``following``'s start pose (mirrored or not)."""
        if not mirrored:
            return np.asarray(self.jump[:, following], dtype=float)
        start = mirror_pose(self.candidates[following].start_pose)
        return np.array([pose_distance(c.end_pose, start) for c in self.candidates])

    def jump_between(self, a: int, a_mirror: bool, b: int, b_mirror: bool) -> float:
        """Pose jump at the cut from ``a`` to ``b`` with their mirror flags."""
        if not a_mirror and not b_mirror:
            return float(self.jump[a, b])
        end, start = self.candidates[a].end_pose, self.candidates[b].start_pose
        return pose_distance(
            mirror_pose(end) if a_mirror else end, mirror_pose(start) if b_mirror else start
        )
