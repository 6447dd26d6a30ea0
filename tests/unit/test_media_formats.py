"""The demuxer allow-list and the FFmpeg options that open untrusted media: pure, no FFmpeg."""

from __future__ import annotations

from pathlib import Path

import pytest

from job.ffmpeg_plan import probe_args
from schemas.media_formats import (
    AUDIO_DEMUXERS,
    VIDEO_DEMUXERS,
    UnsupportedMediaFormat,
    choose_demuxer,
    forced_input,
    probe_input,
    refused_format,
)

# Demuxers that open other files named inside the one they read, or read file sequences.
FOLLOWING_DEMUXERS = {"hls", "applehttp", "dash", "concat", "image2", "image2pipe", "mpl2",
                      "tee", "data", "lavfi", "mov_drefs", "imf", "webm_dash_manifest"}  # fmt: skip


def test_no_allowed_demuxer_follows_references_to_other_files() -> None:
    """Neither allow-list holds a playlist, list or sequence demuxer."""
    assert not FOLLOWING_DEMUXERS & {*VIDEO_DEMUXERS, *AUDIO_DEMUXERS}


@pytest.mark.parametrize(
    ("format_name", "allowed", "chosen"),
    [
        ("mov,mp4,m4a,3gp,3g2,mj2", VIDEO_DEMUXERS, "mov"),
        ("matroska,webm", VIDEO_DEMUXERS, "matroska"),
        ("mpeg", VIDEO_DEMUXERS, "mpeg"),
        ("ogg", AUDIO_DEMUXERS, "ogg"),
        ("mov,mp4,m4a,3gp,3g2,mj2", AUDIO_DEMUXERS, "mov"),
    ],
)
def test_the_demuxer_is_the_allowed_name_in_ffprobes_format_name(
    format_name: str, allowed: tuple[str, ...], chosen: str
) -> None:
    """ffprobe's name list maps to the one allowed demuxer name ``-f`` takes."""
    assert choose_demuxer(format_name, allowed, what="clip a") == chosen


@pytest.mark.parametrize("format_name", ["hls", "concat", "image2", "mp3", ""])
def test_a_format_off_the_list_is_refused_naming_the_file_and_the_format(
    format_name: str,
) -> None:
    """The error names the file, the detected format and what is allowed."""
    with pytest.raises(UnsupportedMediaFormat) as refused:
        choose_demuxer(format_name, VIDEO_DEMUXERS, what="clip moves/x.mp4")
    message = str(refused.value)
    assert message.startswith(f"clip moves/x.mp4 is in format {format_name or 'unknown'!r}")
    assert "allowed: mov, matroska, avi, mpeg" in message
    assert refused.value.error_code == "unsupported-media-format"


def test_ffmpegs_whitelist_refusal_names_the_detected_demuxer() -> None:
    """The demuxer in FFmpeg's log prefix is the format it detected; other errors name none."""
    stderr = "[hls @ 0x55d0c1a2b3c0] Format not on whitelist 'mov,matroska'\nfile:/x: Invalid"
    assert refused_format(stderr) == "hls"
    assert refused_format("[mov,mp4,m4a @ 0x1] Format not on whitelist 'wav'") == "mov,mp4,m4a"
    assert refused_format("file:/x: Invalid data found when processing input") is None


def test_the_probe_allows_only_the_file_protocol_and_the_listed_demuxers() -> None:
    """ffprobe detects the format among the allowed demuxers, reading through ``file`` only."""
    args = probe_args(Path("/in/moves-abc"), VIDEO_DEMUXERS)
    at = args.index("-i")
    assert args[at - 4 : at + 2] == [
        "-protocol_whitelist", "file", "-format_whitelist", "mov,matroska,avi,mpeg",
        "-i", "file:/in/moves-abc",
    ]  # fmt: skip
    assert "format_name" in args[args.index("-show_entries") + 1]


def test_a_forced_input_names_its_demuxer_twice() -> None:
    """``-f`` forces the demuxer and the format allow-list holds only that one."""
    assert forced_input("file:/a", "ogg") == [
        "-protocol_whitelist", "file", "-format_whitelist", "ogg", "-f", "ogg", "-i", "file:/a",
    ]  # fmt: skip
    assert probe_input("file:/a", ("wav", "mp3"))[3] == "wav,mp3"
