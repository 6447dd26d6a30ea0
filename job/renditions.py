"""Practice renditions of a rendered video: mirrored, slowed, and loop clips (docs/PRACTICE.md).

Each reuses what the main render left behind:

- **mirror** is the blueprint assembled again with every move's ``mirror`` flipped (and wipes and
  slides turned the other way). Pieces draw their overlays after a move's ``hflip``, so the
  text reads the right way round; prepared clips, probes and the audio come from the cache, but
  the pieces are mostly new (about the main render's cost the first time), then cached.
- **slow** rescales the main video's timestamps (``-itsscale``) and copies its H.264 stream as it
  is; only the audio is re-encoded, slowed with its pitch kept (``rubberband`` when this FFmpeg
  has it, else ``atempo``).
- **loops** are cut from the main video, one FFmpeg run per clip: a clip starting on one of its
  keyframes (every piece of the main video starts with one: each move's first frame after a hard
  cut, and every second from it) copies the H.264 packets; any other is decoded and encoded. The
  counts are overlaid: from the main video when it shows them, else from a copy assembled with
  the count overlay on.

The argument builders are pure; :func:`render_renditions` runs them.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from job.assemble import RenderOptions, assemble_video, x264_threads
from job.errors import FfmpegFailed
from job.ffmpeg_plan import (
    AUDIO_CODEC_ARGS,
    FFMPEG_COMMON,
    OWN_MP4_DEMUXER,
    EncodeSettings,
    file_input,
    media_input,
)
from job.ffmpeg_run import run_ffmpeg
from job.timeline import COUNTS_PER_PHRASE, ClipFile, cut_frames
from schemas.blueprint import Blueprint, Practice
from schemas.media_formats import forced_input

log = logging.getLogger(__name__)

MIRRORED_TRANSITION = {
    "wipeleft": "wiperight",
    "wiperight": "wipeleft",
    "slideleft": "slideright",
    "slideright": "slideleft",
}
"""A wipe or slide seen in a mirror goes the other way."""


@dataclass(frozen=True)
class LoopSpan:
    """A part of the video worth practising on repeat: a section or an 8-count."""

    family: Literal["section", "count"]
    number: int
    """1-based within its family."""
    label: str
    start_frame: int
    end_frame: int


@dataclass(frozen=True)
class RenditionFile:
    """A rendered rendition: what it is, the local file, and the suffix its name takes."""

    kind: Literal["mirror", "slow", "loop", "page"]
    path: Path
    suffix: str
    """Appended to the video's name without ``.mp4``: ``-mirror.mp4``, ``.html``."""
    speed: float | None = None
    label: str | None = None
    seconds: float = 0.0
    """Wall time it took to render (the page: to write)."""


def rendition_uri(video_uri: str, suffix: str) -> str:
    """The rendition's URI beside the video: ``videos/t.mp4`` + ``-mirror.mp4``."""
    stem = video_uri[:-4] if video_uri.lower().endswith(".mp4") else video_uri
    return stem + suffix


def slow_suffix(speed: float) -> str:
    """``-slow075.mp4`` for 0.75."""
    return f"-slow{round(speed * 100):03d}.mp4"


def loop_suffix(span: LoopSpan) -> str:
    """``-loop-section-01.mp4``, ``-loop-count-007.mp4``."""
    width = 2 if span.family == "section" else 3
    return f"-loop-{span.family}-{span.number:0{width}d}.mp4"


def rendition_suffixes(blueprint: Blueprint, practice: Practice) -> list[str]:
    """The suffixes of every file ``practice`` makes, known before rendering."""
    suffixes = ["-mirror.mp4"] if practice.mirror else []
    suffixes += [slow_suffix(speed) for speed in practice.slow]
    if practice.loops:
        suffixes += [loop_suffix(span) for span in loop_spans(blueprint)]
    return suffixes + ([".html"] if practice.page else [])


def with_practice(blueprint: Blueprint, practice: Practice) -> Blueprint:
    """The blueprint asking for ``practice`` (``choreo render --practice``)."""
    output = blueprint.video_output.model_copy(update={"practice": practice})
    return blueprint.model_copy(update={"video_output": output})


ALL_PRACTICE = Practice(mirror=True, slow=[0.75, 0.5], loops=True, page=True)
"""Every rendition: what ``choreo render --practice`` asks for."""


def mirrored_blueprint(blueprint: Blueprint) -> Blueprint:
    """The same choreography seen in a mirror: every move's ``mirror`` flipped."""
    moves = [
        move.model_copy(
            update={
                "mirror": not move.mirror,
                "transition_in": move.transition_in.model_copy(
                    update={
                        "type": MIRRORED_TRANSITION.get(
                            move.transition_in.type, move.transition_in.type
                        )
                    }
                ),
            }
        )
        for move in blueprint.moves_used
    ]
    return blueprint.model_copy(update={"moves_used": moves})


