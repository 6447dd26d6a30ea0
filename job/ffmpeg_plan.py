"""FFmpeg and ffprobe argument lists, built from the timeline: pure, no I/O, no shell.

Every input is a resolved absolute local path passed as ``file:<path>`` with
``-protocol_whitelist file``, so no argument can make FFmpeg open a network URL or another
protocol, and with an explicit demuxer (``-f``): a downloaded song or clip with the one its probe
found on the allow-list of :mod:`schemas.media_formats` (never a playlist or list demuxer such as
``hls`` or ``concat``, which would open other files), the job's own intermediates with the one
it wrote them in (``mov`` for prepared clips and the encoded audio, ``h264`` for the joined
pieces). Paths that would need escaping inside a filter graph are refused rather than escaped.

Each clip is first *prepared* once per output size: scaled and letterboxed to the output frame,
yuv420p, at its own frame rate, with a keyframe every few frames. Pieces read prepared clips, so
a transition window seeks in a few frames instead of decoding the source from its start, and
no piece scales 1080p footage again.

Pieces are raw H.264 (Annex B) elementary streams: each starts with a keyframe carrying its
parameter sets, so the join is a byte-wise concatenation and one stream-copy mux, with frame
timing regenerated at the output rate (no per-piece container to open and probe).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate, pairwise
from pathlib import Path

from job.timeline import ClipFile, Piece, SourceSpan, TextOverlay
from schemas.media_formats import UNTRUSTED_PROTOCOLS, forced_input, probe_input

PLAN_VERSION = 5
"""Bumped whenever the arguments change what a cached segment looks like."""

PREPARED_GOP = 8
"""Frames between keyframes of a prepared clip: a seek decodes at most this many extra frames."""
PREPARED_CRF = 14
"""Near-transparent: the prepared clip is an intermediate, encoded again into every piece."""
PREPARED_MAX_FPS = 60
"""Faster sources are resampled to this rate when prepared (decoding 240 fps buys nothing)."""

INPUT_PROTOCOLS = UNTRUSTED_PROTOCOLS
OWN_MP4_DEMUXER = "mov"
"""Prepared clips, the encoded audio and the rendered video: MP4 files the job wrote itself."""
AUDIO_CODEC_ARGS = ("-c:a", "aac", "-b:a", "160k", "-ar", "48000", "-ac", "2")
_FILTER_SAFE_PATH = re.compile(r"^/[A-Za-z0-9/._+-]+$")
FFMPEG_COMMON = ("-hide_banner", "-nostdin", "-loglevel", "error", "-y")
"""Arguments every FFmpeg run of the job starts with: quiet, no prompts, overwrite."""
_PROGRESS = ("-progress", "pipe:1", "-nostats")


class UnsafePath(ValueError):
    """A path FFmpeg would not read as a plain local file name."""


@dataclass(frozen=True)
class EncodeSettings:
    """The output format every piece shares, so pieces can be joined by stream copy."""

    width: int
    height: int
    fps: int
    preset: str = "veryfast"
    crf: int = 21
    threads: int = 0
    """x264 threads per run (0: x264 decides); 1 when several runs share the cores."""

    @property
    def gop_frames(self) -> int:
        """Frames between keyframes (one second): the grid move bodies are chunked on."""
        return self.fps

    def codec_args(self) -> list[str]:
        """x264 arguments; no B-frames so MP4 pieces need no edit lists and join cleanly.

        A keyframe exactly every ``gop_frames`` (no scene-cut keyframes) lets one run split a
        move's body into chunks with the segment muxer; every piece shares these settings so
        their H.264 parameter sets match for the stream-copy join.
        """
        gop = str(self.gop_frames)
        return [
            "-c:v", "libx264", "-threads", str(self.threads),
            "-preset", self.preset, "-crf", str(self.crf),
            "-bf", "0", "-g", gop, "-keyint_min", gop, "-sc_threshold", "0",
            # Parameter sets before every keyframe: each chunk file decodes on its own. Diamond
            # motion search and a 5-frame lookahead: on the library's footage the same SSIM
            # (0.99046 against 0.99050) in a 3 % smaller file, and a first render 0.6 s faster.
            "-x264-params", "repeat-headers=1:me=dia:rc-lookahead=5",
            "-pix_fmt", "yuv420p", "-r", str(self.fps),
        ]  # fmt: skip

    def input_threads(self) -> list[str]:
        """Decoder threads for an input (before its ``-i``): as many as x264 gets.

        With the cores shared out between parallel runs, frame-threaded decoding and
        slice-threaded filters only add synchronisation: a 575-frame stretch took 4.4 CPU-s with
        FFmpeg's default threads and 3.3 with one decoder and one filter thread.
        """
        return ["-threads", str(self.threads)] if self.threads else []

    def filter_threads(self) -> list[str]:
        """Filter graph threads (before ``-filter_complex``), like :meth:`input_threads`."""
        return ["-filter_complex_threads", str(self.threads)] if self.threads else []


def file_input(path: Path) -> str:
    """``file:/abs/path`` for ``-i``; refuse relative paths and line breaks."""
    if not path.is_absolute():
        raise UnsafePath(f"FFmpeg inputs must be absolute paths (got {path})")
    if any(char in str(path) for char in "\n\r\x00"):
        raise UnsafePath(f"path contains a line break or NUL: {path!r}")
    return f"file:{path}"


def media_input(path: Path, demuxer: str) -> list[str]:
    """``-i`` for a file opened with exactly ``demuxer``, through the file protocol only."""
    if not demuxer:
        raise UnsafePath(f"{path} has no demuxer chosen: probe it before FFmpeg opens it")
    return forced_input(file_input(path), demuxer)


def decoded_input(clip: ClipFile, settings: EncodeSettings) -> list[str]:
    """``-i`` for a clip FFmpeg decodes: its decoder threads, then :func:`media_input`."""
    return [*settings.input_threads(), *media_input(clip.path, clip.demuxer)]


def filter_path(path: Path) -> str:
    """A path usable as a filter option value without escaping, or ``UnsafePath``."""
    text = str(path)
    if not _FILTER_SAFE_PATH.match(text):
        raise UnsafePath(
            f"{text!r} has characters a filter graph would need escaped; "
            "use a path of letters, digits and / . _ + -"
        )
    return text


def normalise_filters(settings: EncodeSettings, source_fps: float) -> list[str]:
    """Filters bringing a source clip to the output frame: letterboxed, square pixels, yuv420p.

    The clip keeps its own frame rate (up to ``PREPARED_MAX_FPS``), so a speed factor applied
    later still samples the original motion.
    """
    filters = [] if source_fps <= PREPARED_MAX_FPS else [f"fps={PREPARED_MAX_FPS}"]
    return [*filters, *letterbox_filters(settings), "setsar=1", "format=yuv420p"]


def letterbox_filters(settings: EncodeSettings) -> list[str]:
    """Scale (keeping the aspect ratio) and pad with black to the output frame."""
    width, height = settings.width, settings.height
    return [
        f"scale={width}:{height}:force_original_aspect_ratio=decrease",
        f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:color=black",
    ]


def _prepared_output(label: str, out: Path) -> list[str]:
    gop = str(PREPARED_GOP)
    return [
        "-map", label, "-fps_mode", "vfr", "-an", "-sn", "-dn", "-map_metadata", "-1",
        "-c:v", "libx264", "-preset", "ultrafast", "-crf", str(PREPARED_CRF), "-bf", "0",
        "-g", gop, "-keyint_min", gop, "-sc_threshold", "0", "-pix_fmt", "yuv420p",
        "-f", "mp4", str(out),
    ]  # fmt: skip


def prepare_args(
    clip: ClipFile, settings: EncodeSettings, out: Path, *, source_fps: float
) -> list[str]:
    """Prepare a clip for the output size: letterboxed, yuv420p, dense keyframes, no audio."""
    graph = "[0:v]" + ",".join(normalise_filters(settings, source_fps)) + "[m]"
    return [
        "ffmpeg", *FFMPEG_COMMON, *_PROGRESS, *decoded_input(clip, settings),
        *settings.filter_threads(), "-filter_complex", graph, *_prepared_output("[m]", out),
    ]  # fmt: skip


@dataclass(frozen=True)
class BodyOutput:
    """Consecutive body chunks of one move, written to ``out`` (a ``%04d`` pattern if several)."""

    chunks: tuple[Piece, ...]
    out: Path


def clip_run_args(
    clip: ClipFile,
    settings: EncodeSettings,
    prepared: Path,
    bodies: Sequence[BodyOutput],
    *,
    source_fps: float,
    font: Path | None,
    text_dir: Path,
) -> list[str]:
    """Decode and scale a source clip once: write its prepared copy and the move bodies it feeds.

    One ``split`` branch per body: trim to the body's first source frame, apply its speed and
    mirror, hold the last frame if the clip runs out, stop after the body's frames. Each body is
    its own output (x264 with the shared keyframe grid, split into chunk files like
    :func:`stretch_args`), so the frames match what rendering from the prepared copy would give.
    """
    if len({body.chunks[0].sources[0].clip.path for body in bodies}) > 1:
        raise ValueError("a clip run renders bodies of one clip only")
    labels = "".join(f"[b{index}]" for index in range(len(bodies)))
    normalise = ",".join(normalise_filters(settings, source_fps))
    chains = [f"[0:v]{normalise},split={len(bodies) + 1}[m]{labels}"]
    outputs = _prepared_output("[m]", prepared)
    for index, body in enumerate(bodies):
        whole, boundaries = merge_chunks(body.chunks, settings)
        span = whole.sources[0]
        if span.start_s < 0:
            raise ValueError("a clip run renders bodies from a non-negative start")
        if whole.overlays and font is None:
            raise ValueError("this body has overlays: a font file is required")
        filters = [
            f"trim=start={span.start_s:.6f}",
            *_timing_filters(span, settings, origin_s=span.start_s),
        ]
        filters.append(f"trim=end_frame={whole.frames}")
        if font is not None:
            filters += [drawtext(overlay, font, text_dir) for overlay in whole.overlays]
        chains.append(f"[b{index}]" + ",".join(filters) + f"[v{index}]")
        outputs += [
            "-map", f"[v{index}]", "-frames:v", str(whole.frames),
            "-an", "-sn", "-dn", "-map_metadata", "-1", *settings.codec_args(),
            *_format_args(boundaries), str(body.out),
        ]  # fmt: skip
    return [
        "ffmpeg", *FFMPEG_COMMON, *_PROGRESS, *decoded_input(clip, settings),
        *settings.filter_threads(), "-filter_complex", ";".join(chains), *outputs,
    ]  # fmt: skip


def prepared_key(clip_sha256: str, settings: EncodeSettings) -> str:
    """Content key of a prepared clip: the clip's bytes and the output frame size."""
    document = [PLAN_VERSION, clip_sha256, settings.width, settings.height, PREPARED_GOP,
                PREPARED_CRF, PREPARED_MAX_FPS]  # fmt: skip
    return hashlib.sha256(json.dumps(document).encode()).hexdigest()


