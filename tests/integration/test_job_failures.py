"""``python -m job`` on bad input: the right exit code, a failed task with a clear message."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from schemas.job_exit import ExitCode
from tests.fixtures.blueprints import (
    TEST_CLIPS,
    MovePlan,
    build_blueprint,
    insert_task,
    outbox_types,
    run_job_process,
    task_row,
)

pytestmark = pytest.mark.integration

FAILED = "com.choreo.task.failed.v1"


@pytest.fixture
def storage_root(job_media: Path, tmp_path: Path) -> Path:
    """A private copy of the test media, so a test may break files in it."""
    root = tmp_path / "storage"
    shutil.copytree(job_media, root)
    return root


def _env(database_url: str, root: Path, tmp_path: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "STORAGE_BACKEND": "local",
        "STORAGE_ROOT": str(root),
        "JOB_CACHE_DIR": str(tmp_path / "cache"),
        "JOB_PUBLISH": "outbox",
        "JOB_STORAGE_RETRIES": "1",
    }


def _blueprint(task_id: str, clip: str = TEST_CLIPS[1].key) -> dict[str, Any]:
    moves = [MovePlan(TEST_CLIPS[0].key), MovePlan(clip), MovePlan(TEST_CLIPS[2].key)]
    return build_blueprint(moves, task_id=task_id)


def _files(root: Path) -> set[Path]:
    return {path.relative_to(root) for path in root.rglob("*")}


def test_missing_clip_fails_the_task_with_exit_code_3(
    database_url: str, storage_root: Path, tmp_path: Path
) -> None:
    """A clip that is not in storage: exit 3, task failed naming the field, one task.failed."""
    insert_task(database_url, "task-missing")
    before = _files(storage_root)
    done = run_job_process(
        _blueprint("task-missing", "moves/nowhere.mp4"), _env(database_url, storage_root, tmp_path)
    )
    assert done.returncode == ExitCode.ASSET_UNAVAILABLE, done.stderr
    row = task_row(database_url, "task-missing")
    assert row["state"] == "failed"
    assert "moves_used[1].clip_uri" in row["error"] and "moves/nowhere.mp4" in row["error"]
    assert row["error_stage"] == "fetch"
    assert outbox_types(database_url) == [(FAILED, False)]
    assert _files(storage_root) == before


def test_corrupt_clip_fails_with_exit_code_3(
    database_url: str, storage_root: Path, tmp_path: Path
) -> None:
    """A clip of random bytes is reported as unreadable media, not as an FFmpeg crash."""
    (storage_root / "moves/broken.mp4").write_bytes(b"\x00not a video\xff" * 500)
    insert_task(database_url, "task-corrupt")
    done = run_job_process(
        _blueprint("task-corrupt", "moves/broken.mp4"), _env(database_url, storage_root, tmp_path)
    )
    assert done.returncode == ExitCode.ASSET_UNAVAILABLE, done.stderr
    row = task_row(database_url, "task-corrupt")
    assert row["state"] == "failed"
    assert "moves/broken.mp4" in row["error"] and "not a readable media file" in row["error"]
    assert not (storage_root / "videos").exists()


def test_invalid_blueprint_fails_with_exit_code_2(
    database_url: str, storage_root: Path, tmp_path: Path
) -> None:
    """A speed outside the band: exit 2, and the task's error names the field."""
    document = _blueprint("task-invalid")
    document["moves_used"][1]["speed_factor"] = 2.0
    insert_task(database_url, "task-invalid")
    done = run_job_process(document, _env(database_url, storage_root, tmp_path))
    assert done.returncode == ExitCode.INVALID_BLUEPRINT, done.stderr
    row = task_row(database_url, "task-invalid")
    assert row["state"] == "failed"
    assert "moves_used[1].speed_factor" in row["error"]
    assert outbox_types(database_url) == [(FAILED, False)]


@pytest.mark.parametrize(
    ("token", "hint"),
    [
        ("1" + "0" * 5000, "integer 100000000000... (5001 digits) is out of range"),
        ("NaN", "nan is not a finite number"),
        ('"mov\\u0000e"', "control character NUL (U+0000)"),
    ],
    ids=["5000-digit-integer", "nan", "nul"],
)
def test_unreadable_values_fail_the_task_naming_the_field(
    database_url: str, storage_root: Path, tmp_path: Path, token: str, hint: str
) -> None:
    """Values json.loads would choke on later: exit 2, the task failed naming the field."""
    text = json.dumps(_blueprint("task-odd"))
    text = text.replace('"index": 0', f'"index": {token}', 1)
    assert token in text, "the blueprint has no index 0 to replace"
    insert_task(database_url, "task-odd")
    done = run_job_process(text, _env(database_url, storage_root, tmp_path))
    assert done.returncode == ExitCode.INVALID_BLUEPRINT, done.stderr
    assert "Traceback" not in done.stderr
    row = task_row(database_url, "task-odd")
    assert row["state"] == "failed"
    assert hint in row["error"]
    assert outbox_types(database_url) == [(FAILED, False)]


