"""Measure the sync report on the rendered file itself (docs/SYNC_REPORT.md).

FFmpeg runs, no shell: the rendered video decoded around each hard cut for the scene score of
every frame there (scaled to 160 pixels wide first), while its audio and the song's opening are
decoded mono at 8 kHz and aligned. The song is decoded from its first sample, not seeked to the
window the way the render cuts it, so a seek that lands wrong in the render is measured rather
than repeated. The arithmetic is in :mod:`job.sync_report`.
"""

from __future__ import annotations

import sys
import time
from array import array
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
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
    Alignment,
    PlannedCut,
    SceneScores,
    SyncReport,
    Tolerances,
    audio_alignment,
    match_cuts,
    onset_envelope,
    scan_windows,
    tolerance_failures,
)
from job.timeline import ClipFile, cut_frames
from schemas.blueprint import Blueprint, SyncTolerances

SCENE_WIDTH = 160
"""Frames are scaled to this width before scoring: a cut changes the whole picture, and the
score of a 160x90 frame costs a fraction of a 720p one."""
WINDOWS_PER_RUN = 16
"""Stretches of the video one FFmpeg run decodes (each an input of its own, seeked to)."""


def measure_sync(
    blueprint: Blueprint, video: Path, song: ClipFile, work_dir: Path, *, timeout_s: float
) -> SyncReport:
    """The sync report of ``video`` (rendered from ``blueprint``) against ``song``; the
    report's ``failures`` list what misses the blueprint's tolerances."""
    started = time.monotonic()
    scratch = work_dir / "sync"
    scratch.mkdir(parents=True, exist_ok=True)
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
    windows = scan_windows([cut.time_s for cut in planned], fps, cuts[-1] / fps)
    # Three FFmpeg processes at once: each costs more to start than to run on a short video.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="sync") as pool:
        audio = pool.submit(_align_audio, blueprint, video, song, scratch, timeout_s)
        probed = pool.submit(probe, video, allowed=(OWN_MP4_DEMUXER,))
        scenes = scene_scores(video, windows, scratch, timeout_s=timeout_s)
        info, alignment = probed.result(), audio.result()
    video_stream, audio_stream = _stream(info, "video"), _stream(info, "audio")
    checks = match_cuts(planned, scenes, beats, fps)
    step_s = HOP / SAMPLE_RATE
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


def _align_audio(
    blueprint: Blueprint, video: Path, song: ClipFile, scratch: Path, timeout_s: float
) -> Alignment | None:
    """The rendered audio's envelope aligned with the song's at the window's start."""
    window = blueprint.song.window
    until_s = window.end_s + MAX_LAG_S + 0.5
    pcm = decode_audio(video, song, scratch, until_s=until_s, timeout_s=timeout_s)
    rendered, source = onset_envelope(pcm[0]), onset_envelope(pcm[1])
    step_s = HOP / SAMPLE_RATE
    max_lag = round(MAX_LAG_S / step_s)
    base = round(window.start_s / step_s)
    lead = max(0, max_lag - base)
    tail = max(0, base + len(rendered) + max_lag - len(source))
    return audio_alignment(rendered, [0.0] * lead + source + [0.0] * tail, base + lead, max_lag)


def scene_scores(
    video: Path, windows: Sequence[tuple[float, float]], scratch: Path, *, timeout_s: float
) -> SceneScores:
    """FFmpeg's scene score of every frame of ``video`` inside ``windows`` (seconds, sorted,
    apart), with its timestamp (``-copyts``: the file's own), printed by the ``metadata``
    filter; each window is an input seeked to, up to ``WINDOWS_PER_RUN`` per FFmpeg run."""
    times: list[float] = []
    scores: list[float] = []
    for first in range(0, len(windows), WINDOWS_PER_RUN):
        batch = windows[first : first + WINDOWS_PER_RUN]
        outs = [scratch / f"scenes-{first + index:04d}.txt" for index in range(len(batch))]
        run_ffmpeg(
            scene_args(video, batch, outs),
            what="measuring the cuts of the rendered video",
            timeout_s=timeout_s,
        )
        for out in outs:
            found = parse_scene_scores(out.read_text(encoding="utf-8"))
            times += found.times_s
            scores += found.scores
    return SceneScores(tuple(times), tuple(scores))


def scene_args(
    video: Path, windows: Sequence[tuple[float, float]], outs: Sequence[Path]
) -> list[str]:
    """One FFmpeg run printing the scene score of each window's frames into its own file; the
    branches are concatenated into the null muxer only to have an output."""
    inputs: list[str] = []
    chains: list[str] = []
    for index, ((start, end), out) in enumerate(zip(windows, outs, strict=True)):
        inputs += ["-skip_loop_filter", "all", "-threads", "1", "-ss", f"{start:.6f}",
                   "-t", f"{end - start:.6f}", *media_input(video, OWN_MP4_DEMUXER)]  # fmt: skip
        chains.append(
            f"[{index}:v:0]scale={SCENE_WIDTH}:-2:flags=fast_bilinear,select='gte(scene,0)',"
            f"metadata=mode=print:key=lavfi.scene_score:file={filter_path(out)}[s{index}]"
        )
    joined = "".join(f"[s{index}]" for index in range(len(windows)))
    chains.append(f"{joined}concat=n={len(windows)}:v=1:a=0[v]")
    return ["ffmpeg", *FFMPEG_COMMON, "-copyts", *inputs, "-filter_complex", ";".join(chains),
            "-map", "[v]", "-f", "null", "-"]  # fmt: skip


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
    video: Path, song: ClipFile, scratch: Path, *, until_s: float, timeout_s: float
) -> tuple[array[int], array[int]]:
    """The first audio stream of the rendered ``video`` and of ``song`` (up to ``until_s``),
    each from its first sample, mono 16-bit at 8 kHz: one FFmpeg run, two outputs."""
    outs = (scratch / "video.pcm", scratch / "song.pcm")
    pcm = ["-vn", "-sn", "-dn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le",
           "-c:a", "pcm_s16le"]  # fmt: skip
    run_ffmpeg(
        ["ffmpeg", *FFMPEG_COMMON, *media_input(video, OWN_MP4_DEMUXER),
         *media_input(song.path, song.demuxer),
         "-map", "0:a:0", *pcm, str(outs[0]),
         "-map", "1:a:0", "-t", f"{until_s:.6f}", *pcm, str(outs[1])],
        what="decoding the audio of the rendered video and the song for the sync report",
        timeout_s=timeout_s,
    )  # fmt: skip
    return _samples(outs[0]), _samples(outs[1])


def _samples(path: Path) -> array[int]:
    samples = array("h")
    samples.frombytes(path.read_bytes())
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
