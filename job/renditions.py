"""Practice renditions of a rendered video: mirrored, slowed, and loop clips (docs/PRACTICE.md).

Each reuses what the main render left behind:

- **mirror** is the blueprint assembled again with every move's ``mirror`` flipped (and wipes and
  slides turned the other way). Pieces draw their overlays after a move's ``hflip``, so the
  text reads the right way round; prepared clips, probes and the audio come from the cache, and a
  move the main video already shows mirrored reuses its pieces.
- **slow** rescales the main video's timestamps (``-itsscale``) and copies its H.264 stream as it
  is; only the audio is re-encoded, slowed with its pitch kept (``rubberband`` when this FFmpeg
  has it, else ``atempo``).
- **loops** decode the main video once and encode it once per family (sections, 8-counts), with
  a keyframe forced at each boundary, split there by the segment muxer. The counts are overlaid:
  from the main video when it shows them, else from a copy assembled with the count overlay on.

The argument builders are pure; :func:`render_renditions` runs them.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from job.assemble import RenderOptions, assemble_video
from job.errors import FfmpegFailed
from job.ffmpeg_plan import AUDIO_CODEC_ARGS, OWN_MP4_DEMUXER, EncodeSettings, media_input
from job.ffmpeg_run import run_ffmpeg
from job.timeline import COUNTS_PER_PHRASE, ClipFile, cut_frames
from schemas.blueprint import Blueprint, Practice

log = logging.getLogger(__name__)

MIRRORED_TRANSITION = {
    "wipeleft": "wiperight",
    "wiperight": "wipeleft",
    "slideleft": "slideright",
    "slideright": "slideleft",
}
"""A wipe or slide seen in a mirror goes the other way."""

_COMMON = ("-hide_banner", "-nostdin", "-loglevel", "error", "-y")


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
        "ffmpeg", *_COMMON,
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


def loop_args(
    video: Path, outputs: Sequence[tuple[Path, Sequence[int]]], settings: EncodeSettings
) -> list[str]:
    """Decode ``video`` once and encode it once per output, each with a keyframe at each of its
    boundary frames and split there into its ``pattern`` (``loop-%03d.mp4``): file ``i`` holds
    the frames from boundary ``i - 1`` (file 0 from the start) to boundary ``i``."""
    args = ["ffmpeg", *_COMMON, *settings.input_threads(), *media_input(video, OWN_MP4_DEMUXER)]
    for pattern, boundaries in outputs:
        args += ["-map", "0:v:0", "-map", "0:a:0", *settings.codec_args(), *AUDIO_CODEC_ARGS,
                 "-map_metadata", "-1"]  # fmt: skip
        if not boundaries:
            # One loop over the whole video (a single section): file 0, no split.
            args += ["-movflags", "+faststart", "-f", "mp4", str(pattern) % 0]
            continue
        # Half a frame early: the first frame at or after the time is the boundary frame itself.
        times = ",".join(f"{(frame - 0.5) / settings.fps:.6f}" for frame in boundaries)
        args += [
            "-force_key_frames", times,
            "-f", "segment", "-segment_times", times, "-segment_format", "mp4",
            "-segment_format_options", "movflags=+faststart", "-reset_timestamps", "1",
            str(pattern),
        ]  # fmt: skip
    return args


def render_renditions(
    blueprint: Blueprint,
    practice: Practice,
    *,
    main: Path,
    song: ClipFile,
    clips: dict[str, ClipFile],
    options: RenderOptions,
) -> list[RenditionFile]:
    """Render the video renditions ``practice`` asks for into ``options.work_dir``."""
    out_dir = options.work_dir / "renditions"
    out_dir.mkdir(parents=True, exist_ok=True)
    made: list[RenditionFile] = []
    if practice.mirror:
        started = time.monotonic()
        out = out_dir / "mirror.mp4"
        assemble_video(mirrored_blueprint(blueprint), song, clips, out, options)
        made.append(RenditionFile("mirror", out, "-mirror.mp4", seconds=_since(started)))
    for speed in practice.slow:
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
    started = time.monotonic()
    source = main
    if not blueprint.video_output.overlays.count_numbers:
        source = out_dir / "counted.mp4"
        assemble_video(with_counts(blueprint), song, clips, source, options)
    output = blueprint.video_output
    settings = EncodeSettings(output.width, output.height, output.fps, options.preset, options.crf)
    spans = loop_spans(blueprint)
    families = [
        (family, [span for span in spans if span.family == family])
        for family in ("section", "count")
    ]
    families = [(family, chosen) for family, chosen in families if chosen]
    total = cut_frames(blueprint)[-1]
    outputs: list[tuple[Path, list[int]]] = []
    for family, chosen in families:
        # Boundaries between contiguous spans; a file before the first span is thrown away.
        boundaries = sorted({span.start_frame for span in chosen} - {0})
        boundaries += [chosen[-1].end_frame] if chosen[-1].end_frame < total else []
        folder = out_dir / f"loops-{family}"
        folder.mkdir(exist_ok=True)
        outputs.append((folder / "loop-%03d.mp4", boundaries))
    # Both families from one run: the video is decoded once and encoded once per family.
    run_ffmpeg(
        loop_args(source, outputs, settings), what="the loop clips", timeout_s=options.timeout_s
    )
    made: list[RenditionFile] = []
    for (family, chosen), (pattern, _) in zip(families, outputs, strict=True):
        offset = 0 if chosen[0].start_frame == 0 else 1
        for position, span in enumerate(chosen):
            path = pattern.with_name(f"loop-{position + offset:03d}.mp4")
            if not path.is_file():
                raise FfmpegFailed(
                    f"{span.label}: no {family} loop clip was written", step="renditions"
                )
            made.append(RenditionFile("loop", path, loop_suffix(span), label=span.label))
    log.info(
        "loops rendered",
        extra={
            "step": "renditions",
            "loops": len(made),
            "duration_ms": round(_since(started) * 1000),
        },
    )
    each = _since(started) / max(1, len(made))
    return [RenditionFile(f.kind, f.path, f.suffix, f.speed, f.label, each) for f in made]


def _since(started: float) -> float:
    return time.monotonic() - started
