"""Run FFmpeg and ffprobe (no shell), turning ``-progress pipe:1`` output into frame counts."""

from __future__ import annotations

import json
import logging
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from job.errors import FfmpegFailed, JobInterrupted
from job.ffmpeg_plan import probe_args
from schemas.media_formats import UnsupportedMediaFormat, refused_format

log = logging.getLogger(__name__)

STDERR_TAIL_CHARS = 2000

_running: set[subprocess.Popen[str]] = set()
_running_lock = threading.Lock()
_stopping = threading.Event()


def stop_all() -> None:
    """Kill every running FFmpeg and refuse to start new ones (the job is shutting down)."""
    _stopping.set()
    with _running_lock:
        for process in _running:
            process.kill()


def _check_stopping(what: str) -> None:
    if _stopping.is_set():
        raise JobInterrupted(f"{what}: not started, the job is stopping", step="assemble")


def parse_progress_line(line: str) -> int | None:
    """The frame count in one ``-progress`` line (``frame=123``), else None."""
    key, _, value = line.strip().partition("=")
    if key != "frame":
        return None
    try:
        return int(value)
    except ValueError:
        return None


def run_ffmpeg(
    args: list[str],
    *,
    what: str,
    timeout_s: float,
    on_frames: Callable[[int], None] | None = None,
) -> None:
    """Run ``args``; report frames done as they come; ``FfmpegFailed`` naming ``what``."""
    _check_stopping(what)
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as stderr:
        try:
            process = subprocess.Popen(
                args, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, text=True
            )
        except OSError as exc:
            raise FfmpegFailed(f"{what}: cannot start {args[0]}: {exc}", step="assemble") from exc
        with _running_lock:
            _running.add(process)
        if _stopping.is_set():  # stop_all ran between the check above and the registration
            process.kill()
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            process.kill()

        timer = threading.Timer(timeout_s, kill)
        timer.start()
        try:
            assert process.stdout is not None  # noqa: S101 - set by stdout=PIPE above
            for line in process.stdout:
                frames = parse_progress_line(line)
                if frames is not None and on_frames is not None:
                    on_frames(frames)
            code = process.wait()
        finally:
            timer.cancel()
            with _running_lock:
                _running.discard(process)
            if process.poll() is None:
                process.kill()
                process.wait()
        _check_stopping(what)
        if code != 0:
            stderr.seek(0)
            tail = stderr.read()[-STDERR_TAIL_CHARS:].strip()
            reason = f"timed out after {timeout_s:g} s" if timed_out.is_set() else f"exited {code}"
            raise FfmpegFailed(f"{what}: ffmpeg {reason}: {tail or 'no message'}", step="assemble")


def probe(path: Path, *, allowed: Sequence[str], timeout_s: float = 60.0) -> dict[str, Any]:
    """ffprobe's JSON for ``path``, its format detected among the ``allowed`` demuxers only.

    ``UnsupportedMediaFormat`` names the format FFmpeg detected when it is not allowed;
    ``FfmpegFailed`` carries ffprobe's message for any other failure.
    """
    try:
        done = subprocess.run(
            probe_args(path, allowed), capture_output=True, text=True, timeout=timeout_s,
            check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FfmpegFailed(f"ffprobe {path.name}: {exc}", step="probe") from exc
    detected = refused_format(done.stderr)
    if done.returncode != 0 and detected is not None:
        raise UnsupportedMediaFormat(f"file {path.name}", detected, allowed)
    if done.returncode != 0:
        message = done.stderr.strip()[-STDERR_TAIL_CHARS:] or f"exited {done.returncode}"
        raise FfmpegFailed(f"ffprobe {path.name}: {message}", step="probe")
    result: dict[str, Any] = json.loads(done.stdout or "{}")
    return result


def has_video(info: dict[str, Any]) -> bool:
    """Whether ffprobe found a decodable video stream with a size."""
    return any(
        stream.get("codec_type") == "video" and int(stream.get("width") or 0) > 0
        for stream in info.get("streams", [])
    )


def has_audio(info: dict[str, Any]) -> bool:
    """Whether ffprobe found an audio stream."""
    return any(stream.get("codec_type") == "audio" for stream in info.get("streams", []))


def format_name(info: Mapping[str, Any]) -> str:
    """ffprobe's format name (the demuxer's names, ``mov,mp4,m4a,...``; empty when unknown)."""
    return str(info.get("format", {}).get("format_name") or "")


def media_duration(info: Mapping[str, Any]) -> float:
    """The file's duration in seconds from ffprobe's format section (0 when unknown)."""
    try:
        return float(info.get("format", {}).get("duration") or 0)
    except (TypeError, ValueError):
        return 0.0