def _timing_filters(
    span: SourceSpan, settings: EncodeSettings, *, origin_s: float = 0.0
) -> list[str]:
    """Speed, output rate, mirror, lead-in and tail holds for frames starting at the span.

    Time zero is the span's exact start (``origin_s`` in the input's timestamps; an input
    ``-ss`` already puts the seek point at zero), not the first frame decoded after it, and
    ``fps`` fills output frames on a grid from zero: output frame ``k`` shows the source frame
    nearest to ``start + k * speed / fps`` however early the run began, so a piece looks the
    same whichever run renders it. A source clip read directly is letterboxed after ``fps``, so
    only the frames shown are scaled.
    """
    origin = f"PTS-{origin_s:.6f}/TB" if origin_s else "PTS"
    filters = [f"setpts=({origin})/{span.speed:.6f}", f"fps={settings.fps}:start_time=0"]
    if not span.clip.normalised:
        filters += [*letterbox_filters(settings), "format=yuv420p"]
    filters.append("setsar=1")
    if span.mirror:
        filters.append("hflip")
    held = lead_in_frames(span, settings.fps)
    if held:
        filters.append(f"tpad=start={held}:start_mode=clone")
    # The clip may end before the piece does: hold its last frame; -frames:v stops the output.
    # Then number the frames afresh: tpad's clones after a lead-in can jump back in time, which
    # made xfade (it works on timestamps) end a window early when it came late in a stream.
    filters += ["tpad=stop=-1:stop_mode=clone", f"setpts=N/{settings.fps}/TB"]
    return filters


