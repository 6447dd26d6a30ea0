"""Measure the sync report on the rendered file itself (docs/SYNC_REPORT.md).

Three FFmpeg runs, no shell: the rendered video decoded once for the scene score of every frame
(scaled to 160 pixels wide first), its audio and the song's opening decoded mono at 8 kHz. The
song is decoded from its first sample, not seeked to the window the way the render cuts it, so
a seek that lands wrong in the render is measured rather than repeated. The arithmetic is in
:mod:`job.sync_report`.
"""

from __future__ import annotations

import sys
import time
from array import array
from dataclasses import replace
from pathlib import Path
from typing import Any

from job.errors import FfmpegFailed
from job.ffmpeg_plan import FFMPEG_COMMON, OWN_MP4_DEMUXER, filter_path, media_input
from job.ffmpeg_run import media_duration, probe, run_ffmpeg
from job.sync_report import (
    BEAT_GRID_MS,
    HOP,
    MAX_LAG_S,
    SAMPLE_RATE,
    PlannedCut,
    SceneScores,
    SyncReport,
    Tolerances,
    align,
    match_cuts,
    onset_envelope,
    tolerance_failures,
)
from job.timeline import ClipFile, cut_frames
from schemas.blueprint import Blueprint, SyncTolerances

SCENE_WIDTH = 160
"""Frames are scaled to this width before scoring: a cut changes the whole picture, and the
score of a 160x90 frame costs a fraction of a 720p one."""


def measure_sync(
    blueprint: Blueprint, video: Path, song: ClipFile, work_dir: Path, *, timeout_s: float
) -> SyncReport:
    """The sync report of ``video`` (rendered from ``blueprint``) against ``song``; the
    report's ``failures`` list what misses the blueprint's tolerances."""
    started = time.monotonic()
    scratch = work_dir / "sync"
    scratch.mkdir(parents=True, exist_ok=True)
    info = probe(video, allowed=(OWN_MP4_DEMUXER,))
    video_stream, audio_stream = _stream(info, "video"), _stream(info, "audio")
    fps = blueprint.video_output.fps
    cuts = cut_frames(blueprint)
    planned = [
        PlannedCut(index, cuts[index] / fps)
        for index, move in enumerate(blueprint.moves_used)
        if index and move.transition_in.type == "cut"
    ]
    transitions = sum(1 for move in blueprint.moves_used[1:] if move.transition_in.type != "cut")
    window = blueprint.song.window
    beats = [beat - window.start_s for beat in blueprint.song.beats_s]
    scenes = scene_scores(video, scratch / "scenes.txt", timeout_s=timeout_s)
    checks = match_cuts(planned, scenes, beats, fps)
    rendered = onset_envelope(
        decode_audio(video, OWN_MP4_DEMUXER, scratch / "video.pcm", timeout_s=timeout_s)
    )
    source = onset_envelope(
        decode_audio(
            song.path, song.demuxer, scratch / "song.pcm", timeout_s=timeout_s,
            until_s=window.end_s + MAX_LAG_S + 0.5,
        )
    )  # fmt: skip
    step_s = HOP / SAMPLE_RATE
    max_lag = round(MAX_LAG_S / step_s)
    base = round(window.start_s / step_s)
    lead = max(0, max_lag - base)
    tail = max(0, base + len(rendered) + max_lag - len(source))
    alignment = align(rendered, [0.0] * lead + source + [0.0] * tail, base + lead, max_lag)
    # Audio that starts after the picture is late by that much before any lag in its content.
    start_gap_s = _start(audio_stream) - _start(video_stream)
    frame_ms = 1000 / fps
    limits = blueprint.video_output.sync or SyncTolerances()
    report = SyncReport(
        fps=fps,
        timeline_s=cuts[-1] / fps,
        duration_s=media_duration(info),
        video_duration_s=float(video_stream.get("duration") or 0),
        audio_duration_s=float(audio_stream.get("duration") or 0),
        cuts=tuple(checks),
        transitions=transitions,
        audio_offset_ms=None if alignment is None
        else (alignment.lag * step_s + start_gap_s) * 1000,
        audio_correlation=None if alignment is None else alignment.strength,
        tolerances=Tolerances(
            cut_error_ms=limits.cut_error_frames * frame_ms + BEAT_GRID_MS,
            audio_offset_ms=limits.audio_offset_ms,
            min_audio_correlation=limits.min_audio_correlation,
            duration_error_ms=limits.duration_error_frames * frame_ms + 1.0,
        ),
    )  # fmt: skip
    failures = tuple(tolerance_failures(report))
    return replace(report, failures=failures, measure_s=time.monotonic() - started)


def scene_scores(video: Path, out: Path, *, timeout_s: float) -> SceneScores:
    """FFmpeg's scene score of every frame of ``video``, written by the ``metadata`` filter."""
    graph = (
        f"scale={SCENE_WIDTH}:-2:flags=fast_bilinear,select='gte(scene,0)',"
        f"metadata=mode=print:key=lavfi.scene_score:file={filter_path(out)}"
    )
    run_ffmpeg(
        ["ffmpeg", *FFMPEG_COMMON, "-skip_loop_filter", "all",
         *media_input(video, OWN_MP4_DEMUXER), "-map", "0:v:0", "-an", "-sn", "-dn",
         "-vf", graph, "-f", "null", "-"],
        what="measuring the cuts of the rendered video",
        timeout_s=timeout_s,
    )  # fmt: skip
    return parse_scene_scores(out.read_text(encoding="utf-8"))


def parse_scene_scores(text: str) -> SceneScores:
    """The ``metadata`` filter's print-out: ``frame:N pts:P pts_time:T`` then
    ``lavfi.scene_score=S`` per frame (a frame without a score scores 0)."""
    times: list[float] = []
    scores: list[float] = []
    for line in text.splitlines():
        if "pts_time:" in line:
            times.append(float(line.rsplit("pts_time:", 1)[1].split()[0]))
            scores.append(0.0)
        elif line.startswith("lavfi.scene_score=") and scores:
            scores[-1] = float(line.partition("=")[2])
    if not times:
        raise FfmpegFailed("the rendered video gave no frames to measure cuts on", step="sync")
    return SceneScores(tuple(times), tuple(scores))


def decode_audio(
    path: Path, demuxer: str, out: Path, *, timeout_s: float, until_s: float | None = None
) -> array[int]:
    """The first audio stream of ``path`` from its first sample, mono 16-bit at 8 kHz."""
    limit = ["-t", f"{until_s:.6f}"] if until_s is not None else []
    run_ffmpeg(
        ["ffmpeg", *FFMPEG_COMMON, *media_input(path, demuxer), *limit, "-map", "0:a:0",
         "-vn", "-sn", "-dn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le",
         "-c:a", "pcm_s16le", str(out)],
        what=f"decoding the audio of {path.name} for the sync report",
        timeout_s=timeout_s,
    )  # fmt: skip
    samples = array("h")
    samples.frombytes(out.read_bytes())
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def _stream(info: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [s for s in info.get("streams", []) if s.get("codec_type") == kind]
    if not found:
        raise FfmpegFailed(f"the rendered video has no {kind} stream to measure", step="sync")
    stream: dict[str, Any] = found[0]
    return stream


def _start(stream: dict[str, Any]) -> float:
    try:
        return float(stream.get("start_time") or 0)
    except (TypeError, ValueError):
        return 0.0
