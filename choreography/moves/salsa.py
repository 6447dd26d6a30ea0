"""The real-motion salsa library: CMU partner salsa captures cut at the 8-counts their steps show.

The CMU Graphics Lab database holds 12 salsa trials danced by a couple, subject 60 leading and
61 following, both captured together (``60_NN`` and ``61_NN`` share one clock). For each trial:

1. **Frame rate.** ``bvh_import.detect_frame_rate`` (the stepping cadence) chooses between the
   header's 120 fps and 60 fps; every take is 60 fps (``bench/salsa_frame_rate.py``).
2. **Tempo.** The 8-count basic is the slowest pattern that repeats: each foot's position
   relative to the pelvis, in the dancer's own frame (forward, sideways), comes back every 8
   counts. The autocorrelation of those signals of both dancers, summed, peaks at the 8-count
   period; only periods of 140-220 BPM (salsa music) are looked at.
3. **Where count 1 is.** In the on-1 basic the lead steps forward with the left foot on 1 and
   back with the right on 5, the follow back with the right on 1 and forward with the left on
   5, each foot staying out for counts 1-2 (5-6) and closing on 3 (7). The folded foot signals
   are matched against that template over every phase.
4. **Windows.** Back-to-back 8-count windows (a whole number of frames) from the first count 1;
   a window is kept only if it
   passes ``window_problems`` (no speed spike, no tracking tremble, a head on the neck, feet on
   the floor, actually stepping, not bending down).
5. **Facing.** Each take is turned once, so its dancer faces the camera on average, and each
   window is moved to start over the origin: consecutive windows of a take join with no jump.
6. **Labels.** Energy is the window's mean joint speed against the library's tertiles;
   difficulty comes from how much the dancer turns and how far the feet leave the basic: a
   basic without turns is beginner, a full turn (or more) is advanced.

The data: "The data used in this project was obtained from mocap.cs.cmu.edu. The database was
created with funding from NSF EIA-0196217."
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.signal import find_peaks, savgol_filter

from choreography.moves.bundle import MoveDraft
from choreography.moves.bvh import read_bvh
from choreography.moves.bvh_import import (
    canonical_frame,
    canonical_keypoints,
    detect_frame_rate,
    facing_yaw,
    floor_height,
    header_rate,
)
from choreography.moves.model import NEXT_TAG
from choreography.moves.motion_estimates import line_yaw
from choreography.moves.skeleton import JOINT_INDEX, PELVIS, Keypoints
from choreography.planner.candidates import joint_speed
from schemas.errors import InvalidInput

log = logging.getLogger(__name__)

ACKNOWLEDGEMENT: Final = (
    "The data used in this project was obtained from mocap.cs.cmu.edu. "
    "The database was created with funding from NSF EIA-0196217."
)
LEAD, FOLLOW = "60", "61"
TEMPO_RANGE_BPM: Final = (140.0, 220.0)  # salsa music
COUNTS: Final = 8
# The ``_scaled`` files are two thirds of life size (standing head joint 1.06 m, thigh 0.29 m);
# this brings the head joint to an adult's 1.55 m, so metres mean metres in the figures.
LIFE_SIZE: Final = 1.46
_TAKE = re.compile(r"^(?P<subject>6[01])_(?P<trial>\d\d)_scaled(?:_.*)?\.bvh$")

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class GlitchLimits:
    """Thresholds of ``window_problems``; each names what it protects against."""

    # Measured on all 252 windows at life size: clean windows peak at 7.0 m/s (a hand in a fast
    # turn) and 10.2 mm; every glitch the upstream list names is above both.
    max_joint_speed_m_s: float = 9.0
    max_tremble_mm: float = 11.0  # RMS around an 11-frame smoothing, per joint
    max_head_bend_deg: float = 65.0  # neck->head against spine->neck; styling reaches 57
    max_below_floor_m: float = 0.09  # an ankle this far under the take's floor
    min_foot_travel_m: float = 1.2  # both feet together over the 8 counts: stepping at all
    min_pelvis_ratio: float = 0.78  # pelvis height against the take's median: bending down


@dataclass(frozen=True)
class EightCountGrid:
    """Where a trial's 8-counts start, found in the motion."""

    period_s: float
    bpm: float
    periodicity: float  # autocorrelation at the period over that at lag 0 (1 = pure repeat)
    phase_match: float  # template correlation at the chosen phase (-1..1)
    starts_s: tuple[float, ...]  # count 1 of every whole 8-count window


