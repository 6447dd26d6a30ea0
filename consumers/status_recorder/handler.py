"""The status recorder's use case: the task row reflects every ``video-done`` event.

The job (or the consumer that failed the task) normally wrote the terminal state in the same
transaction that queued the event, so the usual outcome is no change beyond the
``processed_events`` row. When the writer could not (it published directly, or its row was lost),
this moves the task by compare-and-set: ``video.completed`` takes a ``rendering`` task (or a
``dispatched`` one, through ``rendering``) to ``completed`` with the video URI; ``task.failed``
takes any unfinished task to ``failed`` with the reason. A terminal task is never changed: a
``video.completed`` for a failed task, or the reverse, is logged and left alone. Nothing is
published: the event being recorded is already the announcement.

It runs in the runtime's transaction and touches only the task lock of the
:class:`~lifecycle.ports.UnitOfWork` it is given: the row is locked first, so a concurrent
delivery of an event for the same task waits and then sees this one's outcome.
"""

from __future__ import annotations

import logging
from typing import Any

from lifecycle.ports import TaskLock, UnitOfWork
from schemas.errors import InvalidInput
from schemas.event_envelope import ChoreoEvent, Delivery
from schemas.events import TaskFailed, VideoCompleted
from schemas.task_state import HAPPY_PATH, STATE_ORDER, TERMINAL, State

log = logging.getLogger(__name__)
CONSUMER = "status-recorder"
UNFINISHED = frozenset(HAPPY_PATH) - TERMINAL


def record_status(work: UnitOfWork, event: ChoreoEvent, delivery: Delivery[ChoreoEvent]) -> None:
    """Make the task's state and history reflect a ``video.completed`` or ``task.failed``."""
    payload = event.data
    if not isinstance(payload, VideoCompleted | TaskFailed):
        raise InvalidInput(
            f"the status recorder handles video.completed and task.failed, not {event.type}"
        )
    context = {"task_id": payload.task_id, "event_id": event.id, "event_type": event.type}
    tasks = work.tasks
    locked = tasks.lock(payload.task_id)
    if locked is None:
        log.warning("no task row for this event: nothing to record", extra=context)
        return
    state = locked.state
    if state in TERMINAL:
        expected = State.COMPLETED if isinstance(payload, VideoCompleted) else State.FAILED
        level = logging.INFO if state is expected else logging.WARNING
        log.log(level, "task already %s: nothing to record", state, extra=context)
        return
    detail = {"by": CONSUMER, "event_id": event.id}
    if isinstance(payload, TaskFailed):
        tasks.transition(
            payload.task_id,
            UNFINISHED,
            State.FAILED,
            error=payload.reason,
            error_stage=payload.stage,
            detail={**detail, "error_code": payload.error_code},
        )
        log.info("task failed, as the event reported", extra=context)
        return
    _complete(tasks, payload, state, detail, context)


def _complete(
    tasks: TaskLock,
    done: VideoCompleted,
    state: State,
    detail: dict[str, Any],
    context: dict[str, str],
) -> None:
    if STATE_ORDER[state] < STATE_ORDER[State.DISPATCHED]:
        # A video for a task that was never dispatched: something else is wrong; keep the row.
        log.warning("video.completed for a task still %s: left unchanged", state, extra=context)
        return
    if state is State.DISPATCHED:
        tasks.transition(done.task_id, State.DISPATCHED, State.RENDERING, detail=detail)
    tasks.transition(
        done.task_id,
        State.RENDERING,
        State.COMPLETED,
        video_uri=done.video_uri,
        progress=100,
        detail={**detail, "video_uri": done.video_uri, **done.completion_detail()},
    )
    log.info("task completed, as the event reported", extra=context)
