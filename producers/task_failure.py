"""Fail a task and announce it: CAS to ``failed``, a history row and ``task.failed``, together.

For the places that fail a task outside a consumer's event handling (the runtime has its own
``record_task_failure``, tied to the event it was handling): the dispatcher after a local job
ended without recording its outcome, and the reaper for tasks whose worker was lost. It runs in
the caller's transaction, so the state change, its history row and the outbox row commit
together or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import psycopg

from producers.outbox import add_to_outbox
from producers.task_store import TaskRow, transition
from schemas.event_envelope import new_event
from schemas.events import TaskFailed
from schemas.task_state import State

# The values of TaskFailed.stage (v1 schema), also written to tasks.error_stage.
FailureStage = Literal["request", "analysis", "planning", "dispatch", "render"]
MAX_REASON_CHARS = 2000


def fail_task(
    conn: psycopg.Connection,
    task_id: str,
    expected: State | frozenset[State],
    *,
    reason: str,
    stage: FailureStage,
    error_code: str,
    source: str,
    detail: Mapping[str, Any],
) -> TaskRow:
    """CAS the task from ``expected`` to failed and queue its ``task.failed``; the new row.

    Raises ``StaleState`` (nothing written) when the task is no longer in ``expected``.
    ``detail`` goes to the history row, with ``error_code`` added.
    """
    reason = reason[:MAX_REASON_CHARS]
    failed = transition(
        conn,
        task_id,
        expected,
        State.FAILED,
        error=reason,
        error_stage=stage,
        detail={**detail, "error_code": error_code},
    )
    failure = TaskFailed(
        task_id=task_id,
        stage=stage,
        reason=reason,
        error_code=error_code,
        failed_at=datetime.now(UTC),
    )
    add_to_outbox(conn, new_event(failure, source=source))
    return failed