def lead_in_frames(span: SourceSpan, fps: int) -> int:
    """Output frames to hold the clip's first frame when the span starts before the clip."""
    return max(0, round(-span.start_s / span.speed * fps)) if span.start_s < 0 else 0


def text_file_name(text: str) -> str:
    """Name of the file holding an overlay text (drawtext reads it, so nothing is escaped)."""
    return f"text-{hashlib.sha256(text.encode()).hexdigest()[:20]}.txt"


def drawtext(overlay: TextOverlay, font: Path, text_dir: Path) -> str:
    """One ``drawtext`` filter showing ``overlay`` during its interval."""
    if overlay.slot == "count":
        place = "fontsize=h/8:x=w-text_w-w/30:y=h/30"
    else:
        place = "fontsize=h/14:x=(w-text_w)/2:y=h-text_h-h/20"
    textfile = filter_path(text_dir / text_file_name(overlay.text))
    return (
        f"drawtext=fontfile={filter_path(font)}:textfile={textfile}:expansion=none:{place}"
        f":fontcolor=white:borderw=3:bordercolor=black"
        f":enable='between(t,{overlay.start_s:.4f},{overlay.end_s - 1e-4:.4f})'"
    )


def stretch_args(
    pieces: Sequence[Piece],
    settings: EncodeSettings,
    out: Path,
    *,
    font: Path | None,
    text_dir: Path,
) -> list[str]:
    """Render pieces in timeline order (bodies of several moves and the windows between them,
    not necessarily adjacent) in one FFmpeg run, one file per piece.

    Each move is one input, decoded once from its first frame in the stretch: its timed frames
    are ``split`` between the pieces showing it (its body chunks, and the windows on either side,
    which ``xfade`` it with its neighbour) and each branch ``trim``med to its frames. The pieces
    are concatenated into one x264 stream with a keyframe forced at every piece's first frame,
    and the segment muxer splits it there: ``out`` holds a ``%04d`` when there are several pieces.
    One run instead of one per piece saves an FFmpeg start (~80 ms of CPU: 215 shared libraries
    to link), an x264 start and, for a window, a second seek and decode of both its clips. A move
    whose pieces are not adjacent is decoded through the gap (its frames there are dropped).
    """
    if not pieces:
        raise ValueError("a stretch needs at least one piece")
    if any(b.start_frame < a.start_frame + a.frames for a, b in pairwise(pieces)):
        raise ValueError("a stretch takes pieces in timeline order, none overlapping")
    if font is None and any(piece.overlays for piece in pieces):
        raise ValueError("these pieces have overlays: a font file is required")
    first_of: dict[int, tuple[SourceSpan, int]] = {}  # move -> (span at its first frame, frame)
    uses: dict[int, list[tuple[int, int]]] = {}  # move -> [(from, to) frames of its stream]
    branches: list[list[tuple[int, int]]] = []  # per piece: (move, use) of each source
    for piece in pieces:
        branches.append([])
        for move, span in zip(source_moves(piece), piece.sources, strict=True):
            first, begin = first_of.setdefault(move, (span, piece.start_frame))
            offset = piece.start_frame - begin
            expected = first.start_s + offset / settings.fps * first.speed
            if (span.clip, span.speed, span.mirror) != (first.clip, first.speed, first.mirror) or (
                abs(span.start_s - expected) > 1e-6
            ):
                raise ValueError(f"moves_used[{move}] does not continue across the stretch")
            uses.setdefault(move, []).append((offset, offset + piece.frames))
            branches[-1].append((move, len(uses[move]) - 1))
    inputs: list[str] = []
    chains: list[str] = []
    label = {}  # (move, use) -> pad of that branch's frames
    for index, (move, (span, _)) in enumerate(first_of.items()):
        if span.start_s > 0:
            # Input seeking decodes from the previous keyframe and drops frames up to start_s.
            inputs += ["-ss", f"{span.start_s:.6f}"]
        inputs += decoded_input(span.clip, settings)
        taps = [f"[m{index}u{use}]" for use in range(len(uses[move]))]
        split = f",split={len(taps)}" if len(taps) > 1 else ""
        chains.append(f"[{index}:v]" + ",".join(_timing_filters(span, settings)) + split
                      + "".join(taps))  # fmt: skip
        for use, (low, high) in enumerate(uses[move]):
            label[move, use] = f"[m{index}t{use}]"
            chains.append(f"{taps[use]}trim=start_frame={low}:end_frame={high},"
                          f"setpts=PTS-STARTPTS{label[move, use]}")  # fmt: skip
    for number, (piece, sources) in enumerate(zip(pieces, branches, strict=True)):
        last = label[sources[0]]
        if piece.xfade is not None:
            duration = piece.frames / settings.fps  # the window is the fade, centred on the cut
            chains.append(f"{last}{label[sources[1]]}xfade=transition={piece.xfade}:"
                          f"duration={duration:.6f}:offset=0[x{number}]")  # fmt: skip
            last = f"[x{number}]"
        texts = [drawtext(overlay, font, text_dir) for overlay in piece.overlays] if font else []
        final = "[v]" if len(pieces) == 1 else f"[p{number}]"
        # Frames numbered afresh: xfade re-times the frames it passes once its first input ends,
        # and a repeated timestamp would make the constant-rate output drop a frame.
        renumber = f"setpts=N/{settings.fps}/TB"
        chains.append(last + ",".join([renumber, *texts]) + final)
    if len(pieces) > 1:
        chains.append("".join(f"[p{n}]" for n in range(len(pieces)))
                      + f"concat=n={len(pieces)}:v=1:a=0[v]")  # fmt: skip
    boundaries = list(accumulate(piece.frames for piece in pieces))
    return [
        "ffmpeg", *FFMPEG_COMMON, *inputs, *settings.filter_threads(),
        "-filter_complex", ";".join(chains), "-map", "[v]",
        "-frames:v", str(boundaries[-1]), "-an", "-sn", "-dn", "-map_metadata", "-1",
        *settings.codec_args(), *_format_args(boundaries[:-1]), *_PROGRESS, str(out),
    ]  # fmt: skip


