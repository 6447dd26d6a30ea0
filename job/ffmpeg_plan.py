"""FFmpeg and ffprobe argument lists, built from the timeline: pure, no I/O, no shell.

Every input is a resolved absolute local path passed as ``file:<path>`` with
``-protocol_whitelist file,pipe`` (the concat demuxer gets ``file`` only), so no argument or list
entry can make FFmpeg open a network URL or another protocol. Paths that would need escaping
inside a filter graph are refused rather than escaped.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from job.timeline import Piece, SourceSpan, TextOverlay

PLAN_VERSION = 1
"""Bumped whenever the arguments change what a cached segment looks like."""

INPUT_PROTOCOLS = "file,pipe"
CONCAT_PROTOCOLS = "file"
AUDIO_CODEC_ARGS = ("-c:a", "aac", "-b:a", "160k", "-ar", "48000", "-ac", "2")
_FILTER_SAFE_PATH = re.compile(r"^/[A-Za-z0-9/._+-]+$")
_COMMON = ("-hide_banner", "-nostdin", "-loglevel", "error", "-y")
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

    def video_args(self) -> list[str]:
        """x264 arguments; no B-frames so MP4 pieces need no edit lists and join cleanly."""
        gop = str(self.fps * 2)
        return [
            "-c:v", "libx264", "-preset", self.preset, "-crf", str(self.crf),
            "-bf", "0", "-g", gop, "-pix_fmt", "yuv420p", "-r", str(self.fps),
            "-video_track_timescale", str(self.fps * 1000),
        ]  # fmt: skip


def file_input(path: Path) -> str:
    """``file:/abs/path`` for ``-i``; refuse relative paths and line breaks."""
    if not path.is_absolute():
        raise UnsafePath(f"FFmpeg inputs must be absolute paths (got {path})")
    if any(char in str(path) for char in "\n\r\x00"):
        raise UnsafePath(f"path contains a line break or NUL: {path!r}")
    return f"file:{path}"


def filter_path(path: Path) -> str:
    """A path usable as a filter option value without escaping, or ``UnsafePath``."""
    text = str(path)
    if not _FILTER_SAFE_PATH.match(text):
        raise UnsafePath(
            f"{text!r} has characters a filter graph would need escaped; "
            "use a path of letters, digits and / . _ + -"
        )
    return text


def source_chain(index: int, span: SourceSpan, settings: EncodeSettings) -> str:
    """Filters turning input ``index`` into frames at the output size, rate and speed."""
    width, height, fps = settings.width, settings.height, settings.fps
    filters = [
        f"setpts=(PTS-STARTPTS)/{span.speed:.6f}",
        f"fps={fps}",
        f"scale={width}:{height}:force_original_aspect_ratio=decrease",
        f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:color=black",
        "setsar=1",
        "format=yuv420p",
    ]
    if span.mirror:
        filters.append("hflip")
    held = lead_in_frames(span, fps)
    if held:
        filters.append(f"tpad=start={held}:start_mode=clone")
    # The clip may end before the piece does: hold its last frame; -frames:v stops the output.
    filters.append("tpad=stop=-1:stop_mode=clone")
    return f"[{index}:v]" + ",".join(filters) + f"[s{index}]"


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


def piece_graph(piece: Piece, settings: EncodeSettings, font: Path | None, text_dir: Path) -> str:
    """The filter graph of one piece, ending in the ``[v]`` pad."""
    chains = [source_chain(i, span, settings) for i, span in enumerate(piece.sources)]
    if piece.xfade is None:
        last = "[s0]"
    else:
        duration = piece.frames / settings.fps
        chains.append(f"[s0][s1]xfade=transition={piece.xfade}:duration={duration:.6f}:offset=0[x]")
        last = "[x]"
    texts = [drawtext(overlay, font, text_dir) for overlay in piece.overlays] if font else []
    chains.append(last + ",".join([*texts, "null"]) + "[v]")
    return ";".join(chains)


def piece_args(
    piece: Piece, settings: EncodeSettings, out: Path, *, font: Path | None, text_dir: Path
) -> list[str]:
    """Render one piece to ``out``: exactly ``piece.frames`` frames, video only."""
    if piece.overlays and font is None:
        raise ValueError("this piece has overlays: a font file is required")
    inputs: list[str] = []
    for span in piece.sources:
        if span.start_s > 0:
            # Input seeking decodes from the previous keyframe and drops frames up to start_s.
            inputs += ["-ss", f"{span.start_s:.6f}"]
        inputs += ["-protocol_whitelist", INPUT_PROTOCOLS, "-i", file_input(span.clip.path)]
    graph = piece_graph(piece, settings, font, text_dir)
    return [
        "ffmpeg", *_COMMON, *inputs, "-filter_complex", graph, "-map", "[v]",
        "-frames:v", str(piece.frames), "-an", "-sn", "-dn", "-map_metadata", "-1",
        *settings.video_args(), *_PROGRESS, str(out),
    ]  # fmt: skip


def piece_key(piece: Piece, settings: EncodeSettings, font: Path | None) -> str:
    """Content key of a piece: what it shows, never where it sits on the timeline."""
    document = {
        "version": PLAN_VERSION,
        "format": [settings.width, settings.height, settings.fps, settings.preset, settings.crf],
        "frames": piece.frames,
        "xfade": piece.xfade,
        "sources": [
            [span.clip.sha256, round(span.start_s, 6), round(span.speed, 6), span.mirror]
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
    song: Path, out: Path, *, start_s: float, length_s: float, fade_in_s: float, fade_out_s: float
) -> list[str]:
    """Cut the song's window, fade it in and out, pad to length, and encode AAC once."""
    filters = ["apad"]
    if fade_in_s > 0:
        filters.append(f"afade=t=in:st=0:d={fade_in_s:.6f}")
    if fade_out_s > 0:
        filters.append(f"afade=t=out:st={length_s - fade_out_s:.6f}:d={fade_out_s:.6f}")
    return [
        "ffmpeg", *_COMMON, "-ss", f"{start_s:.6f}", "-protocol_whitelist", INPUT_PROTOCOLS,
        "-i", file_input(song), "-vn", "-sn", "-dn", "-af", ",".join(filters),
        "-t", f"{length_s:.6f}", *AUDIO_CODEC_ARGS, "-map_metadata", "-1", *_PROGRESS, str(out),
    ]  # fmt: skip


