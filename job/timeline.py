"""The blueprint's timeline cut into frame-exact pieces: segment bodies and transition windows.

Pure: frame arithmetic only. Cuts are rounded to output frames once, so every piece has an exact
frame count and the pieces add up to the window's length. A transition of ``d`` seconds at a cut
becomes a window of ``2h`` frames (``h = round(d * fps / 2)``) centred on the cut: the outgoing
move is played ``h`` frames past its end and the incoming one starts ``h`` frames early, so the
timeline keeps its length. Footage a clip lacks there is replaced by its edge frame (the FFmpeg
chain clones it). Only transition windows need two inputs; segment bodies are cacheable alone.

A move's body is cut into chunks on a grid of ``chunk_frames`` counted from the move's own first
frame, so a chunk shows the same footage whatever the move's neighbours are and is reused from
the cache by any blueprint playing that move at that speed. A transition piece takes the
off-grid frames on either side of its window (the outgoing body's tail since its last grid line,
the incoming body's head up to its first), so the chunks stay neighbour-independent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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
    fade_offset: int = 0
    """Transition: frames of the outgoing move shown before the fade starts."""
    fade_frames: int = 0
    """Transition: frames the fade lasts (centred on the cut); the incoming move follows."""


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

    ``chunk_frames`` (default: one second) is the body chunk grid; the encoder must put a
    keyframe every ``chunk_frames`` so chunks of one move can be encoded in a single run.
    """
    fps = blueprint.video_output.fps
    grid = chunk_frames or fps
    moves = blueprint.moves_used
    cuts = cut_frames(blueprint)
    halves = half_windows(blueprint, cuts)
    speeds = [
        (move.clip_out_s - move.clip_in_s) / max(cuts[i + 1] - cuts[i], 1) * fps
        for i, move in enumerate(moves)
    ]
    bodies = [
        body_range(cuts[i + 1] - cuts[i], halves[i], halves[i + 1], grid) for i in range(len(moves))
    ]

    def source(index: int, frame: int) -> SourceSpan:
        move = moves[index]
        start = move.clip_in_s + (frame - cuts[index]) / fps * speeds[index]
        return SourceSpan(clips[move.clip_uri], start, speeds[index], move.mirror)

    texts = timeline_texts(blueprint, cuts) if overlays else []
    pieces: list[Piece] = []
    for index, move in enumerate(moves):
        half = halves[index]
        body_start, body_end = (cuts[index] + frame for frame in bodies[index])
        if half:
            fade_start = cuts[index] - half
            window_start = cuts[index - 1] + bodies[index - 1][1]
            window = (window_start, body_start - window_start)
            pair = (source(index - 1, window_start), source(index, fade_start))
            xfade = XFADE_BY_TRANSITION[move.transition_in.type]
            overlay = _within(texts, *window, fps)
            pieces.append(
                Piece("transition", index, *window, pair, xfade, overlay,
                      fade_offset=fade_start - window_start, fade_frames=2 * half)
            )  # fmt: skip
        # On the grid: one chunk per cell (the last may be short); off it: one piece.
        step = grid if bodies[index][0] % grid == 0 else body_end - body_start
        chunk_start = body_start
        while chunk_start < body_end:
            chunk_end = min(chunk_start + step, body_end)
            window = (chunk_start, chunk_end - chunk_start)
            overlay = _within(texts, *window, fps)
            pieces.append(
                Piece("segment", index, *window, (source(index, chunk_start),), None, overlay)
            )
            chunk_start = chunk_end
    return Timeline(tuple(pieces), cuts[-1], fps)


def body_range(frames: int, half_in: int, half_out: int, grid: int) -> tuple[int, int]:
    """The move-relative frames ``[start, end)`` its body chunks cover.

    Grid-aligned inside the part no transition window uses; the move's true end counts as a grid
    line. A move too short for one grid cell keeps its whole body as one (neighbour-dependent)
    piece.
    """
    low, high = half_in, frames - half_out
    start = -(-low // grid) * grid
    end = high if half_out == 0 else high // grid * grid
    if start >= end:
        return low, max(low, high)
    return start, end


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