@dataclass(frozen=True)
class WindowVerdict:
    """One 8-count window of one dancer: kept, or the problems that dropped it."""

    take: str
    start_s: float
    problems: tuple[str, ...]

    @property
    def kept(self) -> bool:
        return not self.problems


@dataclass
class SalsaReport:
    """What the build found, for the CLI, the docs and the tests."""

    grids: dict[str, EightCountGrid] = field(default_factory=dict)  # trial -> grid
    frame_rates: dict[str, float] = field(default_factory=dict)  # take -> fps used
    verdicts: list[WindowVerdict] = field(default_factory=list)

    def kept(self) -> int:
        return sum(v.kept for v in self.verdicts)

    def dropped(self) -> list[WindowVerdict]:
        return [v for v in self.verdicts if not v.kept]

    def lines(self) -> list[str]:
        """One line per trial and a total, for people."""
        out = []
        for trial, grid in sorted(self.grids.items()):
            takes = [v for v in self.verdicts if v.take.endswith(f"_{trial}")]
            kept = sum(v.kept for v in takes)
            out.append(
                f"trial {trial}: {grid.bpm:.1f} BPM (periodicity {grid.periodicity:.2f}, "
                f"phase match {grid.phase_match:.2f}), {kept} of {len(takes)} windows kept"
            )
        reasons: dict[str, int] = {}
        for verdict in self.dropped():
            for problem in verdict.problems:
                key = problem.split(" (")[0]
                reasons[key] = reasons.get(key, 0) + 1
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items())) or "none"
        out.append(f"{self.kept()} of {len(self.verdicts)} windows kept; dropped: {why}")
        return out


@dataclass(frozen=True)
class _Take:
    name: str  # e.g. 60_01
    subject: str
    trial: str
    keypoints: Keypoints  # world positions, metres
    fps: float


def trial_list(text: str) -> list[str] | None:
    """Trials from ``03,07`` (``CMU_SALSA_TRIALS``, ``--trials``); ``None`` (all) when empty."""
    return text.split(",") if text else None


def find_takes(corpus: Path) -> dict[str, dict[str, Path]]:
    """Trial -> {subject -> file} for the ``*_scaled*.bvh`` captures under ``corpus``."""
    if not corpus.is_dir():
        raise InvalidInput(f"{corpus}: not a folder of CMU salsa captures")
    trials: dict[str, dict[str, Path]] = {}
    for path in sorted(corpus.glob("*.bvh")):
        match = _TAKE.match(path.name)
        if match:
            trials.setdefault(match["trial"], {})[match["subject"]] = path
    if not trials:
        raise InvalidInput(f"{corpus}: no 60_NN_scaled.bvh / 61_NN_scaled.bvh captures found")
    return trials


def feet_in_body_frame(keypoints: Keypoints) -> Floats:
    """``(frames, 4)``: left forward, left sideways, right forward, right sideways (metres).

    Each ankle relative to the pelvis, along the dancer's own forward and left axes (from the
    hip line, smoothed over half a second), so turning and travelling do not show.
    """
    hips = (keypoints[:, JOINT_INDEX["l_hip"]] - keypoints[:, JOINT_INDEX["r_hip"]])[:, [0, 2]]
    hips = hips.astype(np.float64)
    if hips.shape[0] >= 31:
        hips = savgol_filter(hips, 31, 2, axis=0)
    left = hips / np.maximum(np.linalg.norm(hips, axis=1, keepdims=True), 1e-6)
    forward = np.stack([-left[:, 1], left[:, 0]], axis=1)  # left (x, z) turned to face +z
    columns = []
    for ankle in ("l_ankle", "r_ankle"):
        rel = (keypoints[:, JOINT_INDEX[ankle]] - keypoints[:, PELVIS])[:, [0, 2]]
        columns += [(rel * forward).sum(axis=1), (rel * left).sum(axis=1)]
    return np.stack(columns, axis=1)


def _autocorrelation(signals: Floats) -> Floats:
    """Summed, overlap-normalised autocorrelation of the mean-removed columns."""
    import librosa  # noqa: PLC0415 - slow to import; only the library build needs it

    centred = signals - signals.mean(axis=0)
    n = centred.shape[0]
    full = librosa.autocorrelate(centred, axis=0).sum(axis=1)
    return np.asarray(full / (n - np.arange(n)), dtype=np.float64)


