"""The job with practice renditions on real PostgreSQL: uploaded, announced, shown, not doubled."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from typer.testing import CliRunner

from choreo_cli.main import app
from consumers.status_recorder.timeline import load_report
from schemas.job_exit import ExitCode
from tests.fixtures.blueprints import (
    TEST_CLIPS,
    MovePlan,
    announced_completions,
    build_blueprint,
    insert_task,
    outbox_types,
    run_job_process,
    task_row,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

COMPLETED = "com.choreo.video.completed.v1"
EXPECTED = [
    ("mirror", "-mirror.mp4"), ("slow", "-slow050.mp4"), ("loop", "-loop-section-01.mp4"),
    ("loop", "-loop-count-001.mp4"), ("page", ".html"),
]  # fmt: skip


def _blueprint(task_id: str, *, loops: bool = True) -> dict[str, Any]:
    """Four 2-count moves (4 s, one section, one 8-count) asking for one of each rendition;
    no count overlay on the video, so the loops come from a counted copy."""
    moves = [MovePlan(spec.key) for spec in TEST_CLIPS[:4]]
    document = build_blueprint(moves, task_id=task_id, width=320, height=180)
    document["video_output"]["practice"] = {
        "mirror": True, "slow": [0.5], "loops": loops, "page": True,
    }  # fmt: skip
    return document


def _run(
    task_id: str, database_url: str, storage: Path, cache: Path, *, loops: bool = True
) -> None:
    env = {
        "DATABASE_URL": database_url, "STORAGE_ROOT": str(storage),
        "JOB_CACHE_DIR": str(cache), "JOB_PUBLISH": "outbox",
    }  # fmt: skip
    done = run_job_process(_blueprint(task_id, loops=loops), env)
    assert done.returncode == ExitCode.DONE, done.stderr


def _rgb(path: Path, crop: str) -> np.ndarray[Any, Any]:
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-ss", "0.5", "-i", str(path), "-frames:v", "1", "-vf", crop,
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(float)


def test_renditions_are_uploaded_announced_and_shown_by_status(
    database_url: str, job_media: Path, tmp_path: Path
) -> None:
    """One run: every rendition beside the video, listed once in video.completed, recorded on
    the completion's history row and printed by ``choreo status``."""
    storage = tmp_path / "storage"
    shutil.copytree(job_media, storage)
    insert_task(database_url, "task-practice")
    _run("task-practice", database_url, storage, tmp_path / "cache")
    expected = [(kind, f"videos/task-practice{suffix}") for kind, suffix in EXPECTED]
    assert sorted(p.name for p in (storage / "videos").iterdir()) == sorted(
        [uri.split("/")[1] for _, uri in expected]
        + ["task-practice.mp4", "task-practice-sync.json"]
    )
    # The loop shows the counts (top right) that the video itself does not.
    corner = "crop=40:40:280:0"
    assert _rgb(storage / "videos/task-practice-loop-count-001.mp4", corner).std(axis=0).max() > 40
    assert _rgb(storage / "videos/task-practice.mp4", corner).std(axis=0).max() < 10
    (event,) = announced_completions(database_url)
    assert [(item.kind, item.uri) for item in event.renditions] == expected
    assert event.renditions[1].speed == 0.5
    assert event.renditions[3].label == "8-count 1"
    with psycopg.connect(database_url) as conn:
        report = load_report(conn, "task-practice")
    assert [(item["kind"], item["uri"]) for item in report.renditions] == expected
    shown = CliRunner().invoke(app, ["status", "task-practice"], env={"DATABASE_URL": database_url})
    assert shown.exit_code == 0, shown.output
    assert "mirror: videos/task-practice-mirror.mp4" in shown.output
    assert "slow 0.5x: videos/task-practice-slow050.mp4" in shown.output
    assert "loops: 2 clips" in shown.output
    assert "page: videos/task-practice.html" in shown.output


def test_a_retry_after_a_crash_keeps_what_was_uploaded_and_adds_what_was_missing(
    database_url: str, job_media: Path, tmp_path: Path
) -> None:
    """A crashed run left the mirror uploaded and the task rendering: the rerun keeps that
    file, uploads the rest, lists each rendition once, and writes one video.completed."""
    storage = tmp_path / "storage"
    shutil.copytree(job_media, storage)
    (storage / "videos").mkdir()
    earlier = storage / "videos/task-retried-mirror.mp4"
    earlier.write_bytes(b"mirror uploaded by the crashed run")
    insert_task(database_url, "task-retried", state="rendering")
    _run("task-retried", database_url, storage, tmp_path / "cache", loops=False)
    assert earlier.read_bytes() == b"mirror uploaded by the crashed run"
    expected = [item for item in EXPECTED if item[0] != "loop"]  # loops off: a faster test
    for _, suffix in expected:
        assert (storage / f"videos/task-retried{suffix}").stat().st_size > 0
    assert task_row(database_url, "task-retried")["state"] == "completed"
    (event,) = announced_completions(database_url)
    assert [(item.kind, item.uri) for item in event.renditions] == [
        (kind, f"videos/task-retried{suffix}") for kind, suffix in expected
    ]
    # A second run of the completed task renders, uploads and announces nothing more.
    _run("task-retried", database_url, storage, tmp_path / "cache", loops=False)
    assert outbox_types(database_url) == [(COMPLETED, False)]