def test_unparseable_blueprint_exits_2_without_a_task_to_fail(
    database_url: str, storage_root: Path, tmp_path: Path
) -> None:
    """Text that is not JSON: exit 2 with the reason in the log, and no event is written."""
    done = run_job_process("{not json", _env(database_url, storage_root, tmp_path))
    assert done.returncode == ExitCode.INVALID_BLUEPRINT
    assert "not valid JSON" in done.stderr
    assert outbox_types(database_url) == []


@pytest.mark.parametrize("clip_uri", ["../outside.mp4", "moves/escape.mp4"])
def test_paths_leaving_the_storage_root_are_refused(
    database_url: str, storage_root: Path, tmp_path: Path, clip_uri: str
) -> None:
    """``..`` and a symlink pointing out of the root: exit 2, nothing read, nothing written."""
    outside = tmp_path / "outside.mp4"
    shutil.copy(storage_root / TEST_CLIPS[0].key, outside)
    (storage_root / "moves/escape.mp4").symlink_to(outside)
    insert_task(database_url, "task-escape")
    before = _files(storage_root) | _files(tmp_path)
    done = run_job_process(
        _blueprint("task-escape", clip_uri), _env(database_url, storage_root, tmp_path)
    )
    assert done.returncode == ExitCode.INVALID_BLUEPRINT, done.stderr
    row = task_row(database_url, "task-escape")
    assert row["state"] == "failed"
    assert "moves_used[1].clip_uri" in row["error"]
    assert _files(storage_root) | _files(tmp_path) == before


def test_already_failed_task_is_not_rendered(
    database_url: str, storage_root: Path, tmp_path: Path
) -> None:
    """A task that already failed exits 2 and gets no second event or video."""
    insert_task(database_url, "task-done-badly", state="dispatched")
    document = _blueprint("task-done-badly")
    document["moves_used"][1]["speed_factor"] = 2.0
    run_job_process(document, _env(database_url, storage_root, tmp_path))
    done = run_job_process(
        _blueprint("task-done-badly"), _env(database_url, storage_root, tmp_path)
    )
    assert done.returncode == ExitCode.INVALID_BLUEPRINT
    assert "already failed" in done.stderr
    assert outbox_types(database_url) == [(FAILED, False)]
    assert not (storage_root / "videos").exists()


def test_log_lines_are_json_with_the_task_id(
    database_url: str, storage_root: Path, tmp_path: Path
) -> None:
    """Every log line is a JSON object with severity, and names the task once it is known."""
    insert_task(database_url, "task-logs")
    done = run_job_process(
        _blueprint("task-logs", "moves/nowhere.mp4"), _env(database_url, storage_root, tmp_path)
    )
    records = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert records
    assert all("severity" in record for record in records)
    assert any(r.get("task_id") == "task-logs" and r["severity"] == "ERROR" for r in records)


def test_an_in_point_past_the_clips_end_is_named_not_rendered(
    database_url: str, storage_root: Path, tmp_path: Path
) -> None:
    """clip_in_s beyond the clip (5 s long): exit 2 naming the field, not a short video."""
    insert_task(database_url, "task-past-end")
    moves = [MovePlan(TEST_CLIPS[0].key), MovePlan(TEST_CLIPS[1].key, clip_in_s=50.0)]
    done = run_job_process(
        build_blueprint(moves, task_id="task-past-end"), _env(database_url, storage_root, tmp_path)
    )
    assert done.returncode == ExitCode.INVALID_BLUEPRINT, done.stderr
    row = task_row(database_url, "task-past-end")
    assert row["state"] == "failed"
    assert "moves_used[1].clip_in_s: 50 s is past the end of moves/green.mp4" in row["error"]
    assert outbox_types(database_url) == [(FAILED, False)]


def test_sigterm_kills_ffmpeg_fails_the_task_and_exits_7(
    database_url: str, storage_root: Path, tmp_path: Path
) -> None:
    """SIGTERM mid-render (a Cloud Run timeout or cancel): FFmpeg gone, task failed, exit 7."""
    insert_task(database_url, "task-sigterm")
    moves = [MovePlan(TEST_CLIPS[i % len(TEST_CLIPS)].key, counts=4) for i in range(12)]
    env = {
        **os.environ,
        **_env(database_url, storage_root, tmp_path),
        "BLUEPRINT_JSON": json.dumps(build_blueprint(moves, task_id="task-sigterm")),
        "JOB_X264_PRESET": "medium",  # slow enough to be caught mid-render
        "LOG_JSON": "true",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "job"], env=env, cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not _children(process.pid, "ffmpeg"):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no FFmpeg started"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == ExitCode.INTERRUPTED, stderr
    row = task_row(database_url, "task-sigterm")
    assert row["state"] == "failed"
    assert "stopped by signal 15" in row["error"]
    assert outbox_types(database_url) == [(FAILED, False)]
    leftover = subprocess.run(["pgrep", "-f", str(tmp_path / "cache")], capture_output=True,
                              check=False)  # fmt: skip
    assert leftover.stdout == b"", "an FFmpeg outlived the job"


def _children(pid: int, name: str) -> list[str]:
    done = subprocess.run(["pgrep", "-P", str(pid), name], capture_output=True, text=True,
                          check=False)  # fmt: skip
    return done.stdout.split()