def basic_template(phase_counts: Floats) -> Floats:
    """The on-1 basic, lead's view: +1 with the left foot forward (counts 1-3), -1 with the right
    foot back (5-7), ramps of half a count. ``phase_counts`` in counts from count 1 (0..8)."""
    c = np.mod(phase_counts, COUNTS)

    def plateau(start: float) -> Floats:
        rise = np.clip((c - (start - 0.5)) / 0.5, 0.0, 1.0)
        fall = np.clip(((start + 2.5) - c) / 0.5, 0.0, 1.0)
        return np.minimum(rise, fall)

    return plateau(0.0) - plateau(4.0)


def _evidence(feet: dict[str, Floats]) -> Floats:
    """Signals that follow ``basic_template``: lead's feet forward, follow's feet backward.

    The lead's left foot forward on 1 and right foot back on 5 both read as the template; the
    follow mirrors the lead (right back on 1, left forward on 5), so the follow is negated.
    """
    parts = []
    if LEAD in feet:
        parts.append(feet[LEAD][:, 0] + feet[LEAD][:, 2])
    if FOLLOW in feet:
        parts.append(-(feet[FOLLOW][:, 0] + feet[FOLLOW][:, 2]))
    evidence = np.sum(parts, axis=0)
    return np.asarray(evidence - evidence.mean(), dtype=np.float64)


def _phase_scores(evidence: Floats, fps: float, period_s: float, offsets: Floats) -> Floats:
    """Correlation of ``evidence`` with the basic template started at each offset (seconds)."""
    t = np.arange(evidence.size) / fps
    scores = np.empty(offsets.size)
    for i, offset in enumerate(offsets):
        template = basic_template((t - offset) / period_s * COUNTS)
        template = template - template.mean()
        denominator = np.linalg.norm(template) * np.linalg.norm(evidence)
        scores[i] = float(template @ evidence / denominator) if denominator > 0 else 0.0
    return scores


def find_eight_counts(feet: dict[str, Floats], fps: float) -> EightCountGrid:
    """The trial's 8-count period and every window's count 1, from its dancers' foot signals."""
    frames = min(signal.shape[0] for signal in feet.values())
    feet = {who: signal[:frames] for who, signal in feet.items()}
    autocorrelation = np.sum([_autocorrelation(signal) for signal in feet.values()], axis=0)
    slow, fast = TEMPO_RANGE_BPM
    lags = np.arange(frames) / fps
    band = (lags >= COUNTS * 60.0 / fast) & (lags <= COUNTS * 60.0 / slow)
    if not band.any() or frames < 2 * COUNTS * 60.0 / slow * fps:
        raise InvalidInput(f"a take of {frames / fps:.1f} s is too short to find two 8-counts")
    candidates = np.flatnonzero(band)
    peaks, _ = find_peaks(autocorrelation[candidates])
    best = int(candidates[peaks[np.argmax(autocorrelation[candidates][peaks])]] if peaks.size
               else candidates[np.argmax(autocorrelation[candidates])])  # fmt: skip
    lag = float(best)
    if 0 < best < frames - 1:  # parabolic interpolation at a true peak, between frames
        a, b, c = autocorrelation[best - 1 : best + 2]
        if b >= max(a, c) and a - 2 * b + c < 0:
            lag += 0.5 * (a - c) / (a - 2 * b + c)
    # Windows are whole frames, back to back, so one ends exactly where the next begins.
    length = round(lag)
    period = length / fps
    periodicity = float(autocorrelation[best] / autocorrelation[0])
    evidence = _evidence(feet)
    offsets = np.arange(length) / fps
    scores = _phase_scores(evidence, fps, period, offsets)
    first = int(np.argmax(scores))
    starts = tuple(i / fps for i in range(first, frames - length + 1, length))
    return EightCountGrid(period, COUNTS * 60.0 / period, periodicity, float(scores.max()), starts)


