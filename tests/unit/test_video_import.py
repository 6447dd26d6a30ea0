"""Importing clips, main-process side: the worker's events and errors, gap rules, the manifest,
which values win, the normalised clip. The extractor is a stand-in script writing a synthetic
``.npz`` (the real MediaPipe worker runs in tests/integration/test_video_import_corpus.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from choreography.moves import pose_landmarks as lm
from choreography.moves.clip_manifest import clip_values, read_clip_manifest, values_for
from choreography.moves.video_import import (
    ClipFailed,
    ClipValues,
    ExtractOptions,
    PoseTrack,
    find_clips,
    move_id_for,
    normalise_args,
    prepare_clip,
    run_pose_worker,
    track_motion,
)
from schemas.errors import InvalidInput

FPS = 30.0


def _landmarks(frames: int, bpm: float = 120.0) -> np.ndarray:
    """World landmarks (MediaPipe axes) of a person pumping both arms, still on every beat."""
    t = np.arange(frames) / FPS
    lift = 0.15 * (1 - np.cos(np.pi * t * bpm / 60.0))
    base = np.zeros((lm.NUM_LANDMARKS, 3))
    for index, (x, y) in {lm.LEFT_SHOULDER: (0.18, -0.5), lm.LEFT_ELBOW: (0.22, -0.25),
                          lm.LEFT_WRIST: (0.24, 0.0), lm.LEFT_HIP: (0.1, 0.0),
                          lm.LEFT_KNEE: (0.1, 0.42), lm.LEFT_ANKLE: (0.1, 0.85),
                          lm.LEFT_EAR: (0.07, -0.66)}.items():  # fmt: skip
        base[index] = (x, y, 0.0)
        base[index + 1] = (-x, y, 0.0)
    base[lm.NOSE] = (0.0, -0.66, -0.1)
    world = np.repeat(base[None], frames, axis=0)
    for index in (lm.LEFT_WRIST, lm.RIGHT_WRIST):
        world[:, index, 1] -= lift  # up is -y in MediaPipe
    return world


def _track(present: np.ndarray, bpm: float = 120.0) -> dict[str, Any]:
    frames = present.size
    world = _landmarks(frames, bpm).astype(np.float32)
    world[~present] = np.nan
    image = np.full((frames, lm.NUM_LANDMARKS, 2), 0.5, np.float32)
    image[:, [lm.LEFT_SHOULDER, lm.RIGHT_SHOULDER], 1] = 0.3
    image[~present] = np.nan
    return {
        "fps": np.float64(FPS), "width": np.int64(64), "height": np.int64(64),
        "n_frames": np.int64(frames), "world": world,
        "visibility": np.where(present[:, None], 0.9, 0.0).astype(np.float32).repeat(33, 1),
        "image": image, "present": present, "people": np.full(frames, -1, np.int16),
        "target_box": np.tile(np.array([0, 0, 1, 1], np.float32), (frames, 1)),
    }  # fmt: skip


def _pose(present: np.ndarray) -> PoseTrack:
    arrays = _track(present)
    return PoseTrack(
        fps=FPS, width=64, height=64, world=arrays["world"], visibility=arrays["visibility"],
        image=arrays["image"], present=present, people=arrays["people"],
    )  # fmt: skip


def _fake_worker(tmp_path: Path, npz: Path | None, exit_code: int = 0, error: str = "") -> Path:
    """An 'interpreter' that ignores the worker script, reports progress and writes ``npz``."""
    lines = ['{"event": "progress", "frame": 10, "frames": 20}', "native noise, not JSON",
             '{"event": "warning", "code": "several_people", "message": "two people"}']  # fmt: skip
    if error:
        lines.append(json.dumps({"event": "error", "code": "x", "message": error}))
    script = tmp_path / "fake-python"
    copy = f'cp "{npz}" "$3"\n' if npz is not None else ""
    echo = "".join(f"echo '{line}' >&2\n" for line in lines)
    script.write_text(f"#!/bin/sh\n{echo}{copy}exit {exit_code}\n")
    script.chmod(0o755)
    return script


def test_worker_progress_and_warnings_are_relayed(tmp_path: Path) -> None:
    """Progress lines reach the callback; warnings come back; the npz is read."""
    npz = tmp_path / "track.npz"
    np.savez(npz, **_track(np.ones(20, bool)))
    seen: list[tuple[int, int]] = []
    options = ExtractOptions(python=_fake_worker(tmp_path, npz))
    track, warnings = run_pose_worker(
        tmp_path / "clip.mp4", tmp_path / "out.npz", options, lambda d, n: seen.append((d, n))
    )
    assert seen == [(10, 20)]
    assert warnings == ["two people"]
    assert track.frames == 20 and track.fps == FPS


def test_worker_error_becomes_one_clear_clip_error(tmp_path: Path) -> None:
    """The worker's JSON error and exit code become ClipFailed naming the clip and the reason."""
    options = ExtractOptions(python=_fake_worker(tmp_path, None, 3, "several people in 4-9"))
    with pytest.raises(ClipFailed, match=r"^dance\.mp4: several people in 4-9 \(several people\)"):
        run_pose_worker(tmp_path / "dance.mp4", tmp_path / "out.npz", options)


