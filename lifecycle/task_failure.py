"""Fail a task and announce it: CAS to ``failed``, a history row and ``task.failed``, together.

The one place a task failure is recorded, whoever records it: a consumer giving up on an event
(:mod:`consumers.runtime.handler`), the video job, the local job runner after a job it ran ended
without a result, and the recoverer for tasks that stopped moving. It runs in the caller's
transaction, so the state change, its history row and the outbox row commit together or not at
all.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, get_args

import psycopg

from lifecycle.outbox import add_to_outbox
from lifecycle.ports import TaskRow
from lifecycle.task_store import transition
from schemas.event_envelope import ChoreoEvent, new_event
from schemas.events import TaskFailed
from schemas.task_state import HAPPY_PATH, TERMINAL, State
from schemas.text import visible

# The values of TaskFailed.stage (v1 schema), also written to tasks.error_stage.
FailureStage = Literal["request", "analysis", "planning", "dispatch", "render"]
FAILURE_STAGES: frozenset[str] = frozenset(get_args(FailureStage))
MAX_REASON_CHARS = 2000
MAX_ERROR_CODE_CHARS = 64
# Every state a task can be failed from.
FAILABLE: frozenset[State] = frozenset(HAPPY_PATH) - TERMINAL


def failure_reason(reason: str, fallback: str = "unknown error") -> str:
    """The reason as stored: stripped, control characters escaped, at most ``MAX_REASON_CHARS``."""
    return visible(reason.strip() or fallback)[:MAX_REASON_CHARS]


def failure_event(
    task_id: str,
    *,
    reason: str,
    stage: FailureStage,
    error_code: str,
    source: str,
    traceparent: str | None = None,
) -> ChoreoEvent:
    """The ``task.failed`` event announcing a failure."""
    failure = TaskFailed(
        task_id=task_id,
        stage=stage,
        reason=failure_reason(reason),
        error_code=error_code[:MAX_ERROR_CODE_CHARS],
        failed_at=datetime.now(UTC),
    )
    return new_event(failure, source=source, traceparent=traceparent)


def fail_task(
    conn: psycopg.Connection[Any],
    task_id: str,
    expected: State | frozenset[State] = FAILABLE,
    *,
    reason: str,
    stage: FailureStage,
    error_code: str,
    source: str,
    detail: Mapping[str, Any],
    traceparent: str | None = None,
    announce: bool = True,
) -> tuple[TaskRow, ChoreoEvent | None]:
    """CAS the task from ``expected`` to failed and queue its ``task.failed``; the row and event.

    Raises ``StaleState`` (nothing written) when the task is no longer in ``expected`` and
    ``NotFound`` when there is no such task. ``detail`` goes to the history row, with
    ``error_code`` added. ``announce=False`` records the failure without an event (a
    ``task.failed`` is never answered with another one).
    """
    reason = failure_reason(reason)
    failed = transition(
        conn,
        task_id,
        expected,
        State.FAILED,
        error=reason,
        error_stage=stage,
        detail={**detail, "error_code": error_code},
    )
    if not announce:
        return failed, None
    event = failure_event(
        task_id,
        reason=reason,
        stage=stage,
        error_code=error_code,
        source=source,
        traceparent=traceparent,
    )
    add_to_outbox(conn, event)
    return failed, event