def window_problems(
    part: Keypoints, fps: float, floor_y: float, standing_pelvis_m: float, limits: GlitchLimits
) -> list[str]:
    """Why an 8-count window is not a good move (empty when it is)."""
    problems = []
    speed = np.linalg.norm(np.diff(part, axis=0), axis=-1) * fps  # (frames-1, joints)
    if speed.size and float(speed.max()) > limits.max_joint_speed_m_s:
        problems.append(f"speed spike ({float(speed.max()):.1f} m/s)")
    if part.shape[0] >= 11:
        smooth = savgol_filter(part.astype(np.float64), 11, 2, axis=0)
        tremble = float(np.sqrt(np.mean(np.sum((part - smooth) ** 2, axis=-1), axis=0)).max())
        if tremble * 1000 > limits.max_tremble_mm:
            problems.append(f"tremble ({tremble * 1000:.1f} mm)")
    neck, head, spine = (part[:, JOINT_INDEX[j]] for j in ("neck", "head", "spine"))
    bend = _angle_deg(head - neck, neck - spine)
    if float(np.percentile(bend, 95)) > limits.max_head_bend_deg:
        problems.append(f"head off the neck ({float(np.percentile(bend, 95)):.0f} deg)")
    ankles = part[:, [JOINT_INDEX["l_ankle"], JOINT_INDEX["r_ankle"]], 1]
    below = floor_y - float(ankles.min())
    if below > limits.max_below_floor_m:
        problems.append(f"foot under the floor ({below * 100:.0f} cm)")
    feet = part[:, [JOINT_INDEX["l_ankle"], JOINT_INDEX["r_ankle"]]][:, :, [0, 2]]
    travel = float(np.linalg.norm(np.diff(feet, axis=0), axis=-1).sum())
    if travel < limits.min_foot_travel_m:
        problems.append(f"not stepping ({travel:.2f} m of foot travel)")
    pelvis = float(np.percentile(part[:, PELVIS, 1] - floor_y, 5))
    if pelvis < limits.min_pelvis_ratio * standing_pelvis_m:
        problems.append(f"bending down (pelvis {pelvis:.2f} m of {standing_pelvis_m:.2f} m)")
    return problems


def _angle_deg(a: npt.NDArray[np.floating], b: npt.NDArray[np.floating]) -> Floats:
    cos = (a * b).sum(axis=-1) / np.maximum(
        np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-9
    )
    return np.asarray(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))), dtype=np.float64)


def turning_deg(part: Keypoints) -> float:
    """Total rotation of the hip line about the vertical over the window (degrees, unsigned)."""
    yaw = line_yaw(part.astype(np.float64), "l_hip", "r_hip")
    return float(np.degrees(np.abs(np.diff(yaw)).sum()))


def mean_joint_speed(part: Keypoints, fps: float) -> float:
    """Mean speed of all joints, pelvis-centred, metres per second."""
    return float(joint_speed(part, fps).mean())


def difficulty_of(turn_deg: float, basic_match: float) -> str:
    """Beginner: a recognisable basic without turning; advanced: a full turn or more."""
    if turn_deg >= 300.0:
        return "advanced"
    if turn_deg < 120.0 and basic_match >= 0.5:
        return "beginner"
    return "intermediate"


def _load(path: Path, subject: str, trial: str) -> _Take:
    motion = read_bvh(path)
    keypoints = canonical_keypoints(motion) * np.float32(LIFE_SIZE)
    finding = detect_frame_rate(keypoints, header_rate(motion.frame_time_s))
    return _Take(f"{subject}_{trial}", subject, trial, keypoints, finding.fps)


@dataclass(frozen=True)
class _Window:
    take: _Take
    number: int
    start_s: float
    grid: EightCountGrid
    keypoints: Keypoints  # canonical frame
    turn_deg: float
    speed_m_s: float
    basic_match: float


def salsa_drafts(
    corpus: Path,
    *,
    limits: GlitchLimits | None = None,
    trials: Iterable[str] | None = None,
    on_take: Callable[[str], None] | None = None,
) -> tuple[list[MoveDraft], SalsaReport]:
    """Cut the CMU salsa captures under ``corpus`` into labelled 8-count moves (good windows)."""
    limits = limits or GlitchLimits()
    report = SalsaReport()
    windows: list[_Window] = []
    found = find_takes(corpus)
    wanted = sorted(found) if trials is None else sorted(set(trials))
    missing = [trial for trial in wanted if trial not in found]
    if missing:
        raise InvalidInput(
            f"{corpus}: no captures of trial {', '.join(missing)} (there are {', '.join(found)})"
        )
    for trial in wanted:
        takes = [_load(path, subject, trial) for subject, path in sorted(found[trial].items())]
        fps = takes[0].fps
        if any(take.fps != fps for take in takes):
            raise InvalidInput(f"trial {trial}: lead and follow differ in frame rate")
        for take in takes:
            report.frame_rates[take.name] = take.fps
        feet = {take.subject: feet_in_body_frame(take.keypoints) for take in takes}
        grid = find_eight_counts(feet, fps)
        report.grids[trial] = grid
        evidence = _evidence(feet)
        for take in takes:
            windows += _windows_of(take, grid, evidence, limits, report)
        if on_take is not None:
            on_take(trial)
    drafts = _label(windows)
    log.info("salsa library: %s", "; ".join(report.lines()))
    return drafts, report