def audio_key(
    song_sha256: str, start_s: float, length_s: float, fade_in_s: float, fade_out_s: float
) -> str:
    """Content key of the encoded audio: the song's bytes, the window and the fades."""
    parts = [PLAN_VERSION, song_sha256, *(round(v, 6) for v in (start_s, length_s, fade_in_s))]
    document = [*parts, round(fade_out_s, 6), *AUDIO_CODEC_ARGS]
    return hashlib.sha256(json.dumps(document).encode()).hexdigest()


def concat_list(paths: Iterable[Path]) -> str:
    """An ffconcat list of absolute paths, each single-quoted (``'`` written as ``'\\''``)."""
    lines = ["ffconcat version 1.0"]
    for path in paths:
        file_input(path)  # same refusals: relative paths, line breaks
        quoted = str(path).replace("'", "'\\''")
        lines.append(f"file '{quoted}'")
    return "\n".join(lines) + "\n"


def mux_args(concat_file: Path, audio: Path, duration_s: float, out: Path) -> list[str]:
    """Join the pieces by stream copy and add the pre-encoded audio; moov atom first."""
    return [
        "ffmpeg", *_COMMON,
        # -safe 0 lets the list hold absolute paths; every entry is one we generated.
        "-f", "concat", "-safe", "0", "-protocol_whitelist", CONCAT_PROTOCOLS,
        "-i", file_input(concat_file),
        "-protocol_whitelist", INPUT_PROTOCOLS, "-i", file_input(audio),
        "-map", "0:v:0", "-map", "1:a:0", "-c", "copy", "-t", f"{duration_s:.6f}",
        "-movflags", "+faststart", "-map_metadata", "-1", *_PROGRESS, str(out),
    ]  # fmt: skip


def probe_args(path: Path) -> list[str]:
    """ffprobe as JSON: format duration and each stream's type, size and rate."""
    return [
        "ffprobe", "-v", "error", "-protocol_whitelist", INPUT_PROTOCOLS,
        "-show_entries",
        "format=duration:stream=codec_type,codec_name,width,height,r_frame_rate,pix_fmt,nb_frames",
        "-of", "json", file_input(path),
    ]  # fmt: skip


def text_files(pieces: Iterable[Piece]) -> Mapping[str, str]:
    """File name -> text for every overlay text the pieces draw."""
    return {
        text_file_name(overlay.text): overlay.text for piece in pieces for overlay in piece.overlays
    }
