"""The status recorder's handler on the in-memory ports (``tests/fakes.py``), no database.

The rules ``tests/integration/test_status_recorder.py`` checks on PostgreSQL, and the corners
around them: a terminal state is never overwritten, a redelivery adds nothing, nothing is
published, and a refused compare-and-set leaves the task as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from consumers.status_recorder.handler import CONSUMER, record_status
from lifecycle.ports import LockedTask
from schemas.errors import InvalidInput
from schemas.event_envelope import ChoreoEvent, Delivery, new_event
from schemas.events import (
    SOURCE_BLUEPRINT_CONSUMER,
    SOURCE_JOB,
    BlueprintReady,
    Rendition,
    SyncSummary,
    TaskFailed,
    VideoCompleted,
)
from schemas.task_state import HAPPY_PATH, TERMINAL, StaleState, State
from tests.fakes import FakeDatabase, FakeTaskLock, FakeUnitOfWork, deliver


def completed(task_id: str) -> ChoreoEvent:
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
    return new_event(done, source=SOURCE_JOB)


def failed(task_id: str) -> ChoreoEvent:
    """A ``task.failed`` from the render stage for the task."""
    failure = TaskFailed(
        task_id=task_id,
        stage="render",
        reason="clip moves/x.mp4 is missing",
        error_code="asset-unavailable",
        failed_at=datetime.now(UTC),
    )
    return new_event(failure, source=SOURCE_JOB)


def test_completion_the_job_could_not_write_is_recorded() -> None:
    """A rendering task becomes completed with the event's URI and progress 100."""
    db = FakeDatabase()
    db.add_task("t-render", State.RENDERING)
    assert deliver(db, CONSUMER, record_status, completed("t-render"))
    task = db.task("t-render")
    assert task.state is State.COMPLETED and task.video_uri == "videos/t-render.mp4"
    assert task.progress == 100
    last = db.history[-1]
    assert last.detail is not None and last.detail["by"] == "status-recorder"
    assert last.detail["video_uri"] == "videos/t-render.mp4"
    assert db.locks == ["t-render"] and db.outbox == {}


def test_a_completion_records_the_renditions_it_lists() -> None:
    """The renditions of video.completed land on the completion's history row, where
    ``choreo status`` reads them."""
    db = FakeDatabase()
    db.add_task("t-prac", State.RENDERING)
    event = completed("t-prac")
    listed = [Rendition(kind="slow", uri="videos/t-prac-slow050.mp4", speed=0.5)]
    data = event.data.model_copy(update={"renditions": listed})
    deliver(db, CONSUMER, record_status, event.model_copy(update={"data": data}))
    assert db.history[-1].detail is not None
    assert db.history[-1].detail["renditions"] == [
        {"kind": "slow", "uri": "videos/t-prac-slow050.mp4", "speed": 0.5}
    ]


def test_a_completion_records_its_sync_report_summary() -> None:
    """The sync summary of video.completed lands on the completion's history row too."""
    db = FakeDatabase()
    db.add_task("t-sync", State.RENDERING)
    event = completed("t-sync")
    summary = SyncSummary(
        report_uri="videos/t-sync-sync.json", passed=True, cuts_planned=4, cuts_measured=3,
        cut_error_max_ms=16.7, cut_error_median_ms=0.0, audio_offset_ms=None,
        audio_correlation=None, duration_s=12.5, duration_error_ms=0.3,
    )  # fmt: skip
    data = event.data.model_copy(update={"sync": summary})
    deliver(db, CONSUMER, record_status, event.model_copy(update={"data": data}))
    assert db.history[-1].detail is not None
    assert db.history[-1].detail["sync"] == summary.model_dump(mode="json")
    assert "renditions" not in db.history[-1].detail


def test_dispatched_task_completes_through_rendering() -> None:
    """A completion for a task still dispatched records rendering, then completed."""
    db = FakeDatabase()
    db.add_task("t-disp", State.DISPATCHED)
    deliver(db, CONSUMER, record_status, completed("t-disp"))
    assert db.states("t-disp")[-3:] == [State.DISPATCHED, State.RENDERING, State.COMPLETED]


@pytest.mark.parametrize("state", [s for s in HAPPY_PATH if s not in TERMINAL])
def test_failure_fails_any_unfinished_task_with_the_events_reason(state: State) -> None:
    """task.failed takes any unfinished task to failed, with reason, stage and error code."""
    db = FakeDatabase()
    db.add_task("t-fail", state)
    event = failed("t-fail")
    deliver(db, CONSUMER, record_status, event)
    task = db.task("t-fail")
    assert task.state is State.FAILED and task.error == "clip moves/x.mp4 is missing"
    assert task.error_stage == "render"
    assert db.history[-1].detail == {
        "by": "status-recorder",
        "event_id": event.id,
        "error_code": "asset-unavailable",
    }
    assert db.outbox == {}  # never answered with another task.failed


def test_the_same_failure_delivered_twice_is_recorded_once() -> None:
    """A redelivery of the same event is a duplicate; one failed row in the history."""
    db = FakeDatabase()
    db.add_task("t-twice", State.RENDERING)
    event = failed("t-twice")
    assert deliver(db, CONSUMER, record_status, event) is True
    assert deliver(db, CONSUMER, record_status, event) is False
    assert db.states("t-twice").count(State.FAILED) == 1