def test_missing_ingest_python_says_how_to_make_it(tmp_path: Path) -> None:
    """A missing INGEST_PYTHON names the setting and infra/local/setup.sh."""
    options = ExtractOptions(python=tmp_path / "nope" / "python")
    with pytest.raises(InvalidInput, match=r"INGEST_PYTHON=.*infra/local/setup.sh"):
        run_pose_worker(tmp_path / "clip.mp4", tmp_path / "out.npz", options)


def test_short_gaps_are_filled_and_edges_cut() -> None:
    """A 3-frame gap is interpolated; frames before the first person are cut off."""
    present = np.ones(60, bool)
    present[:5] = False
    present[30:33] = False
    motion = track_motion(_pose(present), ExtractOptions(python=Path("x"), min_presence=0.5), "a")
    assert motion.first_frame == 5
    assert motion.keypoints.shape == (55, 16, 3)
    assert np.isfinite(motion.keypoints).all()
    assert motion.frames_with_person == 52 and motion.frames == 60
    assert motion.mean_visibility == pytest.approx(0.9)
    ankles = motion.keypoints[:, [12, 15], 1]
    assert ankles.min() == pytest.approx(0.08, abs=0.01)  # on the floor, as bvh_import puts it


def test_a_long_gap_fails_naming_the_clip_and_frames() -> None:
    """A gap longer than max_gap_frames fails with its frame range."""
    present = np.ones(100, bool)
    present[40:60] = False
    options = ExtractOptions(python=Path("x"), max_gap_frames=15, min_presence=0.5)
    with pytest.raises(ClipFailed, match=r"^jump\.mp4: no person in frames 40-59 .*=15\)"):
        track_motion(_pose(present), options, "jump.mp4")


def test_too_little_presence_fails_with_the_share_and_longest_gap() -> None:
    """Under min_presence: the share and the longest stretch without a person."""
    present = np.zeros(100, bool)
    present[10:40] = True
    options = ExtractOptions(python=Path("x"), min_presence=0.8)
    with pytest.raises(ClipFailed, match=r"30/100 frames \(30%.*without one: frames 40-99"):
        track_motion(_pose(present), options, "far.mp4")


def test_no_person_at_all_fails_with_the_whole_range() -> None:
    """Nobody in any frame: the clip fails naming all its frames."""
    with pytest.raises(ClipFailed, match=r"^empty\.mp4: no person found in any of its 50 frames"):
        track_motion(_pose(np.zeros(50, bool)), ExtractOptions(python=Path("x")), "empty.mp4")


def test_manifest_csv_and_json_give_the_same_values(tmp_path: Path) -> None:
    """CSV (empty cells not given) and JSON rows read to the same checked values."""
    csv_file = tmp_path / "clips.csv"
    csv_file.write_text("clip,name,style,bpm,counts,energy\nwave.mp4,Wave,pop,118,8,\n")
    json_file = tmp_path / "clips.json"
    row = {"clip": "wave.mp4", "name": "Wave", "style": "pop", "bpm": 118, "counts": 8}
    json_file.write_text(json.dumps({"clips": [row]}))
    expected = ClipValues(name="Wave", style="pop", bpm=118.0, counts=8)
    assert read_clip_manifest(csv_file) == {"wave.mp4": expected}
    assert read_clip_manifest(json_file) == {"wave.mp4": expected}
    assert values_for(read_clip_manifest(csv_file), Path("/x/wave.mp4")) == expected


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"clip": "a.mp4", "style": "disco"}, r"row 1: style: 'disco' is not one of"),
        ({"clip": "a.mp4", "bpm": "fast"}, r"row 1: bpm: not a number: 'fast'"),
        ({"clip": "a.mp4", "counts": 7.5}, r"row 1: counts: must be a whole number"),
        ({"name": "x"}, r"row 1: clip: missing"),
        ({"clip": "a.mp4", "tempo": 1}, r"row 1: unknown field 'tempo'"),
    ],
)
def test_bad_manifest_rows_name_the_row_and_field(
    tmp_path: Path, row: dict[str, object], message: str
) -> None:
    """A bad row fails before any extraction, naming the file, the row and the field."""
    path = tmp_path / "m.json"
    path.write_text(json.dumps([row]))
    with pytest.raises(InvalidInput, match=message):
        read_clip_manifest(path)


def test_manifest_row_beats_command_line_beats_nothing() -> None:
    """Per-clip values win over command-line values, which fill what the row leaves out."""
    row = ClipValues(style="salsa", bpm=None)
    line = ClipValues(style="pop", bpm=120.0, energy="low")
    assert row.over(line) == ClipValues(style="salsa", bpm=120.0, energy="low")


