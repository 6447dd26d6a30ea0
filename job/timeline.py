"""The blueprint's timeline cut into frame-exact pieces: segment bodies and transition windows.

Pure: frame arithmetic only. Cuts are rounded to output frames once, so every piece has an exact
frame count and the pieces add up to the window's length. A transition of ``d`` seconds at a cut
becomes a window of ``2h`` frames (``h = round(d * fps / 2)``) centred on the cut: the outgoing
move is played ``h`` frames past its end and the incoming one starts ``h`` frames early, so the
timeline keeps its length. Footage a clip lacks there is replaced by its edge frame (the FFmpeg
chain clones it). Only transition windows need two inputs; segment bodies are cacheable alone.

A move's body (its frames outside the transition windows) is cut into chunks on a grid of
``chunk_frames`` counted from the move's own first frame, so a whole chunk shows the same
footage whatever the move's neighbours are and is reused from the cache by any blueprint playing
that move at that speed; only the partial chunks at the body's two ends depend on the
neighbouring windows. A transition piece is exactly its window. Every move is sampled at its
blueprint ``speed_factor`` from ``clip_in_s`` (not at a speed fitted to its rounded frame count,
which would differ by position), so its last frame lands within one frame of ``clip_out_s``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Literal

from schemas.blueprint import Blueprint

XFADE_BY_TRANSITION: Mapping[str, str] = {
    "crossfade": "fade",
    "fade": "fade",
    "dissolve": "dissolve",
    "wipeleft": "wipeleft",
    "wiperight": "wiperight",
    "slideleft": "slideleft",
    "slideright": "slideright",
}
"""Blueprint transition type -> FFmpeg xfade name (``cut`` needs none)."""

COUNTS_PER_PHRASE = 8


@dataclass(frozen=True)
class ClipFile:
    """A downloaded clip: a resolved local file and the SHA-256 of its bytes."""

    path: Path
    sha256: str
    normalised: bool = True
    """Frames already letterboxed to the output size (a prepared clip); False for a source clip
    that pieces read directly, scaling and padding each frame they use."""
    demuxer: str = ""
    """The FFmpeg demuxer the file is opened with (``-f``), chosen by its probe; empty until the
    file is probed, and FFmpeg arguments refuse a clip without one."""


@dataclass(frozen=True)
class SourceSpan:
    """One clip played from clip time ``start_s`` at ``speed`` (negative start: hold frame 0)."""

    clip: ClipFile
    start_s: float
    speed: float
    mirror: bool


@dataclass(frozen=True)
class TextOverlay:
    """Text shown from ``start_s`` to ``end_s`` (piece time); ``slot`` says where on screen."""

    text: str
    start_s: float
    end_s: float
    slot: Literal["count", "name"]


@dataclass(frozen=True)
class Piece:
    """A stretch of output frames rendered by one FFmpeg run (one source, or two crossfaded)."""

    kind: Literal["segment", "transition"]
    move_index: int
    """The move (segment) or the incoming move (transition)."""
    start_frame: int
    frames: int
    sources: tuple[SourceSpan, ...]
    xfade: str | None = None
    overlays: tuple[TextOverlay, ...] = ()


@dataclass(frozen=True)
class Timeline:
    """All pieces in order, and the total frame count at ``fps``."""

    pieces: tuple[Piece, ...]
    frames: int
    fps: int

    @property
    def duration_s(self) -> float:
        """The exact duration of the video."""
        return self.frames / self.fps


def cut_frames(blueprint: Blueprint) -> list[int]:
    """Output frame of each move's start, then the total frame count."""
    fps = blueprint.video_output.fps
    total = round(blueprint.song.window.length_s * fps)
    starts = [min(round(move.timeline_start_s * fps), total) for move in blueprint.moves_used]
    return [*starts, total]


