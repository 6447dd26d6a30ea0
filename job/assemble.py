"""Assemble the video: probe inputs, prepare clips, render (or reuse) pieces and audio, join, mux.

Prepared clips, pieces and the encoded audio come from the content-addressed
:class:`SegmentCache`; only the missing ones run through FFmpeg (a few runs at a time). A clip
larger than the output frame is prepared (scaled to the output frame, dense keyframes) when a
missing piece needs it, a smaller one read directly. The missing pieces are rendered in
stretches: one FFmpeg run for many pieces, each move decoded once, split into per-piece entries.
Pieces are raw H.264 streams, so the join is a byte-wise concatenation plus one stream-copy mux:
a blueprint whose pieces are all cached costs one fast remux.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from job.errors import AssetUnavailable, BlueprintRejected, FfmpegFailed
from job.ffmpeg_plan import (
    OWN_MP4_DEMUXER,
    PLAN_VERSION,
    EncodeSettings,
    audio_args,
    audio_key,
    mux_args,
    piece_key,
    prepared_key,
    source_moves,
    stretch_args,
    text_files,
)
from job.ffmpeg_run import (
    format_name,
    has_audio,
    has_video,
    media_duration,
    probe,
    run_ffmpeg,
)
from job.fonts import find_font
from job.prepare import ClipRun, plan_clip_runs, run_clip, store_chunks, worth_preparing
from job.segment_cache import SegmentCache
from job.timeline import ClipFile, Piece, plan_timeline
from schemas.blueprint import Blueprint
from schemas.media_formats import (
    AUDIO_DEMUXERS,
    VIDEO_DEMUXERS,
    UnsupportedMediaFormat,
    choose_demuxer,
)

log = logging.getLogger(__name__)

ProgressCallback = Callable[[float], None]


@dataclass(frozen=True)
class RenderOptions:
    """How to render: encoder settings, parallelism, limits, where to cache and scratch."""

    cache: SegmentCache
    work_dir: Path
    preset: str = "veryfast"
    crf: int = 21
    prepare_clips: str = "auto"
    """``auto``: prepare clips larger than the output frame (``worth_preparing``); ``always``;
    ``never`` (pieces read every source clip directly)."""
    workers: int = 2
    timeout_s: float = 900.0
    font_file: str = ""


@dataclass(frozen=True)
class Assembled:
    """The rendered file and what it took."""

    path: Path
    duration_s: float
    frames: int
    pieces: int
    pieces_cached: int
    audio_cached: bool
    song: ClipFile
    """The song as probed, with the demuxer it is opened with (the sync report decodes it)."""


class _Progress:
    """Frames done per piece, summed under a lock, reported as a percentage."""

    def __init__(self, total: int, report: ProgressCallback | None) -> None:
        self._done: dict[int, int] = {}
        self._total = max(total, 1)
        self._report = report
        self._lock = threading.Lock()

    def update(self, slot: int, frames: int) -> None:
        with self._lock:
            self._done[slot] = frames
            percent = min(100.0, 100.0 * sum(self._done.values()) / self._total)
        if self._report is not None:
            self._report(percent)


def assemble_video(
    blueprint: Blueprint,
    song: ClipFile,
    clips: Mapping[str, ClipFile],
    out: Path,
    options: RenderOptions,
    *,
    on_progress: ProgressCallback | None = None,
) -> Assembled:
    """Render ``blueprint`` from local ``song`` and ``clips`` (by ``clip_uri``) into ``out``."""
    checked = check_media(blueprint, song, clips, options.cache, workers=options.workers)
    song, clips, probes = checked.song, checked.clips, checked.probes
    output = blueprint.video_output
    settings = EncodeSettings(output.width, output.height, output.fps, options.preset, options.crf,
                              x264_threads(options.workers))  # fmt: skip
    overlays = output.overlays.count_numbers or output.overlays.move_names
    prepared = {
        uri: ClipFile(options.cache.path("clips", prepared_key(clip.sha256, settings), ".mp4"),
                      clip.sha256, demuxer=OWN_MP4_DEMUXER)
        if _prepare(options.prepare_clips, probes.get(uri, {}), settings)
        else replace(clip, normalised=False)
        for uri, clip in clips.items()
    }  # fmt: skip
    grid = settings.gop_frames
    timeline = plan_timeline(blueprint, prepared, overlays=overlays, chunk_frames=grid)
    font = find_font(options.font_file) if overlays else None
    text_dir = options.work_dir / "texts"
    text_dir.mkdir(parents=True, exist_ok=True)
    for name, text in text_files(timeline.pieces).items():
        (text_dir / name).write_text(text, encoding="utf-8")
    # Rendering counts for 90 % of the progress, the final remux for the rest.
    progress = _Progress(timeline.frames * 10 // 9, on_progress)
    pieces = timeline.pieces
    keys = [piece_key(piece, settings, font) for piece in pieces]
    cached = [options.cache.path("pieces", key, ".h264").is_file() for key in keys]
    sources = {prepared[uri].path: (clip, probes[uri]) for uri, clip in clips.items()
               if uri in probes}  # fmt: skip
    runs = plan_clip_runs(render_batches(pieces), pieces, keys, cached, sources)
    coming = {key for run in runs for body in run.bodies for key in body.keys}
    done = [hit or key in coming for hit, key in zip(cached, keys, strict=True)]
    stretches = plan_stretches(pieces, keys, done, options.workers)
    for slot, hit in enumerate(cached):
        if hit:
            progress.update(slot, pieces[slot].frames)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="ffmpeg") as pool:
        audio = pool.submit(_audio, blueprint, song, timeline.duration_s, options)
        # Submitted before any stretch: a stretch waiting for its clip waits for a running run.
        ready = {
            run.prepared: pool.submit(
                run_clip, run, settings, options.cache, font=font, text_dir=text_dir,
                timeout_s=options.timeout_s, on_fraction=_body_progress(run, pieces, progress),
            )
            for run in runs
        }  # fmt: skip
        futures = [
            pool.submit(
                _stretch,
                slots,
                pieces,
                settings=settings,
                font=font,
                text_dir=text_dir,
                options=options,
                progress=progress,
                ready=ready,
                keys=keys,
            )
            for slots in stretches
        ]
        for future in [*ready.values(), *futures]:
            future.result()
        audio_path, audio_cached = audio.result()
    rendered = [_made(options.cache, key, piece) for key, piece in zip(keys, pieces, strict=True)]
    log.info(
        "pieces ready",
        extra={"step": "render", "pieces": len(rendered), "pieces_cached": sum(cached),
               "audio_cached": audio_cached, "duration_ms": _ms(started)},
    )  # fmt: skip
    started = time.monotonic()
    joined = options.work_dir / "video.h264"
    join_pieces(rendered, joined)
    mux_slot = len(rendered)
    run_ffmpeg(
        mux_args(joined, audio_path, timeline.duration_s, settings.fps, out),
        what="joining pieces and audio",
        timeout_s=options.timeout_s,
        on_frames=lambda frames: progress.update(mux_slot, frames // 9),
    )
    verify_output(out, timeline.duration_s, settings)
    progress.update(mux_slot, timeline.frames // 9 + 1)
    log.info("video muxed", extra={"step": "mux", "duration_ms": _ms(started)})
    return Assembled(
        out, timeline.duration_s, timeline.frames, len(rendered), sum(cached), audio_cached, song
    )


def _prepare(policy: str, info: Mapping[str, Any], settings: EncodeSettings) -> bool:
    return policy == "always" or (policy == "auto" and worth_preparing(info, settings))


def x264_threads(workers: int) -> int:
    """x264 threads per FFmpeg run: the cores shared out between the parallel runs.

    Several single-threaded encoders side by side spend less CPU than as many frame-threaded ones
    (measured: 15 % less for the same frames on 2 cores); 0 lets x264 choose when runs are serial.
    """
    if workers <= 1:
        return 0
    return max(1, len(os.sched_getaffinity(0)) // workers)


def join_pieces(pieces: Iterable[Path], out: Path) -> None:
    """Concatenate raw H.264 pieces (each opens with a keyframe) into one stream file."""
    with out.open("wb") as joined:
        for piece in pieces:
            with piece.open("rb") as part:
                shutil.copyfileobj(part, joined, 1 << 20)


@dataclass(frozen=True)
class CheckedMedia:
    """The song and clips with the demuxer each is opened with, and ffprobe's view of each clip."""

    song: ClipFile
    clips: dict[str, ClipFile]
    probes: dict[str, dict[str, Any]]