def test_a_second_completion_with_a_new_id_changes_nothing() -> None:
    """Another video.completed (new CloudEvent id) for a completed task: acknowledged, no row."""
    db = FakeDatabase()
    db.add_task("t-again", State.RENDERING)
    deliver(db, CONSUMER, record_status, completed("t-again"))
    history = list(db.history)
    assert deliver(db, CONSUMER, record_status, completed("t-again")) is True
    assert db.history == history and db.task("t-again").state is State.COMPLETED


def test_completion_already_written_by_the_job_changes_nothing() -> None:
    """When the job wrote completed itself the event leaves state and history as they were."""
    db = FakeDatabase()
    db.add_task("t-done", State.COMPLETED, video_uri="videos/t-done.mp4")
    history = list(db.history)
    deliver(db, CONSUMER, record_status, completed("t-done"))
    assert db.history == history and db.task("t-done").state is State.COMPLETED


@pytest.mark.parametrize(
    ("terminal", "event"),
    [(State.FAILED, completed), (State.COMPLETED, failed), (State.FAILED, failed)],
)
def test_a_terminal_task_is_never_changed(terminal: State, event: object) -> None:
    """video.completed for a failed task, task.failed for a completed one: logged, left alone."""
    db = FakeDatabase()
    ending = {"video_uri": "videos/v.mp4"} if terminal is State.COMPLETED else {"error": "lost"}
    db.add_task("t-end", terminal, **ending)
    before = db.task("t-end")
    deliver(db, CONSUMER, record_status, event("t-end"))  # type: ignore[operator]
    assert db.task("t-end") == before
    assert db.states("t-end")[-1] is terminal


@pytest.mark.parametrize("early", [State.QUEUED, State.ANALYZING, State.PLANNED])
def test_completion_for_a_task_never_dispatched_is_left_alone(early: State) -> None:
    """A video for a task that was never dispatched: something else is wrong; keep the row."""
    db = FakeDatabase()
    db.add_task("t-early", early)
    before = db.task("t-early")
    assert deliver(db, CONSUMER, record_status, completed("t-early"))
    assert db.task("t-early") == before


def test_event_for_an_unknown_task_records_nothing() -> None:
    """No task row: the event is acknowledged (handled) and nothing is written."""
    db = FakeDatabase()
    assert deliver(db, CONSUMER, record_status, completed("t-nowhere"))
    assert db.tasks == {} and db.history == []


def test_wrong_event_type_is_invalid_input() -> None:
    """The status recorder handles video.completed and task.failed only."""
    db = FakeDatabase()
    db.add_task("t-type", State.PLANNED)
    ready = BlueprintReady(
        task_id="t-type", schema_version="1", audio_uri="songs/a.m4a", duration_s=2, moves_count=2
    )
    with pytest.raises(InvalidInput, match=r"video\.completed and task\.failed"):
        deliver(db, CONSUMER, record_status, new_event(ready, source=SOURCE_BLUEPRINT_CONSUMER))
    assert db.locks == [] and db.processed == set()


@dataclass(frozen=True)
class LaggingTasks(FakeTaskLock):
    """A lock reporting a state the task has since left (a read without ``FOR UPDATE``)."""

    seen: State = State.DISPATCHED

    def lock(self, task_id: str) -> LockedTask | None:
        self.db.locks.append(task_id)
        return LockedTask(self.seen, None)


@dataclass(frozen=True)
class LaggingWork(FakeUnitOfWork):
    """The fake unit of work with :class:`LaggingTasks`."""

    @property
    def tasks(self) -> LaggingTasks:
        return LaggingTasks(self.db)


def test_a_missed_compare_and_set_is_stale_and_rolls_back_every_step() -> None:
    """The task was failed between the read and the CAS: the completion's first step would have
    been dispatched -> rendering; StaleState carries the real state and nothing stays written."""
    db = FakeDatabase()
    db.add_task("t-race", State.DISPATCHED)
    db.force("t-race", state=State.FAILED, error="reaped")
    history = list(db.history)
    event = completed("t-race")
    with pytest.raises(StaleState) as stale, db.transaction():
        record_status(LaggingWork(db), event, Delivery(event, transport="pubsub"))
    assert stale.value.actual is State.FAILED
    assert stale.value.expected == frozenset({State.DISPATCHED})
    assert db.history == history and db.task("t-race").state is State.FAILED


def test_a_refused_completion_rolls_back_the_rendering_step() -> None:
    """If the second step fails after dispatched -> rendering, the first step is undone too."""
    db = FakeDatabase()
    db.add_task("t-half", State.DISPATCHED)

    @dataclass(frozen=True)
    class RefusingComplete(FakeTaskLock):
        def transition(self, task_id: str, expected, to, **kwargs):  # type: ignore[no-untyped-def]
            if to is State.COMPLETED:
                raise StaleState(task_id, frozenset({State.RENDERING}), State.FAILED)
            return super().transition(task_id, expected, to, **kwargs)

    @dataclass(frozen=True)
    class Work(FakeUnitOfWork):
        @property
        def tasks(self) -> RefusingComplete:
            return RefusingComplete(self.db)

    event = completed("t-half")
    with pytest.raises(StaleState), db.transaction():
        record_status(Work(db), event, Delivery(event, transport="pubsub"))
    assert db.task("t-half").state is State.DISPATCHED
    assert db.states("t-half")[-1] is State.DISPATCHED
