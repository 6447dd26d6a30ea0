"""Moves from dance clips: pose extraction in its own environment, estimates, a normalised clip.

The extractor (``pose_worker.py`` beside this module, MediaPipe) runs under ``INGEST_PYTHON``,
a virtual environment of its own, because MediaPipe 0.10.21 needs protobuf < 5 and the project
runs protobuf 7. It writes the landmarks to an ``.npz`` file; this side maps them onto the
skeleton (:mod:`choreography.moves.pose_landmarks`), estimates what the user did not give
(:mod:`choreography.moves.motion_estimates`, the clip's own music through the song analysis),
and cuts and normalises the clip with FFmpeg. The result is a bundle entry, imported by
:func:`choreography.moves.ingest.import_bundle` like every other move.
"""

from __future__ import annotations

import json
import logging
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from blobstore.storage import file_sha256
from choreography.moves import motion_estimates as estimates
from choreography.moves import pose_landmarks as landmarks
from choreography.moves.bundle import MANIFEST_NAME, MANIFEST_VERSION, MoveDraft, manifest_entry
from choreography.moves.bvh_import import canonical_frame, floor_height, slug
from choreography.moves.skeleton import Keypoints
from schemas.errors import InvalidInput

log = logging.getLogger(__name__)

WORKER: Final = Path(__file__).with_name("pose_worker.py")
WORKER_EXIT_REASONS: Final = {2: "unreadable video", 3: "several people", 1: "extractor failed"}
VIDEO_SUFFIXES: Final = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi"})
HASH_CHARS: Final = 10
# The stored clip: the job reads a clip directly (no prepared copy) when it is no larger than
# the output frame and at most 60 fps (job.prepare.worth_preparing), so clips fit in the default
# output (planner.output: 1280x720), keep their frame rate up to the job's PREPARED_MAX_FPS, and
# get a keyframe every PREPARED_GOP frames so a cut seeks in a few frames.
CLIP_MAX_SIZE: Final = (1280, 720)
CLIP_MAX_FPS: Final = 60
CLIP_GOP: Final = 8
CLIP_CRF: Final = 18
FFMPEG_TIMEOUT_S: Final = 600.0
MIN_AUDIO_S: Final = 3.0  # the song analysis needs this much (music.analysis.MIN_DURATION_S)

ProgressCallback = Callable[[int, int], None]  # frames done, frames in the clip


class ClipFailed(InvalidInput):
    """A clip that cannot become a move; the message names the clip."""


@dataclass(frozen=True)
class ExtractOptions:
    """How the extractor runs and how its landmarks become keypoints (``IngestSettings``)."""

    python: Path
    max_gap_frames: int = 15
    min_presence: float = 0.8
    min_cutoff: float = 3.0
    beta: float = 1.0
    people_every: int = 10
    max_fps: float = 30.0
    on_multiple: str = "warn"
    max_frames: int = 0
    timeout_s: float = 900.0


@dataclass(frozen=True)
class ClipValues:
    """What the user says about a clip (manifest row or command line); None: estimate it."""

    name: str | None = None
    style: str | None = None
    difficulty: str | None = None
    energy: str | None = None
    bpm: float | None = None
    counts: int | None = None

    def over(self, fallback: ClipValues) -> ClipValues:
        """These values where given, ``fallback``'s elsewhere."""
        return ClipValues(**{
            name: mine if mine is not None else getattr(fallback, name)
            for name, mine in vars(self).items()
        })  # fmt: skip


@dataclass(frozen=True)
class PoseTrack:
    """The extractor's output for one clip (see ``pose_worker.py`` for the contract)."""

    fps: float
    width: int
    height: int
    world: np.ndarray  # (F, 33, 3) MediaPipe axes, NaN where no person
    visibility: np.ndarray  # (F, 33)
    image: np.ndarray  # (F, 33, 2) normalised, NaN where no person
    present: np.ndarray  # (F,) bool
    people: np.ndarray  # (F,) int, -1 where not counted

    @property
    def frames(self) -> int:
        """Frames the extractor read."""
        return int(self.present.shape[0])

    @classmethod
    def load(cls, path: Path) -> PoseTrack:
        """Read the worker's ``.npz`` (no pickles)."""
        with np.load(path, allow_pickle=False) as data:
            return cls(
                fps=float(data["fps"]),
                width=int(data["width"]),
                height=int(data["height"]),
                world=np.asarray(data["world"], dtype=np.float32),
                visibility=np.asarray(data["visibility"], dtype=np.float32),
                image=np.asarray(data["image"], dtype=np.float32),
                present=np.asarray(data["present"], dtype=bool),
                people=np.asarray(data["people"]),
            )


