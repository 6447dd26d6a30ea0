"""The status recorder on real PostgreSQL: the task row reflects every ``video-done`` event once."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from psycopg_pool import ConnectionPool

from consumers.runtime.handler import EventProcessor
from consumers.status_recorder.app import status_recorder
from delivery.error_mapping import Outcome
from lifecycle.outbox import outbox_rows
from lifecycle.task_store import create_task, get_task, task_history, transition
from schemas.event_envelope import ChoreoEvent, Delivery, new_event
from schemas.events import SOURCE_JOB, TaskFailed, VideoCompleted
from schemas.task_state import HAPPY_PATH, State

pytestmark = pytest.mark.integration


def task_in(pool: ConnectionPool, task_id: str, state: State, **fields: str) -> None:
    """A task walked along the happy path to ``state`` (``failed`` from rendering)."""
    last = State.RENDERING if state is State.FAILED else state
    with pool.connection() as conn:
        create_task(conn, task_id, "song", {"path": "song"})
        for here, there in itertools.pairwise(HAPPY_PATH[: HAPPY_PATH.index(last) + 1]):
            transition(conn, task_id, here, there, **(fields if there is state else {}))
        if state is State.FAILED:
            transition(conn, task_id, last, state, **fields)


def completed(task_id: str) -> Delivery[ChoreoEvent]:
    """A ``video.completed`` for the task."""
    done = VideoCompleted(
        task_id=task_id,
        video_uri=f"videos/{task_id}.mp4",
        duration_s=12.5,
        width=640,
        height=360,
        fps=24,
        size_bytes=123456,
        completed_at=datetime.now(UTC),
    )
    return Delivery(new_event(done, source=SOURCE_JOB), transport="pubsub")


def failed(task_id: str) -> Delivery[ChoreoEvent]:
    """A ``task.failed`` from the render stage for the task."""
    failure = TaskFailed(
        task_id=task_id,
        stage="render",
        reason="clip moves/x.mp4 is missing",
        error_code="asset-unavailable",
        failed_at=datetime.now(UTC),
    )
    return Delivery(new_event(failure, source=SOURCE_JOB), transport="pubsub")


def test_completion_already_written_by_the_job_changes_nothing(pool: ConnectionPool) -> None:
    """When the job wrote completed itself, the event leaves state and history as they were."""
    task_in(pool, "task-sr-done", State.COMPLETED, video_uri="videos/task-sr-done.mp4")
    with pool.connection() as conn:
        before = task_history(conn, "task-sr-done")
    verdict = EventProcessor(pool, status_recorder()).process(completed("task-sr-done"))
    assert verdict.outcome is Outcome.PROCESSED
    with pool.connection() as conn:
        assert task_history(conn, "task-sr-done") == before
        assert get_task(conn, "task-sr-done").state is State.COMPLETED


def test_completion_the_job_could_not_write_is_recorded(pool: ConnectionPool) -> None:
    """A rendering task becomes completed with the event's video URI, by the status recorder."""
    task_in(pool, "task-sr-render", State.RENDERING)
    EventProcessor(pool, status_recorder()).process(completed("task-sr-render"))
    with pool.connection() as conn:
        task = get_task(conn, "task-sr-render")
        last = task_history(conn, "task-sr-render")[-1]
    assert task.state is State.COMPLETED
    assert task.video_uri == "videos/task-sr-render.mp4" and task.progress == 100
    assert last.detail is not None and last.detail["by"] == "status-recorder"


def test_dispatched_task_completes_through_rendering(pool: ConnectionPool) -> None:
    """A completion for a task still dispatched records rendering then completed, in order."""
    task_in(pool, "task-sr-disp", State.DISPATCHED)
    EventProcessor(pool, status_recorder()).process(completed("task-sr-disp"))
    with pool.connection() as conn:
        steps = [row.to_state.value for row in task_history(conn, "task-sr-disp")]
    assert steps[-3:] == ["dispatched", "rendering", "completed"]


def test_failure_is_recorded_once_and_not_republished(pool: ConnectionPool) -> None:
    """task.failed fails a rendering task with its reason; a redelivery adds no history row."""
    task_in(pool, "task-sr-fail", State.RENDERING)
    processor = EventProcessor(pool, status_recorder())
    delivery = failed("task-sr-fail")
    assert processor.process(delivery).outcome is Outcome.PROCESSED
    assert processor.process(delivery).outcome is Outcome.DUPLICATE
    with pool.connection() as conn:
        task = get_task(conn, "task-sr-fail")
        history = task_history(conn, "task-sr-fail")
        rows = outbox_rows(conn)
    assert task.state is State.FAILED and task.error == "clip moves/x.mp4 is missing"
    assert task.error_stage == "render"
    assert [row.to_state for row in history].count(State.FAILED) == 1
    assert rows == []


def test_completion_for_a_failed_task_leaves_it_failed(pool: ConnectionPool) -> None:
    """A terminal state is never overwritten: video.completed after failed is only logged."""
    task_in(pool, "task-sr-late", State.FAILED, error="timed out")
    verdict = EventProcessor(pool, status_recorder()).process(completed("task-sr-late"))
    assert verdict.ack
    with pool.connection() as conn:
        task = get_task(conn, "task-sr-late")
    assert task.state is State.FAILED and task.video_uri is None