def half_windows(blueprint: Blueprint, cuts: list[int]) -> list[int]:
    """Half-width in frames of the transition window at each cut (0 for a hard cut)."""
    fps = blueprint.video_output.fps
    halves = []
    for index, move in enumerate(blueprint.moves_used):
        transition = move.transition_in
        if index == 0 or transition.type == "cut":
            halves.append(0)
            continue
        shorter = min(cuts[index] - cuts[index - 1], cuts[index + 1] - cuts[index])
        # At least one frame so a requested transition is visible; never past a neighbour's middle.
        halves.append(max(1, min(round(transition.duration_s * fps / 2), shorter // 2)))
    return [*halves, 0]


def plan_timeline(
    blueprint: Blueprint,
    clips: Mapping[str, ClipFile],
    *,
    overlays: bool = True,
    chunk_frames: int | None = None,
) -> Timeline:
    """Cut the blueprint into pieces; ``clips`` maps each ``clip_uri`` to its local file.

    ``chunk_frames`` (default: one second) is the body chunk grid: whole chunks (and the
    encoder's keyframe interval) are that long, partial ones sit at a body's ends.
    """
    fps = blueprint.video_output.fps
    grid = chunk_frames or fps
    moves = blueprint.moves_used
    cuts = cut_frames(blueprint)
    halves = half_windows(blueprint, cuts)
    bodies = [(halves[i], cuts[i + 1] - cuts[i] - halves[i + 1]) for i in range(len(moves))]

    def source(index: int, frame: int) -> SourceSpan:
        move = moves[index]
        start = move.clip_in_s + (frame - cuts[index]) / fps * move.speed_factor
        return SourceSpan(clips[move.clip_uri], start, move.speed_factor, move.mirror)

    texts = timeline_texts(blueprint, cuts) if overlays else []
    pieces: list[Piece] = []
    for index, move in enumerate(moves):
        half = halves[index]
        if half:
            window = (cuts[index] - half, 2 * half)
            pair = (source(index - 1, window[0]), source(index, window[0]))
            xfade = XFADE_BY_TRANSITION[move.transition_in.type]
            overlay = _within(texts, *window, fps)
            pieces.append(Piece("transition", index, *window, pair, xfade, overlay))
        for low, high in body_chunks(*bodies[index], grid):
            window = (cuts[index] + low, high - low)
            overlay = _within(texts, *window, fps)
            pieces.append(
                Piece("segment", index, *window, (source(index, window[0]),), None, overlay)
            )
    return Timeline(tuple(pieces), cuts[-1], fps)


def body_chunks(low: int, high: int, grid: int) -> list[tuple[int, int]]:
    """Move-relative frame ranges of the body ``[low, high)`` cut at the move's grid lines."""
    lines = range(-(-(low + 1) // grid) * grid, high, grid)
    edges = [low, *lines, high]
    return [(a, b) for a, b in pairwise(edges) if b > a]


def timeline_texts(blueprint: Blueprint, cuts: list[int]) -> list[TextOverlay]:
    """The overlays the blueprint asks for, in timeline seconds."""
    fps = blueprint.video_output.fps
    switches = blueprint.video_output.overlays
    end = cuts[-1] / fps
    texts: list[TextOverlay] = []
    if switches.move_names:
        for index, move in enumerate(blueprint.moves_used):
            texts.append(TextOverlay(move.name, cuts[index] / fps, cuts[index + 1] / fps, "name"))
    if switches.count_numbers:
        window = blueprint.song.window
        beats = [beat - window.start_s for beat in blueprint.song.beats_s]
        # Count from the first beat at the window start (the first cut sits on a beat).
        first = next((i for i, beat in enumerate(beats) if beat > -1 / fps), len(beats))
        inside = [beat for beat in beats[first:] if beat < end]
        for number, beat in enumerate(inside):
            until = inside[number + 1] if number + 1 < len(inside) else end
            text = str(number % COUNTS_PER_PHRASE + 1)
            texts.append(TextOverlay(text, max(beat, 0.0), until, "count"))
    return texts


def _within(texts: list[TextOverlay], start: int, frames: int, fps: int) -> tuple[TextOverlay, ...]:
    begin, finish = start / fps, (start + frames) / fps
    return tuple(
        TextOverlay(
            text.text, max(text.start_s, begin) - begin, min(text.end_s, finish) - begin, text.slot
        )
        for text in texts
        if text.start_s < finish and text.end_s > begin
    )