@dataclass(frozen=True)
class TrackedMotion:
    """Skeleton keypoints over the frames from the first to the last with a person."""

    keypoints: Keypoints
    first_frame: int  # index in the clip of keypoints[0]
    frames_with_person: int
    frames: int
    mean_visibility: float


@dataclass(frozen=True)
class Estimate:
    """A value and where it came from: ``given``, ``audio``, ``motion`` or ``suggested``."""

    value: Any
    source: str


@dataclass
class PreparedClip:
    """One clip turned into a move draft and a normalised clip, with what the report shows."""

    source: Path
    draft: MoveDraft
    clip: Path
    digest: str
    motion: TrackedMotion
    bpm: Estimate
    counts: Estimate
    energy: Estimate
    difficulty: Estimate
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """The report's fields: presence, visibility, tempo, counts, energy, difficulty."""
        m = self.motion
        share = m.frames_with_person / m.frames if m.frames else 0.0
        return (
            f"person in {m.frames_with_person}/{m.frames} frames ({share:.0%}), visibility "
            f"{m.mean_visibility:.2f}, {self.bpm.value:.1f} BPM ({self.bpm.source}), "
            f"{self.counts.value} counts ({self.counts.source}), energy {self.energy.value} "
            f"({self.energy.source}), difficulty {self.difficulty.value} ({self.difficulty.source})"
        )


def move_id_for(name: str, digest: str) -> str:
    """``<slug of name>-<first hash characters>``: the same file under one name, one move."""
    return f"{slug(name)[: 63 - HASH_CHARS - 1]}-{digest[:HASH_CHARS]}"


def find_clips(paths: list[Path]) -> list[Path]:
    """The clips ``paths`` name: files as given, folders' video files (sorted, not recursive)."""
    clips: list[Path] = []
    for path in paths:
        if path.is_dir():
            clips += sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        elif path.is_file():
            clips.append(path)
        else:
            raise InvalidInput(f"{path}: no such clip or folder")
    return clips


def require_extractor(options: ExtractOptions) -> None:
    """``InvalidInput`` naming INGEST_PYTHON when the extractor's environment is missing."""
    if not options.python.exists():
        raise InvalidInput(
            f"INGEST_PYTHON={options.python}: no such interpreter; create the extractor's "
            "environment with infra/local/setup.sh"
        )


