"""`choreo render --practice` with real FFmpeg: mirror, slow, loops and page beside the video."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from choreo_cli.main import app
from job.renditions import keyframe_args, keyframe_frames
from tests.fixtures.blueprints import MovePlan, build_blueprint

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FPS = 24
SPLIT = "moves/split.mp4"


def _ffmpeg(*args: str) -> bytes:
    done = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], capture_output=True,
        check=True,
    )  # fmt: skip
    return done.stdout


def _duration(path: Path) -> float:
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(json.loads(done.stdout)["format"]["duration"])


def _rgb(path: Path, at_s: float, crop: str) -> np.ndarray[Any, Any]:
    raw = _ffmpeg("-ss", f"{at_s:.3f}", "-i", str(path), "-frames:v", "1", "-vf", crop,
                  "-f", "rawvideo", "-pix_fmt", "rgb24", "-")  # fmt: skip
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(float)


def _pitch_hz(path: Path) -> float:
    raw = _ffmpeg("-i", str(path), "-ss", "2", "-t", "4", "-vn", "-ac", "1", "-ar", "16000",
                  "-f", "s16le", "-")  # fmt: skip
    samples = np.frombuffer(raw, dtype=np.int16).astype(float)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * 16000 / len(samples))


@pytest.fixture(scope="module")
def practised(job_media: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An 8-move, two-section blueprint rendered once with --practice; the output folder.

    Moves of 4 counts (2 s, 48 frames at 120 BPM); the second section and the third 8-count
    start at frame 192, inside a wipe: the main video has no keyframe there."""
    if not (job_media / SPLIT).exists():
        # Red left half, blue right half: a mirror swaps them.
        _ffmpeg("-f", "lavfi", "-i",
                "color=c=red:s=320x180:r=24:d=5,drawbox=x=160:y=0:w=160:h=180:color=blue:t=fill",
                "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                str(job_media / SPLIT))  # fmt: skip
    moves = [MovePlan(SPLIT if i % 2 == 0 else "moves/green.mp4", counts=4,
                      transition="wipeleft" if i == 4 else "cut",
                      transition_s=0.25 if i == 4 else 0.0) for i in range(8)]  # fmt: skip
    document = build_blueprint(moves, width=320, height=180, fps=FPS, count_numbers=True)
    for index, move in enumerate(document["moves_used"]):
        if index >= 4:
            move["section"] = {"label": "chorus", "index": 1, "repeat_of": None}
    folder = tmp_path_factory.mktemp("practice")
    path = folder / "blueprint.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    result = CliRunner().invoke(
        app,
        ["render", str(path), "--out", str(folder / "out" / "dance.mp4"),
         "--storage-root", str(job_media), "--practice"],
        env={"JOB_CACHE_DIR": str(folder / "cache")},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (folder / "render-output.txt").write_text(result.output, encoding="utf-8")
    return folder / "out"


def test_each_step_after_the_main_render_shows_its_own_progress_line(practised: Path) -> None:
    """The renditions take minutes on a long video: each gets a line with its elapsed time."""
    output = (practised.parent / "render-output.txt").read_text(encoding="utf-8")
    for step in (
        "the sync report",
        "the mirrored rendition",
        "the 0.75x rendition",
        "the 0.5x rendition",
        "the section and 8-count loops",
        "the practice page",
    ):
        assert step in output, output  # fmt: skip


def test_every_rendition_is_written_beside_the_video(practised: Path) -> None:
    """Mirror, two slow copies, 2 section and 4 8-count loops, the page and the sync report,
    named after OUT."""
    names = sorted(path.name for path in practised.iterdir())
    assert names == [
        "dance-loop-count-001.mp4", "dance-loop-count-002.mp4", "dance-loop-count-003.mp4",
        "dance-loop-count-004.mp4", "dance-loop-section-01.mp4", "dance-loop-section-02.mp4",
        "dance-mirror.mp4", "dance-slow050.mp4", "dance-slow075.mp4", "dance-sync.json",
        "dance.html", "dance.mp4",
    ]  # fmt: skip


def test_the_mirror_flips_the_picture_but_not_the_count(practised: Path) -> None:
    """The split clip's left half is blue in the mirror; the count stays in the top right."""
    at = 0.5  # move 0 (the split clip), count 2 showing
    left = _rgb(practised / "dance-mirror.mp4", at, "crop=40:40:20:70").mean(axis=0)
    right = _rgb(practised / "dance.mp4", at, "crop=40:40:20:70").mean(axis=0)
    assert left[2] > 200 and left[0] < 60, f"mirror's left half is {left}, expected blue"
    assert right[0] > 200 and right[2] < 60, f"main video's left half is {right}, expected red"
    # The count is drawn white with a black border in the top-right corner, not the top-left.
    top_right = _rgb(practised / "dance-mirror.mp4", at, "crop=40:40:280:0")
    top_left = _rgb(practised / "dance-mirror.mp4", at, "crop=40:40:0:0")
    assert top_right.std(axis=0).max() > 40, "no count text at the top right of the mirror"
    assert top_left.std(axis=0).max() < 10, "text at the top left: the overlay was mirrored"


def test_slow_renditions_last_longer_and_keep_the_pitch(practised: Path) -> None:
    """0.75x and 0.5x last 1/speed as long (within 0.2 s) and the 440 Hz tone stays 440 Hz."""
    main = _duration(practised / "dance.mp4")
    for name, speed in (("dance-slow075.mp4", 0.75), ("dance-slow050.mp4", 0.5)):
        assert _duration(practised / name) == pytest.approx(main / speed, abs=0.2)
        assert _pitch_hz(practised / name) == pytest.approx(440, abs=10)


def test_loops_last_their_section_or_8_count(practised: Path) -> None:
    """Sections of 16 counts last 8 s; 8-counts at 120 BPM last 4 s (video within one frame)."""
    for name in ("dance-loop-section-01.mp4", "dance-loop-section-02.mp4"):
        assert _duration(practised / name) == pytest.approx(8.0, abs=0.05)
    for number in range(1, 5):
        assert _duration(practised / f"dance-loop-count-{number:03d}.mp4") == pytest.approx(
            4.0, abs=0.05
        )


def _frame_hashes(path: Path, first: int = 0, last: int = 1 << 20) -> list[str]:
    picked = f"select=between(n\\,{first}\\,{last})"
    raw = _ffmpeg("-i", str(path), "-map", "0:v", "-vf", picked, "-fps_mode", "passthrough",
                  "-f", "framemd5", "-")  # fmt: skip
    lines = raw.decode().splitlines()
    return [line.rsplit(",", 1)[1].strip() for line in lines if not line.startswith("#")]


def test_a_loop_starting_on_a_keyframe_is_the_main_videos_frames_exactly(practised: Path) -> None:
    """8-count 2 (frames 96-191, after a hard cut) is copied: the same 96 decoded frames."""
    loop = _frame_hashes(practised / "dance-loop-count-002.mp4")
    assert loop == _frame_hashes(practised / "dance.mp4", 96, 191)
    assert len(loop) == 96


def test_a_loop_starting_inside_a_transition_is_encoded_to_its_frames(practised: Path) -> None:
    """8-count 3 starts at frame 192, mid-wipe (no keyframe): re-encoded, 96 frames, and its
    first frame looks like the main video's frame 192."""
    listing = subprocess.run(
        keyframe_args(practised / "dance.mp4"), capture_output=True, text=True, check=True
    ).stdout
    keyframes = keyframe_frames(listing, FPS)
    assert 96 in keyframes and 192 not in keyframes
    assert len(_frame_hashes(practised / "dance-loop-count-003.mp4")) == 96
    crop = "crop=320:140:0:40"  # below the count overlay
    first = _rgb(practised / "dance-loop-count-003.mp4", 0.0, crop)
    main = _rgb(practised / "dance.mp4", 192 / FPS, crop)
    assert np.abs(first - main).mean() < 8


def test_a_second_render_refuses_to_replace_the_renditions(practised: Path) -> None:
    """Without --overwrite an existing rendition is named and nothing is rendered."""
    folder = practised.parent
    result = CliRunner().invoke(
        app,
        ["render", str(folder / "blueprint.json"), "--out", str(practised / "dance.mp4"),
         "--storage-root", str(folder), "--practice"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "dance.mp4" in result.output and "pass --overwrite" in result.output
