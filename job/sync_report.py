"""The sync report's arithmetic: onset envelopes, their alignment, cut matching, tolerances.

Pure (standard library only: the job image has no numpy). :mod:`job.sync_measure` feeds it what
FFmpeg decoded from the rendered file and the song; docs/SYNC_REPORT.md says what each figure
means and why it is measured this way.
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from operator import mul
from typing import Any

SAMPLE_RATE = 8000
"""Audio is decoded mono at this rate: onsets need no more, and it keeps the pure-Python work
to 8,000 samples per second of video."""
HOP = 40
"""Samples per envelope step (5 ms at 8 kHz)."""
WINDOW = 320
"""Samples whose energy each step measures (40 ms, an onset detector's usual frame)."""
RISE = 4
"""Steps over which a rise in energy is measured (20 ms)."""
# A song window whose envelope rises this much somewhere (log energy: x1.65 within the rise) has
# onsets to align: a render without them there is out of step, not "not measured".
SONG_ONSET_RISE = 0.5
MAX_LAG_S = 1.0
"""Offsets searched either way; a larger one shows as a weak correlation (which fails)."""
COARSE = 4
"""The first search runs on envelopes summed over this many steps (20 ms), the second at full
resolution around its best lag."""
CUT_SEARCH_S = 0.5
"""How far from a planned cut its measured cut is looked for (less where cuts are closer)."""
CUT_CONTRAST = 2.0
"""A cut counts as seen when its frame's scene score is at least this many times the highest
score of the other frames around it (its immediate neighbours excepted)."""
# A seen frame this close to a planned cut (frames) is taken as that cut over a higher score
# further off (a flash, an edit inside a clip): _cut_peak.
CUT_NEAR_FRAMES = 2
CUT_MIN_SCORE = 0.002
"""Below this scene score (FFmpeg's 0-1 scale) nothing changed visibly at all."""
BEAT_GRID_MS = 2.0
"""Added to the cut tolerance: beat times are stored to the millisecond, and a frame's
timestamp in the MP4 to its time base."""


def onset_envelope(
    samples: Sequence[int], hop: int = HOP, window: int = WINDOW, rise: int = RISE
) -> list[float]:
    """How much the log energy of ``window`` samples rose over the last ``rise`` steps of
    ``hop`` samples (0 where it fell), one value per step.

    Log energy makes the envelope blind to gain (a fade or a louder master shifts it, a rise
    stays a rise); keeping rises alone keeps onsets, which is what a beat sounds like. The
    40 ms window and the 20 ms rise smooth away what AAC changes between two encodings of one
    song (a 5 ms window rising over one step correlated 0.42 between the song and its render,
    this one 0.97: docs/SYNC_REPORT.md).
    """
    prefix = [0, *accumulate(value * value for value in samples)]
    logs = [math.log((prefix[start + window] - prefix[start]) / window + 1.0)
            for start in range(0, len(samples) - window + 1, hop)]  # fmt: skip
    return [0.0] * min(rise, len(logs)) + [
        max(0.0, logs[index] - logs[index - rise]) for index in range(rise, len(logs))
    ]


@dataclass(frozen=True)
class Alignment:
    """Where the rendered audio sits against the song: ``lag`` steps late (negative: early)
    and the Pearson correlation of the two envelopes there."""

    lag: float
    strength: float


class _Correlator:
    """Pearson correlation of ``rendered`` against ``source`` shifted by a lag, with the sums
    over the source kept as prefix sums so each lag costs one pass of products."""

    def __init__(self, rendered: Sequence[float], source: Sequence[float], base: int) -> None:
        self.rendered = list(rendered)
        self.source = list(source)
        self.base = base
        self.n = len(self.rendered)
        self.sum_r = math.fsum(self.rendered)
        self.spread_r = self.n * math.fsum(v * v for v in self.rendered) - self.sum_r**2
        self.prefix = [0.0, *accumulate(self.source)]
        self.prefix_sq = [0.0, *accumulate(v * v for v in self.source)]

    def valid(self, lag: int) -> bool:
        start = self.base - lag
        return start >= 0 and start + self.n <= len(self.source)

    def __call__(self, lag: int) -> float:
        start = self.base - lag
        end = start + self.n
        sum_s = self.prefix[end] - self.prefix[start]
        spread_s = self.n * (self.prefix_sq[end] - self.prefix_sq[start]) - sum_s**2
        if self.spread_r <= 1e-12 or spread_s <= 1e-12:
            return 0.0
        products: float = sum(map(mul, self.rendered, self.source[start:end]))
        return (self.n * products - self.sum_r * sum_s) / math.sqrt(self.spread_r * spread_s)


def best_lag(
    rendered: Sequence[float], source: Sequence[float], base: int, lags: Sequence[int]
) -> Alignment | None:
    """The lag among ``lags`` where ``rendered[i]`` best matches ``source[base + i - lag]``,
    refined between steps by a parabola through its neighbours; on a tie the smaller shift wins.
    None when either envelope is flat (nothing to align) or no lag fits inside ``source``.
    """
    correlate = _Correlator(rendered, source, base)
    if correlate.n < 3 or correlate.spread_r <= 1e-12:
        return None
    scores = {lag: correlate(lag) for lag in lags if correlate.valid(lag)}
    if not scores or max(scores.values()) <= 0.0:
        return None
    peak = min(scores, key=lambda lag: (-scores[lag], abs(lag)))
    before, at, after = scores.get(peak - 1), scores[peak], scores.get(peak + 1)
    shift = 0.0
    if before is not None and after is not None:
        curve = before - 2 * at + after
        if curve < 0:
            shift = max(-0.5, min(0.5, 0.5 * (before - after) / curve))
    return Alignment(peak + shift, at)


def align(
    rendered: Sequence[float], source: Sequence[float], base: int, max_lag: int
) -> Alignment | None:
    """:func:`best_lag` over ``-max_lag..max_lag``: first on envelopes summed over
    ``COARSE`` steps, then at full resolution within two coarse steps of the coarse peak."""
    coarse = best_lag(
        _summed(rendered, COARSE),
        _summed(source[base % COARSE :], COARSE),
        base // COARSE,
        range(-(max_lag // COARSE), max_lag // COARSE + 1),
    )
    if coarse is None:
        return None
    centre = round(coarse.lag * COARSE)
    near = range(max(-max_lag, centre - 2 * COARSE), min(max_lag, centre + 2 * COARSE) + 1)
    return best_lag(rendered, source, base, near)


def audio_alignment(
    rendered: Sequence[float], source: Sequence[float], base: int, max_lag: int
) -> Alignment | None:
    """:func:`align`, except that where the song's window has onsets (a rise of at least
    ``SONG_ONSET_RISE``) and no lag fits the rendered audio (it is silent, or no lag correlates
    positively), the render is called out of step: lag 0 at correlation 0, which the
    ``min_audio_correlation`` tolerance fails. None only when the song itself has no onsets
    there (a steady tone): nothing to align, nothing claimed."""
    found = align(rendered, source, base, max_lag)
    if found is not None:
        return found
    window = source[max(0, base - max_lag) : base + len(rendered) + max_lag]
    if max(window, default=0.0) >= SONG_ONSET_RISE:
        return Alignment(0.0, 0.0)
    return None


def _summed(values: Sequence[float], size: int) -> list[float]:
    return [math.fsum(values[i : i + size]) for i in range(0, len(values) - size + 1, size)]


@dataclass(frozen=True)
class SceneScores:
    """FFmpeg's scene-change score of each decoded frame (0-1: how much the picture changed
    from the frame before), with the frame's timestamp."""

    times_s: tuple[float, ...]
    scores: tuple[float, ...]


@dataclass(frozen=True)
class PlannedCut:
    """A hard cut of the blueprint: the move it starts, and its time on the rendered timeline
    (the cut rounded to a frame, as the job renders it)."""

    move_index: int
    time_s: float


def scan_windows(
    cuts_s: Sequence[float],
    fps: float,
    duration_s: float,
    *,
    reach_s: float = CUT_SEARCH_S,
    merge_gap_s: float = 1.0,
) -> list[tuple[float, float]]:
    """The stretches of the video whose frames the cut search needs: ``reach_s`` either side
    of each cut plus two frames (so the first frame decoded, which has no score, is never
    one compared), merged where less than ``merge_gap_s`` apart (decoding through a short gap
    costs less than another seek back to a keyframe)."""
    margin = reach_s + 2 / fps
    windows: list[tuple[float, float]] = []
    for cut in sorted(cuts_s):
        start, end = max(0.0, cut - margin), min(duration_s, cut + margin)
        if windows and start - windows[-1][1] < merge_gap_s:
            windows[-1] = (windows[-1][0], max(windows[-1][1], end))
        else:
            windows.append((start, end))
    return windows


@dataclass(frozen=True)
class CutCheck:
    """One planned hard cut against the rendered file and the song's beats."""

    move_index: int
    planned_s: float
    measured_s: float | None
    """Timestamp of the first frame after the measured cut; None when the cut is not seen."""
    beat_s: float | None
    """The song beat nearest the measured cut (window-relative seconds)."""
    error_ms: float | None
    """``measured_s - beat_s``: positive when the picture changes after the beat."""
    score: float
    """The scene score of the frame taken as the cut (the highest near the planned time)."""
    contrast: float
    """``score`` over the highest score of the other frames around it."""

    @property
    def drift_ms(self) -> float | None:
        """``measured_s - planned_s``: a cut on a beat, but not the one planned, shows here."""
        return None if self.measured_s is None else (self.measured_s - self.planned_s) * 1000

    def as_json(self) -> dict[str, Any]:
        return {
            "move_index": self.move_index,
            "planned_s": round(self.planned_s, 4),
            "measured_s": None if self.measured_s is None else round(self.measured_s, 4),
            "beat_s": None if self.beat_s is None else round(self.beat_s, 4),
            "error_ms": None if self.error_ms is None else round(self.error_ms, 1),
            "drift_ms": None if self.drift_ms is None else round(self.drift_ms, 1),
            "score": round(self.score, 4),
            "contrast": round(self.contrast, 2) if math.isfinite(self.contrast) else None,
        }


def match_cuts(
    planned: Sequence[PlannedCut],
    scenes: SceneScores,
    beats_s: Sequence[float],
    fps: float,
    *,
    search_s: float = CUT_SEARCH_S,
) -> list[CutCheck]:
    """Each planned cut's measured cut: the frame with the highest scene score within
    ``search_s`` of it (less where another cut is nearer), counted as seen only when its score
    is at least ``CUT_MIN_SCORE`` and ``CUT_CONTRAST`` times every other score there but its
    two neighbours'. ``beats_s`` are window-relative."""
    times, scores = scenes.times_s, scenes.scores
    checks = []
    for index, cut in enumerate(planned):
        reach = search_s
        for other in (planned[index - 1] if index else None,
                      planned[index + 1] if index + 1 < len(planned) else None):  # fmt: skip
            if other is not None:
                reach = min(reach, abs(other.time_s - cut.time_s) / 2)
        reach = max(reach, 1.5 / fps)
        low = bisect_left(times, cut.time_s - reach)
        high = bisect_left(times, cut.time_s + reach)
        window = range(low, high)
        if not window:
            checks.append(CutCheck(cut.move_index, cut.time_s, None, None, None, 0.0, 0.0))
            continue
        peak, contrast = _cut_peak(window, times, scores, cut.time_s, fps)
        seen = scores[peak] >= CUT_MIN_SCORE and contrast >= CUT_CONTRAST
        if not seen:
            checks.append(
                CutCheck(cut.move_index, cut.time_s, None, None, None, scores[peak], contrast)
            )
            continue
        measured = times[peak]
        beat = min(beats_s, key=lambda b: abs(b - measured)) if beats_s else None
        error = None if beat is None else (measured - beat) * 1000
        checks.append(
            CutCheck(cut.move_index, cut.time_s, measured, beat, error, scores[peak], contrast)
        )
    return checks


def _contrast(scores: Sequence[float], window: range, peak: int, *also: int) -> float:
    """``scores[peak]`` over the highest score in ``window`` away (more than one frame) from
    ``peak`` and from each of ``also``."""
    marks = (peak, *also)
    others = [scores[i] for i in window if all(abs(i - mark) > 1 for mark in marks)]
    background = max(others, default=0.0)
    return scores[peak] / background if background > 0 else math.inf


def _cut_peak(
    window: range, times: Sequence[float], scores: Sequence[float], planned_s: float, fps: float
) -> tuple[int, float]:
    """The frame taken as a planned cut, and its contrast: the highest score in ``window``,
    unless the best frame within ``CUT_NEAR_FRAMES`` of the planned time stands out as a cut
    from everything but that highest frame (a flash or an edit inside a clip, nearby, can
    outscore a cut; preferring the one at its planned place keeps a correct render from
    failing, and a cut rendered elsewhere still leaves nothing there to prefer)."""
    peak = max(window, key=lambda i: (scores[i], -abs(times[i] - planned_s)))
    near = [i for i in window if abs(times[i] - planned_s) <= CUT_NEAR_FRAMES / fps + 1e-6]
    if near:
        local = max(near, key=lambda i: (scores[i], -abs(times[i] - planned_s)))
        if abs(local - peak) > 1:
            local_contrast = _contrast(scores, window, local, peak)
            if scores[local] >= CUT_MIN_SCORE and local_contrast >= CUT_CONTRAST:
                return local, local_contrast
    return peak, _contrast(scores, window, peak)


@dataclass(frozen=True)
class Tolerances:
    """What the report must meet (the blueprint's ``video_output.sync``, in the job's units)."""

    cut_error_ms: float
    audio_offset_ms: float
    min_audio_correlation: float
    duration_error_ms: float


@dataclass(frozen=True)
class SyncReport:
    """The figures measured on one rendered file (docs/SYNC_REPORT.md)."""

    fps: int
    timeline_s: float
    duration_s: float
    """The file's duration (ffprobe's format section)."""
    video_duration_s: float
    audio_duration_s: float
    cuts: tuple[CutCheck, ...]
    transitions: int
    """Moves entered by a transition (a fade has no single frame to time): not measured."""
    audio_offset_ms: float | None
    """How late the rendered audio is against the song at the blueprint's window (negative:
    early); None when the song's window has no onsets to align."""
    audio_correlation: float | None
    tolerances: Tolerances
    failures: tuple[str, ...] = field(default=())
    measure_s: float = 0.0
    """Wall time the measuring took."""

    @property
    def measured(self) -> list[CutCheck]:
        return [cut for cut in self.cuts if cut.error_ms is not None]

    @property
    def cut_error_max_ms(self) -> float | None:
        errors = [abs(cut.error_ms) for cut in self.measured if cut.error_ms is not None]
        return max(errors) if errors else None

    @property
    def cut_error_median_ms(self) -> float | None:
        errors = [abs(cut.error_ms) for cut in self.measured if cut.error_ms is not None]
        return statistics.median(errors) if errors else None

    @property
    def duration_error_ms(self) -> float:
        """The larger of the file's and the picture's distance from the timeline."""
        worst = max(abs(self.duration_s - self.timeline_s),
                    abs(self.video_duration_s - self.timeline_s))  # fmt: skip
        return worst * 1000

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> dict[str, Any]:
        """The compact figures ``video.completed`` carries (:class:`schemas.events.SyncSummary`
        without the report's URI)."""
        return {
            "passed": self.passed,
            "cuts_planned": len(self.cuts),
            "cuts_measured": len(self.measured),
            "cut_error_max_ms": _round(self.cut_error_max_ms),
            "cut_error_median_ms": _round(self.cut_error_median_ms),
            "audio_offset_ms": _round(self.audio_offset_ms),
            "audio_correlation": _round(self.audio_correlation, 3),
            "duration_s": round(self.duration_s, 4),
            "duration_error_ms": round(self.duration_error_ms, 1),
        }

    def as_json(self) -> dict[str, Any]:
        """The whole report, as stored beside the video."""
        tolerances = self.tolerances
        return {
            "version": 1,
            **self.summary(),
            "failures": list(self.failures),
            "fps": self.fps,
            "timeline_s": round(self.timeline_s, 4),
            "video_duration_s": round(self.video_duration_s, 4),
            "audio_duration_s": round(self.audio_duration_s, 4),
            "transitions_not_measured": self.transitions,
            "tolerances": {
                "cut_error_ms": round(tolerances.cut_error_ms, 1),
                "audio_offset_ms": tolerances.audio_offset_ms,
                "min_audio_correlation": tolerances.min_audio_correlation,
                "duration_error_ms": round(tolerances.duration_error_ms, 1),
            },
            "cuts": [cut.as_json() for cut in self.cuts],
            "measure_s": round(self.measure_s, 3),
        }

    def lines(self) -> list[str]:
        """The report for people, a line per figure (``choreo render`` prints them)."""
        seen = len(self.measured)
        cuts = f"cuts: {seen} of {len(self.cuts)} hard cuts seen"
        if seen:
            cuts += (f", off the beat by {self.cut_error_median_ms:.1f} ms median, "
                     f"{self.cut_error_max_ms:.1f} ms at most")  # fmt: skip
        if self.transitions:
            cuts += f" ({self.transitions} transitions not timed)"
        if self.audio_offset_ms is None:
            audio = "audio: not measured (the song's window has no onsets to align)"
        else:
            late = "late" if self.audio_offset_ms >= 0 else "early"
            audio = (f"audio: {abs(self.audio_offset_ms):.1f} ms {late} against the song "
                     f"(onset correlation {self.audio_correlation:.2f})")  # fmt: skip
        duration = (f"duration: {self.duration_s:.3f} s, timeline {self.timeline_s:.3f} s "
                    f"({self.duration_error_ms:.1f} ms off)")  # fmt: skip
        return [cuts, audio, duration, *(f"FAILED: {failure}" for failure in self.failures)]


def _cut_failure(
    cuts: Sequence[CutCheck],
    report: SyncReport,
    what: str,
    off_ms: Callable[[CutCheck], float | None],
    from_where: Callable[[CutCheck], str],
) -> str:
    """How many measured cuts are ``what`` by more than the tolerance, the worst three named."""
    worst = sorted(cuts, key=lambda cut: -abs(off_ms(cut) or 0.0))[:3]
    shown = "; ".join(
        f"moves_used[{cut.move_index}] at {cut.measured_s:.3f} s is {off_ms(cut) or 0.0:+.1f} ms "
        f"from {from_where(cut)}"
        for cut in worst
    )
    return (
        f"{len(cuts)} of {len(report.measured)} measured cuts {what} by more than "
        f"{report.tolerances.cut_error_ms:.1f} ms: {shown}"
    )


def tolerance_failures(report: SyncReport) -> list[str]:
    """Each way ``report`` misses its tolerances, with the figures (empty: it passes)."""
    limits = report.tolerances
    failures = []
    late = [cut for cut in report.measured
            if cut.error_ms is not None and abs(cut.error_ms) > limits.cut_error_ms]  # fmt: skip
    if late:
        failures.append(_cut_failure(
            late, report, "off the beat",
            lambda cut: cut.error_ms, lambda cut: f"the beat at {cut.beat_s:.3f} s",
        ))  # fmt: skip
    moved = [cut for cut in report.measured if cut not in late
             and cut.drift_ms is not None and abs(cut.drift_ms) > limits.cut_error_ms]  # fmt: skip
    if moved:
        failures.append(_cut_failure(
            moved, report, "on a beat but away from their planned frame",
            lambda cut: cut.drift_ms, lambda cut: f"its planned {cut.planned_s:.3f} s",
        ))  # fmt: skip
    offset, strength = report.audio_offset_ms, report.audio_correlation
    if offset is not None and strength is not None:
        if strength < limits.min_audio_correlation:
            failures.append(
                f"audio does not follow the song: onset correlation {strength:.2f} "
                f"(minimum {limits.min_audio_correlation:g}) at the best offset {offset:+.1f} ms"
            )
        elif abs(offset) > limits.audio_offset_ms:
            failures.append(
                f"audio is {offset:+.1f} ms off the song (onset correlation {strength:.2f}; "
                f"tolerance {limits.audio_offset_ms:g} ms)"
            )
    if report.duration_error_ms > limits.duration_error_ms:
        failures.append(
            f"video lasts {report.duration_s:.3f} s (picture {report.video_duration_s:.3f} s), "
            f"the timeline {report.timeline_s:.3f} s: {report.duration_error_ms:.1f} ms off "
            f"(tolerance {limits.duration_error_ms:.1f} ms)"
        )
    return failures


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)