def check_media(
    blueprint: Blueprint,
    song: ClipFile,
    clips: Mapping[str, ClipFile],
    cache: SegmentCache,
    *,
    workers: int = 4,
) -> CheckedMedia:
    """Probe the song and the clips and choose each one's demuxer; ``AssetUnavailable`` for a
    file in a format off the allow-list (:mod:`schemas.media_formats`), a clip without video or
    a song without audio.

    The song and the distinct clips are probed in parallel (an ffprobe start costs ~50 ms of CPU,
    45 of them in a row held a first render up for 3 s); problems are reported in move order.
    """
    used = {move.clip_uri: clips[move.clip_uri] for move in blueprint.moves_used
            if move.clip_uri in clips}  # fmt: skip
    media: list[tuple[ClipFile, str, Sequence[str]]] = [
        (song, f"song {blueprint.song.audio_uri}", AUDIO_DEMUXERS)
    ]
    media += [(clip, f"clip {uri}", VIDEO_DEMUXERS) for uri, clip in used.items()]
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="ffprobe") as pool:
        futures = [pool.submit(_probe_cached, *item, cache) for item in media]
    probed = [future.result() for future in futures]
    probes = dict(zip(used, (info for _, info in probed[1:]), strict=True))
    for index, move in enumerate(blueprint.moves_used):
        info = probes.get(move.clip_uri)
        if info is None:
            continue
        if not has_video(info):
            raise AssetUnavailable(
                f"moves_used[{index}].clip_uri: {move.clip_uri} has no video stream",
                step="probe",
            )
        length = media_duration(info)
        if length and move.clip_in_s >= length:
            raise BlueprintRejected(
                f"moves_used[{index}].clip_in_s: {move.clip_in_s:g} s is past the end of "
                f"{move.clip_uri} ({length:g} s long)",
                step="probe",
            )
    if not has_audio(probed[0][1]):
        raise AssetUnavailable(
            f"song.audio_uri: {blueprint.song.audio_uri} has no audio stream", step="probe"
        )
    chosen = dict(zip(used, (clip for clip, _ in probed[1:]), strict=True))
    return CheckedMedia(probed[0][0], {**clips, **chosen}, probes)


