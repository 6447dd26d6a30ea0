"""Prepared clips: a large source clip decoded and scaled once per output size, cached.

A piece reads the *prepared* copy of such a clip (letterboxed to the output frame, yuv420p, a
keyframe every few frames), so a transition window seeks in a few frames instead of decoding the
source from its start, and no piece scales 1080p footage again. A clip no larger than the output
frame (at most 60 fps) is not prepared: pieces read it directly and letterbox the frames they
show, which costs less than preparing it (a full extra encode) when every clip is new.

When a clip is not prepared yet, the move bodies that read it and are not cached either come out
of the same FFmpeg run (a *clip run*): the source is decoded and scaled once, ``split`` between
the prepared copy and one branch per body. A first render therefore decodes each source once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from job.errors import FfmpegFailed
from job.ffmpeg_plan import (
    PREPARED_MAX_FPS,
    BodyOutput,
    EncodeSettings,
    clip_run_args,
    prepare_args,
)
from job.ffmpeg_run import media_duration, run_ffmpeg
from job.segment_cache import SegmentCache
from job.timeline import ClipFile, Piece

log = logging.getLogger(__name__)

MAX_BODIES_PER_RUN = 2
"""Bodies one clip run encodes (each an x264 instance in the same FFmpeg process): at
``veryfast`` three took ffmpeg to 303 MB and two to 247 MB (goal 300 MB); the rest of a clip's
missing bodies read its prepared copy."""


def worth_preparing(info: Mapping[str, Any], settings: EncodeSettings) -> bool:
    """Whether a clip (ffprobe's view of it) is prepared before pieces read it.

    Yes when its frames are larger than the output frame (decoding and scaling them again for
    every piece costs more than decoding a prepared copy) or faster than ``PREPARED_MAX_FPS``.
    """
    stream = _video_stream(info)
    try:
        pixels = int(stream.get("width") or 0) * int(stream.get("height") or 0)
    except (TypeError, ValueError):
        return True
    return pixels > settings.width * settings.height or frame_rate(info) > PREPARED_MAX_FPS


@dataclass(frozen=True)
class Body:
    """Missing consecutive chunks of one move and their cache keys."""

    chunks: tuple[Piece, ...]
    keys: tuple[str, ...]


@dataclass
class ClipRun:
    """One source clip to prepare, and the bodies to render from the same decode."""

    clip: ClipFile
    prepared: Path
    source_fps: float
    source_frames: int
    bodies: list[Body] = field(default_factory=list)


def plan_clip_runs(
    batches: Sequence[Sequence[int]],
    pieces: Sequence[Piece],
    keys: Sequence[str],
    cached: Sequence[bool],
    sources: Mapping[Path, tuple[ClipFile, Mapping[str, Any]]],
) -> list[ClipRun]:
    """The clip runs a render needs: one per unprepared clip that a missing piece reads.

    ``sources`` maps each prepared-clip path to its source clip and ffprobe's view of it. A
    batch of missing body chunks joins its clip's run (up to ``MAX_BODIES_PER_RUN``, the same
    footage only once); transitions and the rest wait for the prepared copies.
    """
    runs: dict[Path, ClipRun] = {}
    for piece, hit in zip(pieces, cached, strict=True):
        if hit:
            continue
        for span in piece.sources:
            path = span.clip.path
            if path not in runs and not path.is_file():
                clip, info = sources[path]
                runs[path] = ClipRun(clip, path, frame_rate(info), frame_count(info))
    seen: set[tuple[str, ...]] = set()
    for slots in batches:
        missing = [slot for slot in slots if not cached[slot]]
        if not missing or pieces[slots[0]].kind != "segment":
            continue
        span = pieces[missing[0]].sources[0]
        run = runs.get(span.clip.path)
        low, high = slots.index(missing[0]), slots.index(missing[-1]) + 1
        body_keys = tuple(keys[slot] for slot in slots[low:high])
        if run is None or span.start_s < 0 or body_keys in seen:
            continue
        if len(run.bodies) < MAX_BODIES_PER_RUN:
            run.bodies.append(Body(tuple(pieces[slot] for slot in slots[low:high]), body_keys))
            seen.add(body_keys)
    return list(runs.values())


def run_clip(
    run: ClipRun,
    settings: EncodeSettings,
    cache: SegmentCache,
    *,
    font: Path | None,
    text_dir: Path,
    timeout_s: float,
    on_fraction: Callable[[float], None] | None = None,
) -> None:
    """Prepare ``run.clip`` into the cache and render its bodies' chunks into the cache too."""
    started = time.monotonic()
    name = run.clip.path.name
    with cache.scratch() as scratch_dir:
        scratch = Path(scratch_dir)
        prepared = scratch / "prepared.mp4"
        outputs = [
            BodyOutput(body.chunks, scratch / (f"b{index}-%04d.h264" if len(body.chunks) > 1
                                               else f"b{index}-0000.h264"))
            for index, body in enumerate(run.bodies)
        ]  # fmt: skip
        if outputs:
            args = clip_run_args(
                run.clip, settings, prepared, outputs,
                source_fps=run.source_fps, font=font, text_dir=text_dir,
            )  # fmt: skip
        else:
            args = prepare_args(run.clip, settings, prepared, source_fps=run.source_fps)
        frames = max(run.source_frames, 1)
        run_ffmpeg(
            args,
            what=f"preparing clip {name}" + (f" and {len(outputs)} move bodies" if outputs else ""),
            timeout_s=timeout_s,
            on_frames=None if on_fraction is None else lambda done: on_fraction(done / frames),
        )
        for index, body in enumerate(run.bodies):
            made = sorted(scratch.glob(f"b{index}-*.h264"))
            store_chunks(cache, made, body.keys, f"preparing clip {name}, body {index}")
        cache.store("clips", run.prepared.name.removesuffix(".mp4"), ".mp4", prepared)
    log.info(
        "clip prepared",
        extra={"step": "prepare", "clip": name, "bodies": len(run.bodies),
               "duration_ms": round((time.monotonic() - started) * 1000)},
    )  # fmt: skip


def store_chunks(
    cache: SegmentCache, made: Sequence[Path], keys: Sequence[str], what: str
) -> list[Path]:
    """Move the chunk files FFmpeg wrote into the cache under ``keys``, one each, in order."""
    if len(made) != len(keys):
        raise FfmpegFailed(
            f"{what}: expected {len(keys)} chunk files, FFmpeg wrote {len(made)}", step="assemble"
        )
    return [cache.store("pieces", key, ".h264", file) for key, file in zip(keys, made, strict=True)]


def frame_rate(info: Mapping[str, Any]) -> float:
    """The first video stream's frame rate from ffprobe's ``r_frame_rate`` (0 when unknown)."""
    stream = _video_stream(info)
    numerator, _, denominator = str(stream.get("r_frame_rate") or "0").partition("/")
    try:
        return float(numerator) / float(denominator or 1)
    except (ValueError, ZeroDivisionError):
        return 0.0


def frame_count(info: Mapping[str, Any]) -> int:
    """The first video stream's frame count (ffprobe's, else duration x rate; 0 when unknown)."""
    stream = _video_stream(info)
    try:
        counted = int(stream.get("nb_frames") or 0)
        duration = float(stream.get("duration") or 0) or media_duration(info)
    except (TypeError, ValueError):
        return 0
    return counted or round(duration * min(frame_rate(info), 60.0))


def _video_stream(info: Mapping[str, Any]) -> Mapping[str, Any]:
    streams = info.get("streams", [])
    return next((s for s in streams if s.get("codec_type") == "video"), {})