def source_moves(piece: Piece) -> tuple[int, ...]:
    """The move each of ``piece.sources`` belongs to: a window's outgoing then incoming move."""
    if piece.kind == "transition":
        return (piece.move_index - 1, piece.move_index)
    return (piece.move_index,)


def merge_chunks(chunks: Sequence[Piece], settings: EncodeSettings) -> tuple[Piece, list[int]]:
    """One piece spanning consecutive body chunks, and the frame offsets where chunks begin."""
    if not chunks or any(chunk.kind != "segment" for chunk in chunks):
        raise ValueError("only consecutive segment pieces can be merged")
    first = chunks[0]
    boundaries, overlays, offset = [], [], 0
    for chunk in chunks:
        if offset:
            boundaries.append(offset)
        shift = offset / settings.fps
        overlays += [
            TextOverlay(text.text, text.start_s + shift, text.end_s + shift, text.slot)
            for text in chunk.overlays
        ]
        offset += chunk.frames
    whole = Piece("segment", first.move_index, first.start_frame, offset, first.sources,
                  overlays=tuple(overlays))  # fmt: skip
    return whole, boundaries


def _format_args(boundaries: Sequence[int]) -> list[str]:
    """Raw H.264 output: one file, or split into chunk files at ``boundaries`` (frames), each a
    forced keyframe so every chunk file opens with one."""
    if not boundaries:
        return ["-f", "h264"]
    frames = ",".join(str(frame) for frame in boundaries)
    keyframes = "expr:" + "+".join(f"eq(n,{frame})" for frame in boundaries)
    return ["-force_key_frames", keyframes,
            "-f", "segment", "-segment_format", "h264", "-segment_frames", frames]  # fmt: skip