def _windows_of(
    take: _Take, grid: EightCountGrid, evidence: Floats, limits: GlitchLimits, report: SalsaReport
) -> list[_Window]:
    keypoints, fps = take.keypoints, take.fps
    floor = floor_height(keypoints)
    standing = float(np.median(keypoints[:, PELVIS, 1])) - floor
    # One turn for the whole take (the dancer's mean facing onto +z), not one per window: the
    # end of a window is then exactly the start of the next, so the planner can chain them
    # with no jump at the cut, and a window that starts mid-turn stays mid-turn.
    yaw = facing_yaw(keypoints)
    length = round(grid.period_s * fps)  # a whole number of frames already
    kept = []
    for number, start_s in enumerate(grid.starts_s, start=1):
        first = round(start_s * fps)
        part = keypoints[first : first + length]
        if part.shape[0] < length:
            continue
        problems = window_problems(part, fps, floor, standing, limits)
        report.verdicts.append(WindowVerdict(take.name, start_s, tuple(problems)))
        if problems:
            continue
        local = evidence[first : first + length]
        match = float(_phase_scores(local - local.mean(), fps, grid.period_s, np.zeros(1))[0])
        motion = canonical_frame(part, fps, floor, yaw)
        turn, speed = turning_deg(part), mean_joint_speed(part, fps)
        kept.append(_Window(take, number, start_s, grid, motion, turn, speed, match))
    return kept


def _move_id(take: _Take, number: int) -> str:
    return f"cmu-salsa-{take.name.replace('_', '-')}-{number:02d}"


def _tags(window: _Window, role: str, continued: bool) -> tuple[str, ...]:
    """Search tags, and ``next:<id>`` naming the kept window that continues this one."""
    tags = ["mocap", "cmu", "salsa", role, f"trial-{window.take.trial}"]
    tags += ["turn"] if window.turn_deg >= 300.0 else []
    tags += ["basic"] if window.basic_match >= 0.5 else []
    tags += [f"{NEXT_TAG}{_move_id(window.take, window.number + 1)}"] if continued else []
    return tuple(tags)


def _label(windows: list[_Window]) -> list[MoveDraft]:
    """Drafts with energy from the library's speed tertiles and difficulty from the motion."""
    if not windows:
        return []
    speeds = np.array([w.speed_m_s for w in windows])
    low, high = np.percentile(speeds, [100 / 3, 200 / 3])
    kept = {(w.take.name, w.number) for w in windows}
    drafts = []
    for w in windows:
        energy = "low" if w.speed_m_s < low else "high" if w.speed_m_s >= high else "medium"
        difficulty = difficulty_of(w.turn_deg, w.basic_match)
        role = "lead" if w.take.subject == LEAD else "follow"
        end = w.start_s + w.grid.period_s
        drafts.append(
            MoveDraft(
                move_id=_move_id(w.take, w.number),
                name=f"Salsa {role} {w.take.name} 8-count {w.number}",
                description=(
                    f"Real salsa ({role}) from CMU motion capture {w.take.name}, "
                    f"{w.start_s:.2f}-{end:.2f} s: one 8-count at {w.grid.bpm:.0f} BPM, "
                    f"turning {w.turn_deg:.0f} deg, basic match {w.basic_match:.2f}, mean joint "
                    f"speed {w.speed_m_s:.2f} m/s. {ACKNOWLEDGEMENT}"
                ),
                style="salsa",
                difficulty=difficulty,
                energy=energy,
                tempo_bpm=round(w.grid.bpm, 2),
                counts=COUNTS,
                keypoints=w.keypoints,
                fps=w.take.fps,
                tags=_tags(w, role, (w.take.name, w.number + 1) in kept),
            )
        )
    return drafts