def with_counts(blueprint: Blueprint) -> Blueprint:
    """The blueprint with the 8-count overlay switched on (for loop clips)."""
    output = blueprint.video_output
    overlays = output.overlays.model_copy(update={"count_numbers": True})
    return blueprint.model_copy(
        update={"video_output": output.model_copy(update={"overlays": overlays})}
    )


def loop_spans(blueprint: Blueprint) -> list[LoopSpan]:
    """Sections (in order of ``section.index``), then 8-counts from the first beat.

    Frames are the main video's; an 8-count runs from its count 1 to the next one's (the last to
    the video's end), counted as the count overlay counts.
    """
    fps = blueprint.video_output.fps
    cuts = cut_frames(blueprint)
    total = cuts[-1]
    spans: list[LoopSpan] = []
    sections: dict[int, tuple[str, int, int]] = {}
    for index, move in enumerate(blueprint.moves_used):
        label, start, _ = sections.get(move.section.index, (move.section.label, cuts[index], 0))
        sections[move.section.index] = (label, start, cuts[index + 1])
    for number, (label, start, end) in enumerate(sections.values(), start=1):
        if end > start:
            spans.append(LoopSpan("section", number, f"section {number} ({label})", start, end))
    window = blueprint.song.window
    beats = [beat - window.start_s for beat in blueprint.song.beats_s]
    inside = [round(beat * fps) for beat in beats if -1 / fps < beat < total / fps]
    starts = [max(0, frame) for frame in inside[::COUNTS_PER_PHRASE]]
    for number, start in enumerate(starts, start=1):
        end = starts[number] if number < len(starts) else total
        if end > start:
            spans.append(LoopSpan("count", number, f"8-count {number}", start, end))
    return spans