def piece_key(piece: Piece, settings: EncodeSettings, font: Path | None) -> str:
    """Content key of a piece: what it shows, never where it sits on the timeline."""
    document = {
        "version": PLAN_VERSION,
        "format": [settings.width, settings.height, settings.fps, settings.preset, settings.crf],
        "frames": piece.frames,
        "xfade": piece.xfade,
        "sources": [
            [
                span.clip.sha256,
                span.clip.normalised,
                round(span.start_s, 6),
                round(span.speed, 6),
                span.mirror,
            ]
            for span in piece.sources
        ],
        "overlays": [
            [text.text, round(text.start_s, 4), round(text.end_s, 4), text.slot]
            for text in piece.overlays
        ],
        "font": str(font) if piece.overlays else None,
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def audio_args(
    song: ClipFile,
    out: Path,
    *,
    start_s: float,
    length_s: float,
    fade_in_s: float,
    fade_out_s: float,
) -> list[str]:
    """Cut the song's window, fade it in and out, pad to length, and encode AAC once."""
    filters = ["apad"]
    if fade_in_s > 0:
        filters.append(f"afade=t=in:st=0:d={fade_in_s:.6f}")
    if fade_out_s > 0:
        filters.append(f"afade=t=out:st={length_s - fade_out_s:.6f}:d={fade_out_s:.6f}")
    return [
        "ffmpeg", *FFMPEG_COMMON, "-ss", f"{start_s:.6f}", *media_input(song.path, song.demuxer),
        "-vn", "-sn", "-dn", "-af", ",".join(filters), "-t", f"{length_s:.6f}",
        *AUDIO_CODEC_ARGS, "-map_metadata", "-1", *_PROGRESS, str(out),
    ]  # fmt: skip


def audio_key(
    song_sha256: str, start_s: float, length_s: float, fade_in_s: float, fade_out_s: float
) -> str:
    """Content key of the encoded audio: the song's bytes, the window and the fades."""
    parts = [PLAN_VERSION, song_sha256, *(round(v, 6) for v in (start_s, length_s, fade_in_s))]
    document = [*parts, round(fade_out_s, 6), *AUDIO_CODEC_ARGS]
    return hashlib.sha256(json.dumps(document).encode()).hexdigest()


def mux_args(video: Path, audio: Path, duration_s: float, fps: int, out: Path) -> list[str]:
    """Mux the joined raw H.264 stream (timed at ``fps``) and the encoded audio; index first."""
    return [
        "ffmpeg", *FFMPEG_COMMON,
        "-framerate", str(fps), *media_input(video, "h264"), *media_input(audio, OWN_MP4_DEMUXER),
        "-map", "0:v:0", "-map", "1:a:0", "-c", "copy", "-t", f"{duration_s:.6f}",
        "-video_track_timescale", str(fps * 1000),
        "-movflags", "+faststart", "-map_metadata", "-1", *_PROGRESS, str(out),
    ]  # fmt: skip


def probe_args(path: Path, allowed: Sequence[str]) -> list[str]:
    """ffprobe as JSON: format name and duration, each stream's type, size, rate and start.

    The format is detected among the ``allowed`` demuxers only: FFmpeg refuses any other right
    after detecting it, before the demuxer reads anything (a playlist opens nothing).
    """
    return [
        "ffprobe", "-v", "error",
        "-show_entries",
        "format=format_name,duration:stream=codec_type,codec_name,width,height,r_frame_rate,"
        "pix_fmt,nb_frames,duration,start_time",
        "-of", "json", *probe_input(file_input(path), allowed),
    ]  # fmt: skip


def text_files(pieces: Iterable[Piece]) -> Mapping[str, str]:
    """File name -> text for every overlay text the pieces draw."""
    return {
        text_file_name(overlay.text): overlay.text for piece in pieces for overlay in piece.overlays
    }