def verify_output(path: Path, duration_s: float, settings: EncodeSettings) -> None:
    """One H.264 yuv420p video stream of the right size, one audio stream, length ± 1 frame."""
    info = probe(path, allowed=(OWN_MP4_DEMUXER,))
    streams = info.get("streams", [])
    video = [s for s in streams if s.get("codec_type") == "video"]
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    problems = []
    if len(video) != 1 or len(audio) != 1:
        problems.append(f"{len(video)} video and {len(audio)} audio streams, expected 1 and 1")
    elif (video[0].get("width"), video[0].get("height")) != (settings.width, settings.height):
        problems.append(f"size {video[0].get('width')}x{video[0].get('height')}")
    elif video[0].get("codec_name") != "h264" or video[0].get("pix_fmt") != "yuv420p":
        problems.append(f"video is {video[0].get('codec_name')} {video[0].get('pix_fmt')}")
    measured = media_duration(info)
    if abs(measured - duration_s) > 1 / settings.fps + 1e-3:
        problems.append(f"duration {measured:.3f} s instead of {duration_s:.3f} s")
    # The audio alone can make the file long enough: the picture must last as long too.
    pictures = float(video[0].get("duration") or 0) if len(video) == 1 else duration_s
    if abs(pictures - duration_s) > 1 / settings.fps + 1e-3:
        problems.append(f"video stream lasts {pictures:.3f} s instead of {duration_s:.3f} s")
    if problems:
        raise FfmpegFailed(f"rendered video is wrong: {'; '.join(problems)}", step="verify")


