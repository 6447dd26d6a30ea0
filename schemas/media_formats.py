"""The container formats (FFmpeg demuxers) a downloaded song or clip may be opened with.

A downloaded file is untrusted: its bytes, not its name, decide what FFmpeg sees. Some demuxers
open other files named inside the one they read (``hls`` playlists, ``concat`` lists, ``image2``
sequences), so a "clip" that is really a playlist could make FFmpeg read any local media file,
cache entries included. Every FFmpeg and ffprobe run on a downloaded file therefore allows only
the ``file`` protocol and one of the demuxers below: the probe with the whole allow-list
(``-format_whitelist``, checked after FFmpeg detects the format and before it reads a header),
every later run with ``-f <the demuxer the probe found>``. None of these demuxers opens another
file (the ``mov`` demuxer's external data references stay off, its default).

Pure: the FFmpeg arguments and the checks, no I/O. The job and the song analysis both use it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from schemas.errors import InvalidInput

VIDEO_DEMUXERS = ("mov", "matroska", "avi", "mpeg")
"""Clips: MP4/MOV/M4V, Matroska/WebM, AVI, MPEG program streams."""
AUDIO_DEMUXERS = ("wav", "mp3", "flac", "ogg", "aac", "aiff", "mov", "matroska")
"""Songs: WAV, MP3, FLAC, Ogg (Vorbis, Opus), raw AAC, AIFF, M4A/MP4 and Matroska/WebM audio."""
UNTRUSTED_PROTOCOLS = "file"
"""The only protocol a downloaded file is read through."""

_REFUSED = re.compile(r"\[([A-Za-z0-9_,]+) @ (?:0x)?[0-9A-Fa-f]+\] Format not on whitelist")


class UnsupportedMediaFormat(InvalidInput):
    """A song or clip in a container format that is not on the allow-list."""

    error_code = "unsupported-media-format"

    def __init__(self, what: str, detected: str, allowed: Sequence[str]) -> None:
        super().__init__(
            f"{what} is in format {detected!r}, which is not allowed "
            f"(allowed: {', '.join(allowed)})"
        )
        self.detected = detected
        self._arguments = (what, detected, tuple(allowed))

    def __reduce__(self) -> tuple[type[UnsupportedMediaFormat], tuple[str, str, tuple[str, ...]]]:
        """Rebuilt from its arguments when unpickled (the analysis raises it in a child
        process; the default would call the class with the message alone)."""
        return type(self), self._arguments


def probe_input(path: str, allowed: Sequence[str]) -> list[str]:
    """ffprobe/ffmpeg input options to detect ``path``'s format among ``allowed`` demuxers only."""
    return [
        "-protocol_whitelist", UNTRUSTED_PROTOCOLS, "-format_whitelist", ",".join(allowed),
        "-i", path,
    ]  # fmt: skip


def forced_input(path: str, demuxer: str) -> list[str]:
    """Input options opening ``path`` with exactly ``demuxer`` (from :func:`choose_demuxer`)."""
    return [
        "-protocol_whitelist", UNTRUSTED_PROTOCOLS, "-format_whitelist", demuxer,
        "-f", demuxer, "-i", path,
    ]  # fmt: skip


def choose_demuxer(format_name: str, allowed: Sequence[str], *, what: str) -> str:
    """The allowed demuxer behind ffprobe's ``format_name`` (``mov,mp4,m4a,...``), or refuse."""
    for name in format_name.split(","):
        if name in allowed:
            return name
    raise UnsupportedMediaFormat(what, format_name or "unknown", allowed)


def refused_format(stderr: str) -> str | None:
    """The detected demuxer FFmpeg names when the format allow-list refused a file, else None."""
    match = _REFUSED.search(stderr)
    return match.group(1) if match else None