def run_pose_worker(
    video: Path,
    out: Path,
    options: ExtractOptions,
    on_progress: ProgressCallback | None = None,
) -> tuple[PoseTrack, list[str]]:
    """Run the extractor on ``video``; its track and its warnings, or ``ClipFailed``."""
    require_extractor(options)
    args = [
        str(options.python), str(WORKER), str(video), str(out),
        "--people-every", str(options.people_every), "--on-multiple", options.on_multiple,
        "--max-frames", str(options.max_frames), "--max-fps", str(options.max_fps),
    ]  # fmt: skip
    warnings: list[str] = []
    error: dict[str, Any] | None = None
    tail: list[str] = []
    with subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    ) as process:  # fmt: skip
        assert process.stderr is not None  # noqa: S101 - stderr=PIPE above
        for line in process.stderr:
            event = _event(line)
            if event is None:
                tail = [*tail[-4:], line.strip()]
            elif event.get("event") == "progress" and on_progress is not None:
                on_progress(int(event.get("frame", 0)), int(event.get("frames", 0)))
            elif event.get("event") == "warning":
                warnings.append(str(event.get("message", event)))
            elif event.get("event") == "error":
                error = event
        try:
            code = process.wait(timeout=options.timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            raise ClipFailed(
                f"{video.name}: pose extraction took over {options.timeout_s:g} s (INGEST_TIMEOUT)"
            ) from None
    if code != 0:
        reason = WORKER_EXIT_REASONS.get(code, f"extractor exit {code}")
        message = str(error["message"]) if error else " ".join(tail) or "no message"
        prefix = "" if message.startswith(video.name) else f"{video.name}: "
        raise ClipFailed(f"{prefix}{message} ({reason})")
    return PoseTrack.load(out), warnings


def _event(line: str) -> dict[str, Any] | None:
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None


def track_motion(track: PoseTrack, options: ExtractOptions, clip: str) -> TrackedMotion:
    """Skeleton keypoints from the landmarks: gaps filled, smoothed, on the floor.

    ``ClipFailed`` naming ``clip`` and the frames when nobody is found, when fewer than
    ``min_presence`` of the frames show a person, or when a gap inside the clip is longer than
    ``max_gap_frames``. Frames before the first and after the last person are cut off.
    """
    present = track.present & np.isfinite(track.world).all(axis=(1, 2))
    total = track.frames
    found = int(present.sum())
    if found == 0:
        raise ClipFailed(f"{clip}: no person found in any of its {total} frames (0-{total - 1})")
    holes = landmarks.gaps(present)
    if found / total < options.min_presence:
        worst = max(holes, key=lambda gap: gap.frames)
        raise ClipFailed(
            f"{clip}: a person in only {found}/{total} frames ({found / total:.0%}, "
            f"INGEST_MIN_PRESENCE={options.min_presence:g}); longest stretch without one: {worst}"
        )
    first = int(np.flatnonzero(present)[0])
    last = int(np.flatnonzero(present)[-1])
    inner = [gap for gap in holes if gap.first > first and gap.last < last]
    too_long = [gap for gap in inner if gap.frames > options.max_gap_frames]
    if too_long:
        ranges = ", ".join(str(gap) for gap in too_long)
        raise ClipFailed(
            f"{clip}: no person in {ranges} (longer than INGEST_MAX_GAP_FRAMES="
            f"{options.max_gap_frames})"
        )
    span = slice(first, last + 1)
    seen = present[span]
    world = landmarks.fill_gaps(track.world[span], seen)
    joints = landmarks.skeleton_from_landmarks(world).astype(np.float64)
    travel = landmarks.pelvis_travel(
        track.world[span], track.image[span], seen, track.width, track.height
    )
    joints += travel[:, None, :]
    smooth = landmarks.one_euro(
        joints, track.fps, min_cutoff=options.min_cutoff, beta=options.beta
    ).astype(np.float32)
    placed = canonical_frame(smooth, track.fps, floor_height(smooth))
    visibility = float(track.visibility[present].mean()) if found else 0.0
    return TrackedMotion(placed, first, found, total, visibility)


def audio_tempo(video: Path, scratch: Path) -> float | None:
    """The tempo of the clip's own audio by the song analysis; None without usable music."""
    from choreography.music.analysis import analyse_file  # noqa: PLC0415 - librosa is heavy

    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "a", "-show_entries", "stream=duration",
         "-of", "json", f"file:{video}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    streams = json.loads(probe.stdout or "{}").get("streams", []) if probe.returncode == 0 else []
    if not streams:
        return None
    wav = scratch / f"{video.stem}.audio.wav"
    decoded = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
         "-protocol_whitelist", "file", "-i", f"file:{video}", "-vn", "-ac", "1", "-ar", "22050",
         "-f", "wav", str(wav)],
        capture_output=True, text=True, timeout=FFMPEG_TIMEOUT_S, check=False,
    )  # fmt: skip
    if decoded.returncode != 0 or not wav.is_file():
        return None
    try:
        if _wav_seconds(wav) < MIN_AUDIO_S:
            return None
        analysis = analyse_file(wav)
    except InvalidInput as error:  # silence, noise, no pulse: the motion decides instead
        log.info("%s: no tempo from the audio (%s)", video.name, error)
        return None
    finally:
        wav.unlink(missing_ok=True)
    return float(analysis.tempo_bpm)


def _wav_seconds(path: Path) -> float:
    import soundfile  # noqa: PLC0415 - heavy

    info = soundfile.info(str(path))
    return float(info.frames) / float(info.samplerate)


def normalise_args(source: Path, out: Path, start_s: float, duration_s: float) -> list[str]:
    """FFmpeg arguments: the counted part of the clip, fitted in ``CLIP_MAX_SIZE``, at most
    ``CLIP_MAX_FPS``, a keyframe every ``CLIP_GOP`` frames, yuv420p, no audio."""
    width, height = CLIP_MAX_SIZE
    scale = (
        f"scale='min({width},iw)':'min({height},ih)':force_original_aspect_ratio=decrease:"
        "force_divisible_by=2"
    )
    gop = str(CLIP_GOP)
    return [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-protocol_whitelist", "file", "-i", f"file:{source}",
        "-ss", f"{start_s:.6f}", "-t", f"{duration_s:.6f}",
        "-vf", f"fps='min({CLIP_MAX_FPS},source_fps)',{scale},setsar=1,format=yuv420p",
        "-an", "-sn", "-dn", "-map_metadata", "-1",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", str(CLIP_CRF), "-bf", "0",
        "-g", gop, "-keyint_min", gop, "-sc_threshold", "0", "-pix_fmt", "yuv420p",
        "-movflags", "+faststart", "-threads", "1", "-f", "mp4", str(out),
    ]  # fmt: skip


