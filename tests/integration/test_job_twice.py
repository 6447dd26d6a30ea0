"""Running the job twice for one task (Cloud Run retries): one video, one ``video.completed``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from schemas.event_codec import from_pubsub
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
from tests.fixtures.pubsub import PubSubProject

pytestmark = pytest.mark.integration

COMPLETED = "com.choreo.video.completed.v1"


def _blueprint(task_id: str) -> dict[str, object]:
    moves = [MovePlan(spec.key) for spec in TEST_CLIPS[:4]]
    return build_blueprint(moves, task_id=task_id)


def test_second_run_finds_the_task_completed_and_does_nothing(
    database_url: str, job_media: Path, tmp_path: Path, pubsub_project: PubSubProject
) -> None:
    """Two runs: both exit 0, one video file, one outbox row, one message on video-done."""
    topic = pubsub_project.topic_path("video-done")
    subscription = pubsub_project.subscription_path("video-done-test")
    pubsub_project.publisher.create_topic(name=topic)
    pubsub_project.subscriber.create_subscription(name=subscription, topic=topic)
    storage = tmp_path / "storage"
    shutil.copytree(job_media, storage)  # copies: symlinks out of the root are refused
    insert_task(database_url, "task-twice")
    env = {
        "DATABASE_URL": database_url,
        "STORAGE_ROOT": str(storage),
        "JOB_CACHE_DIR": str(tmp_path / "cache"),
        "PUBSUB_EMULATOR_HOST": os.environ["PUBSUB_EMULATOR_HOST"],
        "PUBSUB_PROJECT_ID": pubsub_project.project_id,
        "JOB_PUBLISH": "direct",
    }
    first = run_job_process(_blueprint("task-twice"), env)
    assert first.returncode == ExitCode.DONE, first.stderr
    video = storage / "videos/task-twice.mp4"
    first_bytes = video.read_bytes()
    second = run_job_process(_blueprint("task-twice"), env)
    assert second.returncode == ExitCode.DONE, second.stderr
    assert "already completed" in second.stderr
    assert sorted(p.name for p in (storage / "videos").iterdir()) == [
        "task-twice-sync.json", "task-twice.mp4",
    ]  # fmt: skip
    assert video.read_bytes() == first_bytes
    row = task_row(database_url, "task-twice")
    assert (row["state"], row["video_uri"], row["progress"]) == (
        "completed", "videos/task-twice.mp4", 100,
    )  # fmt: skip
    assert outbox_types(database_url) == [(COMPLETED, True)]
    pulled = pubsub_project.subscriber.pull(subscription=subscription, max_messages=10, timeout=10)
    messages = list(pulled.received_messages)
    assert len(messages) == 1
    message = messages[0].message
    event = from_pubsub(message.data, dict(message.attributes)).event
    assert event.type == COMPLETED
    assert event.data.task_id == "task-twice"  # type: ignore[union-attr]


def test_rerun_after_a_crash_keeps_the_uploaded_video_and_announces_once(
    database_url: str, job_media: Path, tmp_path: Path
) -> None:
    """A task left rendering with its video already stored: rerun completes, no overwrite."""
    storage = tmp_path / "storage"
    shutil.copytree(job_media, storage)
    (storage / "videos").mkdir()
    earlier = storage / "videos/task-crashed.mp4"
    earlier.write_bytes(b"video uploaded by the crashed run")
    insert_task(database_url, "task-crashed", state="rendering")
    env = {
        "DATABASE_URL": database_url,
        "STORAGE_ROOT": str(storage),
        "JOB_CACHE_DIR": str(tmp_path / "cache"),
        "JOB_PUBLISH": "outbox",
    }
    done = run_job_process(_blueprint("task-crashed"), env)
    assert done.returncode == ExitCode.DONE, done.stderr
    assert earlier.read_bytes() == b"video uploaded by the crashed run"
    assert task_row(database_url, "task-crashed")["state"] == "completed"
    assert outbox_types(database_url) == [(COMPLETED, False)]
