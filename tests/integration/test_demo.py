"""`choreo demo` in a subprocess: embedded PostgreSQL, in-process bus, a real video, then reuse."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from schemas.blueprint import parse_blueprint

CHOREO = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "choreo")
# Variables that would point the demo at the local stack instead of its embedded default.
STACK_VARIABLES = ("DATABASE_URL", "PUBSUB_EMULATOR_HOST", "PUBSUB_PROJECT_ID", "STORAGE_BACKEND")


def run_demo(
    data_dir: Path, *args: str, path: str | None = None, **settings: str
) -> subprocess.CompletedProcess[str]:
    """``choreo demo`` with its own data dir and none of the local stack's settings."""
    env = {k: v for k, v in os.environ.items() if k not in STACK_VARIABLES}
    # 480x270 keeps the suite's clip rendering short; the default 1280x720 is measured by hand.
    env.update(CHOREO_DATA_DIR=str(data_dir), DEMO_SONG_SECONDS="24", COLUMNS="200")
    env.setdefault("DEMO_VIDEO_SIZE", "480x270")
    env.update(settings)
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [CHOREO, "demo", *args], env=env, capture_output=True, text=True, timeout=900, check=False
    )


def printed_path(output: str, label: str) -> Path:
    """The path the demo printed after ``label``."""
    found = re.search(rf"^\s*{label}\s+(\S+)$", output, re.MULTILINE)
    assert found, f"no {label} line in:\n{output}"
    return Path(found.group(1))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One demo data directory shared by the first and second run."""
    return tmp_path_factory.mktemp("demo-data")


@pytest.fixture(scope="module")
def first_run(data_dir: Path) -> subprocess.CompletedProcess[str]:
    """The first demo run, which builds the library, the song and the database."""
    return run_demo(data_dir)


def test_first_run_makes_a_playable_video_a_valid_blueprint_and_a_timeline(
    first_run: subprocess.CompletedProcess[str],
) -> None:
    """A fresh data dir ends with exit 0, an ffprobe-readable video, a valid blueprint and a PNG."""
    assert first_run.returncode == 0, first_run.stdout[-3000:] + first_run.stderr[-3000:]
    assert "procedural library built: 36 moves" in first_run.stdout
    assert "moves      the procedural demo library" in first_run.stdout
    video = printed_path(first_run.stdout, "video")
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", video],
        capture_output=True,
        text=True,
        check=True,
    )
    assert float(probe.stdout) > 15
    parse_blueprint(printed_path(first_run.stdout, "blueprint").read_bytes())
    timeline = printed_path(first_run.stdout, "timeline")
    assert timeline.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_second_run_reuses_the_library_song_and_database(
    first_run: subprocess.CompletedProcess[str], data_dir: Path
) -> None:
    """A second run in the same data dir reuses what the first built and makes another video."""
    assert first_run.returncode == 0, first_run.stdout[-3000:]
    second = run_demo(data_dir)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "procedural library reused: 36 moves" in second.stdout
    assert "demo song reused" in second.stdout
    assert "embedded PostgreSQL (reused)" in second.stdout
    assert printed_path(second.stdout, "video") != printed_path(first_run.stdout, "video")


def test_salsa_is_danced_from_real_motion_capture(
    first_run: subprocess.CompletedProcess[str], data_dir: Path
) -> None:
    """--style salsa builds the CMU salsa library (one trial here, to keep the test short) beside
    the procedural one, dances a salsa song with it, and says so."""
    assert first_run.returncode == 0, first_run.stdout[-3000:]
    done = run_demo(data_dir, "--style", "salsa", CMU_SALSA_TRIALS="03")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "procedural library reused: 36 moves" in done.stdout
    assert re.search(r"salsa library built: 1\d moves", done.stdout), done.stdout[-3000:]
    assert "moves      the real-motion salsa library (CMU motion capture" in done.stdout
    assert "salsa demo song at 170 BPM" in done.stdout
    blueprint = parse_blueprint(printed_path(done.stdout, "blueprint").read_bytes())
    used = {move.move_id for move in blueprint.moves_used}
    assert used and all(move_id.startswith("cmu-salsa-60-03-") or move_id.startswith(
        "cmu-salsa-61-03-") for move_id in used), used  # fmt: skip
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height", "-of", "csv=p=0", printed_path(done.stdout, "video")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert probe.stdout.strip() == "480,270"


def test_another_video_size_on_the_same_data_is_refused_naming_what_to_delete(
    first_run: subprocess.CompletedProcess[str], data_dir: Path
) -> None:
    """The library was rendered at 480x270: asking for 1280x720 there says so, exit 1."""
    assert first_run.returncode == 0, first_run.stdout[-3000:]
    done = run_demo(data_dir, DEMO_VIDEO_SIZE="1280x720")
    assert done.returncode == 1
    assert "was rendered at 480x270 and DEMO_VIDEO_SIZE is 1280x720" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_missing_ffmpeg_is_named_with_how_to_install_it(tmp_path: Path) -> None:
    """Without ffmpeg on PATH the demo exits 1 and says how to install it, before any work."""
    python_only = str(Path(CHOREO).parent)
    done = run_demo(tmp_path / "no-ffmpeg", path=python_only)
    assert done.returncode == 1
    assert "apt-get install ffmpeg" in done.stdout + done.stderr
    assert not (tmp_path / "no-ffmpeg" / "postgres").exists()
