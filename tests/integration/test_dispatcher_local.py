"""The dispatcher with the local runner: real ``python -m job`` subprocesses on real PostgreSQL."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from consumers.dispatcher.app import as_event_handler
from consumers.dispatcher.handler import Dispatcher
from consumers.dispatcher.job_exits import record_job_exit
from consumers.dispatcher.launcher import LaunchRequest, LaunchUnavailable, StorageBlueprintStash
from consumers.dispatcher.local_runner import JobExit, LocalJobRunner
from consumers.runtime.error_mapping import Outcome
from consumers.runtime.handler import EventProcessor
from job.storage import LocalStorage
from producers.task_store import create_task, get_task, task_history, transition
from schemas.event_envelope import ChoreoEvent, Delivery, new_event
from schemas.events import SOURCE_BLUEPRINT_CONSUMER, BlueprintReady
from schemas.task_state import State
from tests.fixtures.blueprints import TEST_CLIPS, MovePlan, build_blueprint, outbox_types

pytestmark = pytest.mark.integration

COMPLETED = "com.choreo.video.completed.v1"
FAILED = "com.choreo.task.failed.v1"
SLEEP = (sys.executable, "-c", "import time; time.sleep(30)")


@pytest.fixture
def storage_root(job_media: Path, tmp_path: Path) -> Path:
    """A private copy of the test media (the job writes its video here)."""
    root = tmp_path / "storage"
    shutil.copytree(job_media, root)
    return root


def job_env(database_url: str, storage_root: Path, tmp_path: Path) -> dict[str, str]:
    """What the dispatcher process would pass on: PATH plus the job's settings."""
    return {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": database_url,
        "STORAGE_BACKEND": "local",
        "STORAGE_ROOT": str(storage_root),
        "JOB_CACHE_DIR": str(tmp_path / "cache"),
        "JOB_PUBLISH": "outbox",
        "JOB_X264_PRESET": "ultrafast",
        "JOB_STORAGE_RETRIES": "0",
        "LOG_JSON": "true",
    }