@cache
def has_rubberband() -> bool:
    """Whether this FFmpeg has the rubberband filter (better pitch-kept slowing than atempo)."""
    try:
        listed = subprocess.run(
            ["ffmpeg", "-hide_banner", "-filters"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return False
    return any(line.split()[1:2] == ["rubberband"] for line in listed.splitlines())


def slow_args(video: Path, out: Path, speed: float, *, rubberband: bool) -> list[str]:
    """The video stream copied with its timestamps stretched by ``1/speed``, the audio slowed
    with its pitch kept."""
    if not 0 < speed < 1:
        raise ValueError(f"slow speed must be between 0 and 1 (got {speed})")
    tempo = f"rubberband=tempo={speed:g}" if rubberband else _atempo(speed)
    return [
        "ffmpeg", *FFMPEG_COMMON,
        "-itsscale", f"{1 / speed:.6f}", *media_input(video, OWN_MP4_DEMUXER),
        *media_input(video, OWN_MP4_DEMUXER),
        "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-af", tempo, *AUDIO_CODEC_ARGS,
        "-movflags", "+faststart", "-map_metadata", "-1", str(out),
    ]  # fmt: skip


def _atempo(speed: float) -> str:
    # atempo takes 0.5-100 per instance; below 0.5 chain two.
    if speed >= 0.5:
        return f"atempo={speed:g}"
    return f"atempo=0.5,atempo={speed / 0.5:g}"


def keyframe_args(video: Path) -> list[str]:
    """ffprobe listing the video packets' times and flags (no decoding), as CSV lines."""
    return [
        "ffprobe", "-v", "error", *forced_input(file_input(video), OWN_MP4_DEMUXER),
        "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags", "-of", "csv=p=0",
    ]  # fmt: skip


def keyframe_frames(listing: str, fps: int) -> set[int]:
    """Frame numbers of the keyframes in :func:`keyframe_args`' output."""
    frames = set()
    for line in listing.splitlines():
        time_s, _, flags = line.partition(",")
        if flags.startswith("K") and time_s not in ("", "N/A"):
            frames.add(round(float(time_s) * fps))
    return frames


def loop_clip_args(
    video: Path, out: Path, span: LoopSpan, settings: EncodeSettings, *, copy: bool
) -> list[str]:
    """One loop clip cut from ``video``: its frames exactly, the audio re-encoded.

    ``copy`` (the span starts on a keyframe of ``video``): the H.264 packets are copied from
    that keyframe, found by an output seek a quarter frame before it, so no frame is re-encoded.
    Otherwise the span is decoded from an accurate input seek and encoded.
    """
    fps = settings.fps
    frames = span.end_frame - span.start_frame
    start_s = span.start_frame / fps
    if copy:
        seek = [*media_input(video, OWN_MP4_DEMUXER), "-ss", f"{start_s - 0.25 / fps:.6f}"]
        picture = ["-c:v", "copy"]
    else:
        seek = [*settings.input_threads(), "-ss", f"{start_s:.6f}",
                *media_input(video, OWN_MP4_DEMUXER)]  # fmt: skip
        picture = settings.codec_args()
    return [
        "ffmpeg", *FFMPEG_COMMON, *seek, "-map", "0:v:0", "-map", "0:a:0", *picture,
        "-frames:v", str(frames), *AUDIO_CODEC_ARGS, "-t", f"{frames / fps:.6f}",
        "-movflags", "+faststart", "-map_metadata", "-1", str(out),
    ]  # fmt: skip


def render_renditions(
    blueprint: Blueprint,
    practice: Practice,
    *,
    main: Path,
    song: ClipFile,
    clips: dict[str, ClipFile],
    options: RenderOptions,
    on_step: Callable[[str], None] = lambda _: None,
) -> list[RenditionFile]:
    """Render the video renditions ``practice`` asks for into ``options.work_dir``, telling
    ``on_step`` which one starts (each takes seconds to minutes)."""
    out_dir = options.work_dir / "renditions"
    out_dir.mkdir(parents=True, exist_ok=True)
    made: list[RenditionFile] = []
    if practice.mirror:
        on_step("the mirrored rendition")
        started = time.monotonic()
        out = out_dir / "mirror.mp4"
        assemble_video(mirrored_blueprint(blueprint), song, clips, out, options)
        made.append(RenditionFile("mirror", out, "-mirror.mp4", seconds=_since(started)))
    for speed in practice.slow:
        on_step(f"the {speed:g}x rendition")
        started = time.monotonic()
        out = out_dir / f"slow{round(speed * 100):03d}.mp4"
        run_ffmpeg(
            slow_args(main, out, speed, rubberband=has_rubberband()),
            what=f"the {speed:g}x rendition",
            timeout_s=options.timeout_s,
        )
        made.append(
            RenditionFile("slow", out, slow_suffix(speed), speed=speed, seconds=_since(started))
        )
    if practice.loops:
        on_step("the section and 8-count loops")
        made += _loops(
            blueprint, main=main, song=song, clips=clips, options=options, out_dir=out_dir
        )
    return made


def _loops(
    blueprint: Blueprint,
    *,
    main: Path,
    song: ClipFile,
    clips: dict[str, ClipFile],
    options: RenderOptions,
    out_dir: Path,
) -> list[RenditionFile]:
    """One clip per section and 8-count: copied where it starts on a keyframe, else encoded."""
    started = time.monotonic()
    source = main
    if not blueprint.video_output.overlays.count_numbers:
        source = out_dir / "counted.mp4"
        assemble_video(with_counts(blueprint), song, clips, source, options)
    output = blueprint.video_output
    settings = EncodeSettings(output.width, output.height, output.fps, options.preset, options.crf,
                              x264_threads(options.workers))  # fmt: skip
    keyframes = keyframe_frames(_keyframe_listing(source, options.timeout_s), output.fps)
    folder = out_dir / "loops"
    folder.mkdir(exist_ok=True)
    spans = loop_spans(blueprint)
    outs = [folder / f"{span.family}-{span.number:03d}.mp4" for span in spans]
    copied = [span.start_frame in keyframes for span in spans]
    with ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="loops") as pool:
        futures = [
            pool.submit(
                run_ffmpeg,
                loop_clip_args(source, out, span, settings, copy=copy),
                what=span.label,
                timeout_s=options.timeout_s,
            )
            for span, out, copy in zip(spans, outs, copied, strict=True)
        ]
        for future in futures:
            future.result()
    duration_ms = round(_since(started) * 1000)
    extra = {"step": "renditions", "loops": len(spans), "copied": sum(copied),
             "duration_ms": duration_ms}  # fmt: skip
    log.info("loops rendered", extra=extra)
    each = _since(started) / max(1, len(spans))
    return [
        RenditionFile("loop", out, loop_suffix(span), label=span.label, seconds=each)
        for span, out in zip(spans, outs, strict=True)
    ]


def _keyframe_listing(video: Path, timeout_s: float) -> str:
    what = f"listing the keyframes of {video.name}"
    try:
        done = subprocess.run(
            keyframe_args(video), capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FfmpegFailed(f"{what}: {exc}", step="renditions") from exc
    if done.returncode:
        raise FfmpegFailed(f"{what}: {done.stderr.strip()[-500:]}", step="renditions")
    return done.stdout


def _since(started: float) -> float:
    return time.monotonic() - started