def _probe_cached(
    media: ClipFile, what: str, allowed: Sequence[str], cache: SegmentCache
) -> tuple[ClipFile, dict[str, Any]]:
    """The file with its demuxer chosen, and ffprobe's view of it (cached by content)."""
    key = hashlib.sha256(json.dumps([PLAN_VERSION, media.sha256, *allowed]).encode()).hexdigest()
    named = f"{what} (downloaded as {media.path.name})"
    try:
        info = cache.read_json("probes", key)
        if not isinstance(info, dict):
            try:
                info = probe(media.path, allowed=allowed)
            except FfmpegFailed as exc:
                raise AssetUnavailable(
                    f"{what} is not a readable media file: {exc}", step="probe"
                ) from exc
            cache.write_json("probes", key, info)
        demuxer = choose_demuxer(format_name(info), allowed, what=named)
    except UnsupportedMediaFormat as exc:
        refused = UnsupportedMediaFormat(named, exc.detected, allowed)
        raise AssetUnavailable(str(refused), step="probe") from exc
    return replace(media, demuxer=demuxer), info


def render_batches(pieces: Sequence[Piece]) -> list[list[int]]:
    """Slots grouped into FFmpeg runs: a move's consecutive body chunks together, else alone."""
    batches: list[list[int]] = []
    for slot, piece in enumerate(pieces):
        previous = pieces[slot - 1] if slot else None
        if (
            previous is not None
            and piece.kind == previous.kind == "segment"
            and piece.move_index == previous.move_index
        ):
            batches[-1].append(slot)
        else:
            batches.append([slot])
    return batches


MAX_STRETCH_FRAMES = 600
"""Frames one FFmpeg run renders at most (20 s at 30 fps): long enough that FFmpeg and x264
starts are few (each FFmpeg start alone costs ~80 ms of CPU)."""
MIN_STRETCH_FRAMES = 150
"""Towards the end of a render stretches shrink down to this, so the render workers finish
close together instead of one waiting for the other's last long run."""
MAX_STRETCH_MOVES = 6
"""Moves (FFmpeg inputs, each with its decoder) one run reads at most."""