def planned_task(database_url: str, task_id: str, clip: str = TEST_CLIPS[1].key) -> None:
    """A task in ``planned`` with a two-move blueprint stored."""
    blueprint = build_blueprint(
        [MovePlan(TEST_CLIPS[0].key), MovePlan(clip)], task_id=task_id, width=320, height=180
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        create_task(conn, task_id, "song", {"path": "song"})
        transition(conn, task_id, State.QUEUED, State.ANALYZING)
        transition(conn, task_id, State.ANALYZING, State.PLANNED)
        conn.execute(
            "INSERT INTO blueprints (task_id, schema_version, document) VALUES (%s, '1', %s)",
            (task_id, Jsonb(blueprint)),
        )


def ready(task_id: str) -> Delivery[ChoreoEvent]:
    """A pulled ``blueprint.ready`` for the task."""
    payload = BlueprintReady(
        task_id=task_id, schema_version="1", audio_uri="songs/tone.m4a", duration_s=2, moves_count=2
    )
    return Delivery(new_event(payload, source=SOURCE_BLUEPRINT_CONSUMER), transport="pubsub")


@pytest.fixture
def runner_for(pool: ConnectionPool) -> Iterator[Any]:
    """Builds local runners that record exits through ``pool``; closes them after the test."""
    made: list[LocalJobRunner] = []

    def build(env: dict[str, str], **options: Any) -> LocalJobRunner:
        runner = LocalJobRunner(
            base_env=env, on_exit=lambda ended: record_job_exit(pool, ended), **options
        )
        made.append(runner)
        return runner

    yield build
    for runner in made:
        runner.close(stop_running=True)


def dispatch(pool: ConnectionPool, runner: LocalJobRunner, tmp_path: Path) -> EventProcessor:
    """The dispatcher with ``runner``; blueprints stashed under ``tmp_path``."""
    stash = StorageBlueprintStash(LocalStorage(tmp_path / "stash"))
    return EventProcessor(pool, as_event_handler(Dispatcher(runner, stash, max_env_bytes=28672)))


def states(pool: ConnectionPool, task_id: str) -> list[str]:
    """The task's states, oldest first."""
    with pool.connection() as conn:
        return [row.to_state.value for row in task_history(conn, task_id)]


def test_real_job_renders_the_dispatched_task(
    pool: ConnectionPool, database_url: str, storage_root: Path, tmp_path: Path, runner_for: Any
) -> None:
    """blueprint.ready runs the real job: dispatched, rendering, completed, one video.completed."""
    planned_task(database_url, "task-local-ok")
    runner = runner_for(job_env(database_url, storage_root, tmp_path))
    verdict = dispatch(pool, runner, tmp_path).process(ready("task-local-ok"))
    assert verdict.outcome is Outcome.PROCESSED, verdict.reason
    assert runner.wait_idle(90)
    with pool.connection() as conn:
        task = get_task(conn, "task-local-ok")
    assert task.state is State.COMPLETED, task.error
    assert task.execution_name is not None and task.execution_name.startswith("local-task-local-ok")
    assert (storage_root / "videos" / "task-local-ok.mp4").stat().st_size > 0
    assert states(pool, "task-local-ok")[-3:] == ["dispatched", "rendering", "completed"]
    assert outbox_types(database_url) == [(COMPLETED, False)]


def test_job_that_records_its_own_failure_is_not_failed_twice(
    pool: ConnectionPool, database_url: str, storage_root: Path, tmp_path: Path, runner_for: Any
) -> None:
    """A missing clip: the job fails the task itself (exit 3); the dispatcher adds nothing."""
    planned_task(database_url, "task-local-clip", clip="moves/nowhere.mp4")
    runner = runner_for(job_env(database_url, storage_root, tmp_path))
    dispatch(pool, runner, tmp_path).process(ready("task-local-clip"))
    assert runner.wait_idle(60)
    with pool.connection() as conn:
        task = get_task(conn, "task-local-clip")
    assert task.state is State.FAILED and "moves/nowhere.mp4" in (task.error or "")
    assert not (task.error or "").startswith("video job")  # the job's words, not the dispatcher's
    assert outbox_types(database_url) == [(FAILED, False)]


def test_job_that_cannot_reach_the_database_gets_its_task_failed(
    pool: ConnectionPool, database_url: str, storage_root: Path, tmp_path: Path, runner_for: Any
) -> None:
    """The job exits 6 without writing anything; the dispatcher fails the task naming the code."""
    planned_task(database_url, "task-local-nodb")
    env = {**job_env(database_url, storage_root, tmp_path), "DB_CONNECT_TIMEOUT": "1"}
    env["DATABASE_URL"] = "postgresql://nobody@127.0.0.1:9/nowhere"
    runner = runner_for(env)
    dispatch(pool, runner, tmp_path).process(ready("task-local-nodb"))
    assert runner.wait_idle(60)
    with pool.connection() as conn:
        task = get_task(conn, "task-local-nodb")
    assert task.state is State.FAILED
    assert "exited with code 6 (status-failed)" in (task.error or "")
    assert task.error_stage == "render"
    assert outbox_types(database_url) == [(FAILED, False)]


def test_job_past_its_timeout_is_stopped_and_its_task_failed(
    pool: ConnectionPool, database_url: str, tmp_path: Path, runner_for: Any
) -> None:
    """A job still running at LOCAL_JOB_TIMEOUT is killed and the task fails as job-timeout."""
    planned_task(database_url, "task-local-slow")
    runner = runner_for({"PATH": os.environ["PATH"]}, command=SLEEP, timeout_s=0.5)
    dispatch(pool, runner, tmp_path).process(ready("task-local-slow"))
    assert runner.wait_idle(20)
    with pool.connection() as conn:
        task = get_task(conn, "task-local-slow")
    assert task.state is State.FAILED and "LOCAL_JOB_TIMEOUT" in (task.error or "")
    with pool.connection() as conn:
        last = task_history(conn, "task-local-slow")[-1]
    assert last.detail is not None and last.detail["error_code"] == "job-timeout"


def test_full_queue_refuses_a_launch_as_transient(runner_for: Any) -> None:
    """With one job running and no queue room, another launch is refused for a later retry."""
    runner = runner_for({"PATH": os.environ["PATH"]}, command=SLEEP, queue_limit=1)
    runner.launch(LaunchRequest("task-a"))
    runner.launch(LaunchRequest("task-b"))
    with pytest.raises(LaunchUnavailable, match="LOCAL_JOB_QUEUE_LIMIT=1"):
        runner.launch(LaunchRequest("task-c"))


def test_exit_of_a_stray_execution_leaves_the_task_alone(
    pool: ConnectionPool, database_url: str
) -> None:
    """An exit of an execution the task does not record (rolled-back dispatch) changes nothing."""
    planned_task(database_url, "task-local-stray")
    with pool.connection() as conn:
        transition(
            conn, "task-local-stray", State.PLANNED, State.DISPATCHED, execution_name="local-real"
        )
    stray = JobExit("task-local-stray", "local-stray", 6, last_error="task is planned")
    assert record_job_exit(pool, stray) is False
    with pool.connection() as conn:
        assert get_task(conn, "task-local-stray").state is State.DISPATCHED