def normalise_clip(source: Path, out: Path, start_s: float, duration_s: float) -> None:
    """Write the normalised, trimmed clip (``ClipFailed`` naming the clip if FFmpeg fails)."""
    result = subprocess.run(
        normalise_args(source, out, start_s, duration_s),
        capture_output=True, text=True, timeout=FFMPEG_TIMEOUT_S, check=False,
    )  # fmt: skip
    if result.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
        tail = " ".join(result.stderr.split())[-300:]
        raise ClipFailed(f"{source.name}: cannot normalise the clip with ffmpeg: {tail}")


def prepare_clip(
    source: Path,
    values: ClipValues,
    options: ExtractOptions,
    scratch: Path,
    *,
    digest: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> PreparedClip:
    """Extract, estimate and normalise one clip into ``scratch``; ``ClipFailed`` names it."""
    digest = digest or file_sha256(source)
    name = values.name or source.stem
    move_id = move_id_for(name, digest)
    track, warnings = run_pose_worker(source, scratch / f"{move_id}.npz", options, on_progress)
    motion = track_motion(track, options, source.name)
    fps = track.fps
    tempo = estimates.motion_tempo(motion.keypoints, fps)
    if values.bpm is not None:
        bpm = Estimate(float(values.bpm), "given")
    elif (heard := audio_tempo(source, scratch)) is not None:
        bpm = Estimate(heard, "audio")
    elif tempo is not None:
        bpm = Estimate(tempo.bpm, "motion")
    else:
        raise ClipFailed(
            f"{source.name}: no tempo found (no music in the clip and fewer than three strong "
            "motion beats); give --bpm or a bpm in the manifest"
        )
    first_beat = tempo.strong_beats_s[0] if tempo is not None else None
    try:
        window = estimates.count_window(
            motion.keypoints.shape[0], fps, bpm.value, first_beat_s=first_beat,
            counts=values.counts,
        )  # fmt: skip
    except InvalidInput as error:
        raise ClipFailed(f"{source.name}: {error}") from None
    counts = Estimate(window.counts, "given" if values.counts is not None else "motion")
    part = motion.keypoints[window.start_frame : window.start_frame + window.frames]
    part = canonical_frame(part, fps, floor_height(part))
    energy = Estimate(values.energy, "given") if values.energy else Estimate(
        estimates.energy_level(part, fps), "motion")  # fmt: skip
    difficulty = Estimate(values.difficulty, "given") if values.difficulty else Estimate(
        estimates.difficulty_level(part, fps), "suggested")  # fmt: skip
    start_s = (motion.first_frame + window.start_frame) / fps
    clip = scratch / f"{move_id}.mp4"
    normalise_clip(source, clip, start_s, window.frames / fps)
    draft = MoveDraft(
        move_id=move_id,
        name=name,
        style=values.style or "hip-hop",
        difficulty=difficulty.value,
        energy=energy.value,
        tempo_bpm=round(float(bpm.value), 2),
        counts=int(window.counts),
        keypoints=part,
        fps=fps,
        description=(
            f"Imported from {source.name} ({digest[:HASH_CHARS]}), {start_s:.2f}-"
            f"{start_s + window.frames / fps:.2f} s; {window.counts} counts at "
            f"{bpm.value:.1f} BPM ({bpm.source})."
        ),
        tags=("video", slug(source.stem)),
    )
    return PreparedClip(source, draft, clip, digest, motion, bpm, counts, energy, difficulty,
                        warnings)  # fmt: skip


def write_video_bundle(out_dir: Path, clips: list[PreparedClip]) -> Path:
    """A bundle manifest for prepared clips (keypoints saved beside it); its path.

    Each entry carries ``original``: the source clip, kept in storage beside the normalised one.
    """
    (out_dir / "keypoints").mkdir(parents=True, exist_ok=True)
    entries = []
    for prepared in clips:
        draft = prepared.draft
        keypoints = out_dir / "keypoints" / f"{draft.move_id}.npy"
        np.save(keypoints, draft.keypoints)
        entry = manifest_entry(
            draft, clip=str(prepared.clip.resolve()), keypoints=str(keypoints.resolve())
        )
        entries.append({**entry, "original": str(prepared.source.resolve())})
    path = out_dir / MANIFEST_NAME
    manifest = {"version": MANIFEST_VERSION, "moves": entries}
    path.write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    return path


def scratch_dir() -> tempfile.TemporaryDirectory[str]:
    """A temporary folder for one import's extractor output and normalised clips."""
    return tempfile.TemporaryDirectory(prefix="choreo-video-")