def test_move_id_is_name_and_content_hash() -> None:
    """The same name and content give the same id; another file another one."""
    assert move_id_for("My Wave!", "abcdef0123456789") == "my-wave-abcdef0123"
    assert move_id_for("x" * 80, "f" * 64).endswith("-ffffffffff")
    assert len(move_id_for("x" * 80, "f" * 64)) <= 64


def test_normalised_clip_arguments_fit_the_jobs_fast_path() -> None:
    """Cut, within 1280x720, at most 60 fps, a keyframe every 8 frames, no B-frames, no audio."""
    args = normalise_args(Path("/in/clip.mov"), Path("/out/c.mp4"), 1.5, 4.0)
    assert args[args.index("-i") + 1] == "file:/in/clip.mov"
    assert args[args.index("-ss") + 1] == "1.500000" and args[args.index("-t") + 1] == "4.000000"
    graph = args[args.index("-vf") + 1]
    assert "min(1280,iw)" in graph and "min(720,ih)" in graph and "min(60,source_fps)" in graph
    assert args[args.index("-g") + 1] == "8" and args[args.index("-bf") + 1] == "0"
    assert "-an" in args


def test_find_clips_reads_folders_and_refuses_missing_paths(tmp_path: Path) -> None:
    """Folders give their video files sorted; a missing path is one clear error."""
    for name in ("b.mp4", "a.MOV", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in find_clips([tmp_path])] == ["a.MOV", "b.mp4"]
    with pytest.raises(InvalidInput, match="no such clip or folder"):
        find_clips([tmp_path / "absent.mp4"])


def _video(path: Path, seconds: float) -> Path:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
         f"testsrc=size=96x64:rate=30:duration={seconds}", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    return path


def test_prepare_clip_estimates_what_is_not_given_and_cuts_the_clip(tmp_path: Path) -> None:
    """No values given: tempo from the motion, whole 8-counts, energy and a difficulty; the
    stored clip is the counted part."""
    clip = _video(tmp_path / "pump.mp4", 10.0)
    npz = tmp_path / "track.npz"
    np.savez(npz, **_track(np.ones(300, bool), bpm=120.0))
    options = ExtractOptions(python=_fake_worker(tmp_path, npz))
    ready = prepare_clip(clip, ClipValues(), options, tmp_path)
    assert ready.bpm.source == "motion" and ready.bpm.value == pytest.approx(120.0, rel=0.03)
    assert (ready.counts.value, ready.counts.source) == (16, "motion")
    assert ready.energy.source == "motion" and ready.difficulty.source == "suggested"
    assert ready.draft.keypoints.shape[0] == pytest.approx(240, abs=2)
    assert ready.draft.move_id.startswith("pump-")
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json",
         str(ready.clip)], capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert float(json.loads(probe.stdout)["format"]["duration"]) == pytest.approx(8.0, abs=0.1)
    assert "person in 300/300 frames (100%)" in ready.summary()


def test_prepare_clip_user_values_win(tmp_path: Path) -> None:
    """Given bpm, counts, energy and difficulty are used as they are, and say so."""
    clip = _video(tmp_path / "pump.mp4", 10.0)
    npz = tmp_path / "track.npz"
    np.savez(npz, **_track(np.ones(300, bool), bpm=120.0))
    options = ExtractOptions(python=_fake_worker(tmp_path, npz))
    given = ClipValues(name="Pump", style="pop", difficulty="advanced", energy="low", bpm=100.0,
                       counts=8)  # fmt: skip
    ready = prepare_clip(clip, given, options, tmp_path)
    draft = ready.draft
    assert (draft.name, draft.style, draft.difficulty, draft.energy) == (
        "Pump", "pop", "advanced", "low")  # fmt: skip
    assert (draft.tempo_bpm, draft.counts) == (100.0, 8)
    assert {ready.bpm.source, ready.counts.source, ready.energy.source} == {"given"}
    assert draft.keypoints.shape[0] == round(8 * 60 / 100 * FPS)


def test_command_line_values_are_checked_as_options() -> None:
    """A bad command-line value names its option."""
    with pytest.raises(InvalidInput, match=r"^--style: 'disco' is not one of"):
        clip_values({"style": "disco"}, "")
    with pytest.raises(InvalidInput, match=r"^--counts: must be a positive number, got 0"):
        clip_values({"counts": 0}, "")


def test_ingest_python_is_found_in_the_checkout_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The relative default resolves against the checkout when the working directory lacks it."""
    from schemas.settings import IngestSettings  # noqa: PLC0415

    checkout = Path(__file__).resolve().parents[2]
    fake = checkout / ".venv-test-ingest" / "bin" / "python"
    fake.parent.mkdir(parents=True, exist_ok=True)
    fake.touch()
    try:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("INGEST_PYTHON", ".venv-test-ingest/bin/python")
        assert IngestSettings().python == fake
        monkeypatch.setenv("INGEST_PYTHON", "nowhere/python")
        assert IngestSettings().python == Path("nowhere/python")  # named as given in the error
    finally:
        fake.unlink()
        fake.parent.rmdir()
        fake.parent.parent.rmdir()