def plan_stretches(
    pieces: Sequence[Piece], keys: Sequence[str], done: Sequence[bool], workers: int = 2
) -> list[list[int]]:
    """FFmpeg runs to render the pieces not ``done`` (cached, or coming from a clip run), in
    timeline order (adjacent or not: one run for a blueprint's scattered new pieces spares an
    FFmpeg start per piece), each content key once however often the blueprint shows it, cut at
    ``MAX_STRETCH_MOVES`` moves and at a length that shrinks from ``MAX_STRETCH_FRAMES`` to
    ``MIN_STRETCH_FRAMES`` as the frames left to plan run out (half of them per worker)."""
    todo: list[int] = []
    seen: set[str] = set()
    for slot in range(len(pieces)):
        if not done[slot] and keys[slot] not in seen:
            todo.append(slot)
            seen.add(keys[slot])
    left = sum(pieces[slot].frames for slot in todo)
    stretches: list[list[int]] = []
    frames, moves, limit = 0, set[int](), 0
    for slot in todo:
        piece = pieces[slot]
        touched = moves | set(source_moves(piece))
        joins = stretches and frames + piece.frames <= limit and len(touched) <= MAX_STRETCH_MOVES
        if not joins:
            limit = max(MIN_STRETCH_FRAMES, min(MAX_STRETCH_FRAMES, left // (2 * max(1, workers))))
            stretches.append([])
            frames, touched = 0, set(source_moves(piece))
        stretches[-1].append(slot)
        frames += piece.frames
        moves = touched
        left -= piece.frames
    return stretches


def _stretch(
    slots: list[int],
    pieces: Sequence[Piece],
    *,
    settings: EncodeSettings,
    font: Path | None,
    text_dir: Path,
    options: RenderOptions,
    progress: _Progress,
    ready: Mapping[Path, Future[None]],
    keys: Sequence[str],
) -> None:
    """Render the stretch's pieces in one FFmpeg run into the cache, once their clips are
    prepared (the clip run preparing a clip may still be running)."""
    chosen = [pieces[slot] for slot in slots]
    for piece in chosen:
        _wait_for_clips(piece, ready)
    total = sum(piece.frames for piece in chosen)
    moves = sorted({move for piece in chosen for move in source_moves(piece)})
    what = (f"moves_used[{moves[0]}]" if len(moves) == 1
            else f"moves_used[{moves[0]}..{moves[-1]}]")  # fmt: skip
    with options.cache.scratch() as scratch:
        name = "piece-%04d.h264" if len(chosen) > 1 else "piece-0000.h264"
        run_ffmpeg(
            stretch_args(chosen, settings, Path(scratch) / name, font=font, text_dir=text_dir),
            what=what,
            timeout_s=options.timeout_s,
            on_frames=lambda frames: progress.update(slots[0], min(frames, total)),
        )
        made = sorted(Path(scratch).glob("piece-*.h264"))
        store_chunks(options.cache, made, [keys[slot] for slot in slots], what)
    for slot in slots:
        progress.update(slot, pieces[slot].frames)


def _made(cache: SegmentCache, key: str, piece: Piece) -> Path:
    """The cached file of a piece every run has finished; ``FfmpegFailed`` if none wrote it."""
    path = cache.path("pieces", key, ".h264")
    if not path.is_file():
        raise FfmpegFailed(
            f"{piece.kind} of moves_used[{piece.move_index}] was not rendered", step="assemble"
        )
    return path


def _wait_for_clips(piece: Piece, ready: Mapping[Path, Future[None]]) -> None:
    """Block until the prepared clips ``piece`` reads exist (re-raising a failed preparation)."""
    for span in piece.sources:
        future = ready.get(span.clip.path)
        if future is not None:
            future.result()


def _body_progress(
    run: ClipRun, pieces: Sequence[Piece], progress: _Progress
) -> Callable[[float], None] | None:
    """Report a clip run's share of its bodies' frames under the first body's first slot."""
    if not run.bodies:
        return None
    slot = pieces.index(run.bodies[0].chunks[0])
    total = sum(chunk.frames for body in run.bodies for chunk in body.chunks)
    return lambda fraction: progress.update(slot, min(total, round(fraction * total)))


def _audio(
    blueprint: Blueprint, song: ClipFile, length_s: float, options: RenderOptions
) -> tuple[Path, bool]:
    output, window = blueprint.video_output, blueprint.song.window
    fades = (output.audio_fade_in_s, output.audio_fade_out_s)
    key = audio_key(song.sha256, window.start_s, length_s, *fades)

    def encode(temporary: Path) -> None:
        args = audio_args(
            song,
            temporary,
            start_s=window.start_s,
            length_s=length_s,
            fade_in_s=fades[0],
            fade_out_s=fades[1],
        )
        run_ffmpeg(args, what="encoding the song's window", timeout_s=options.timeout_s)

    return options.cache.get_or_make("audio", key, ".m4a", encode)


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
