"""Cross-field rules of the blueprint: timeline continuity, beat grid, transitions, sections.

They run after every field is valid (see the model validators in ``schemas.blueprint``) and
return ``(path, message)`` pairs, paths relative to the model they check, so the caller can
report all of them at once.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from schemas.blueprint import Blueprint, MoveUsed, Song

TIMELINE_TOLERANCE_S = 0.001
"""How far apart one move's end and the next move's start may be (1 ms: float rounding only)."""

Found = list[tuple[str, str]]


def format_seconds(seconds: float) -> str:
    """Seconds with at most three decimals and no trailing zeros: ``12.345``, ``0.08``, ``4``."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".") or "0"


def song_grid_problems(song: Song) -> Found:
    """Beats and downbeats increase and lie in the song; downbeats are beats; window fits."""
    problems = _increasing_within("beats_s", song.beats_s, song.duration_s)
    problems += _increasing_within("downbeats_s", song.downbeats_s, song.duration_s)
    for index, downbeat in enumerate(song.downbeats_s):
        if _distance_to_nearest(song.beats_s, downbeat) > TIMELINE_TOLERANCE_S:
            message = f"{format_seconds(downbeat)} s is not a beat"
            problems.append((f"downbeats_s[{index}]", message))
    if song.window.end_s > song.duration_s + TIMELINE_TOLERANCE_S:
        end = format_seconds(song.duration_s)
        problems.append(("window.end_s", f"is past the end of the song ({end} s)"))
    return problems


def timeline_problems(blueprint: Blueprint) -> Found:
    """The cross-field rules over moves, beat grid, window and output, as (path, message)."""
    frame = 1 / blueprint.video_output.fps
    tolerance = f"(tolerance {format_seconds(frame)} s)"
    window = blueprint.song.window
    moves = blueprint.moves_used
    problems: Found = []
    seen_sections: dict[int, str] = {}
    for index, move in enumerate(moves):
        path = f"moves_used[{index}]"
        previous = moves[index - 1] if index else None
        problems += _continuity(path, move, previous)
        cut = window.start_s + move.timeline_start_s
        off = _distance_to_nearest(blueprint.song.beats_s, cut)
        if off > frame:
            cut_text, off_text = format_seconds(cut), format_seconds(off)
            message = f"cut at {cut_text} s is {off_text} s off the nearest beat {tolerance}"
            problems.append((f"{path}.timeline_start_s", message))
        played = (move.clip_out_s - move.clip_in_s) / move.speed_factor
        if abs(played - move.span_s) > frame:
            played_text, span_text = format_seconds(played), format_seconds(move.span_s)
            message = (
                f"clip plays {played_text} s at speed {move.speed_factor:g} "
                f"but the move spans {span_text} s {tolerance}"
            )
            problems.append((f"{path}.clip_out_s", message))
        problems += _transition(path, move, previous)
        problems += _section(path, move, previous, seen_sections)
    end, length = moves[-1].timeline_end_s, window.length_s
    if abs(end - length) > frame:
        end_text, length_text = format_seconds(end), format_seconds(length)
        message = f"timeline ends at {end_text} s but the window is {length_text} s {tolerance}"
        problems.append((f"moves_used[{len(moves) - 1}].timeline_end_s", message))
    output = blueprint.video_output
    if output.audio_fade_in_s + output.audio_fade_out_s > length:
        message = "audio fades together are longer than the window"
        problems.append(("video_output.audio_fade_out_s", message))
    return problems


def _continuity(path: str, move: MoveUsed, previous: MoveUsed | None) -> Found:
    start = move.timeline_start_s
    if previous is None:
        if start > TIMELINE_TOLERANCE_S:
            message = f"first move starts at {format_seconds(start)} s, not 0"
            return [(f"{path}.timeline_start_s", message)]
        return []
    delta = start - previous.timeline_end_s
    previous_end = format_seconds(previous.timeline_end_s)
    if delta > TIMELINE_TOLERANCE_S:
        message = (
            f"gap of {format_seconds(delta)} s after the previous move (ends at {previous_end} s)"
        )
        return [(f"{path}.timeline_start_s", message)]
    if delta < -TIMELINE_TOLERANCE_S:
        message = (
            f"overlaps the previous move (ends at {previous_end} s) by {format_seconds(-delta)} s"
        )
        return [(f"{path}.timeline_start_s", message)]
    return []


def _transition(path: str, move: MoveUsed, previous: MoveUsed | None) -> Found:
    transition = move.transition_in
    if previous is None:
        if transition.type != "cut":
            return [(f"{path}.transition_in.type", "the first move must start with a 'cut'")]
        return []
    limit = min(move.span_s, previous.span_s) / 2
    if transition.duration_s > limit + TIMELINE_TOLERANCE_S:
        duration_text, limit_text = format_seconds(transition.duration_s), format_seconds(limit)
        message = (
            f"{duration_text} s is longer than half of the shorter adjacent move ({limit_text} s)"
        )
        return [(f"{path}.transition_in.duration_s", message)]
    return []


def _section(path: str, move: MoveUsed, previous: MoveUsed | None, seen: dict[int, str]) -> Found:
    section = move.section
    problems: Found = []
    if previous is not None and section.index < previous.section.index:
        problems.append((f"{path}.section.index", "sections must not go backwards"))
    if seen.get(section.index, section.label) != section.label:
        label = seen[section.index]
        problems.append((f"{path}.section.label", f"section {section.index} is {label!r}"))
    if section.repeat_of is not None and section.repeat_of not in seen:
        problems.append((f"{path}.section.repeat_of", f"no section {section.repeat_of} before"))
    seen.setdefault(section.index, section.label)
    return problems


def _increasing_within(name: str, times: list[float], end: float) -> Found:
    problems = []
    for index, time in enumerate(times):
        if index and time <= times[index - 1]:
            problems.append((f"{name}[{index}]", "times must be strictly increasing"))
        if time > end + TIMELINE_TOLERANCE_S:
            message = f"is after the end of the song ({format_seconds(end)} s)"
            problems.append((f"{name}[{index}]", message))
    return problems


def _distance_to_nearest(sorted_times: list[float], time: float) -> float:
    position = bisect.bisect_left(sorted_times, time)
    neighbours = sorted_times[max(position - 1, 0) : position + 1]
    return min((abs(candidate - time) for candidate in neighbours), default=float("inf"))
