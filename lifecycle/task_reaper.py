"""The reaper: fail tasks that stopped moving in a non-terminal state, whose worker was lost.

Every worker writes its own terminal state when it can, and the local runner fails the tasks of
jobs it saw end. Nobody is left to do it when a video job is SIGKILLed (out of memory, a node
lost), a dispatcher dies with jobs in its queue, or an event is dead-lettered: the task would
wait in ``dispatched``/``rendering`` (or ``queued``/``planned``) forever. A task is stale when
its ``updated_at`` (set by a trigger on every write, including the job's progress writes) is
older than its state's deadline; a rendering task's deadline therefore means "no progress".

Each pass locks a batch of stale rows with ``FOR UPDATE SKIP LOCKED`` and fails each one by
compare-and-set from the state it was read in, with a history row and one ``task.failed`` in
the outbox (:func:`lifecycle.task_failure.fail_task`), all in one transaction: two reapers never
fail a task twice, and a task that moved on meanwhile is skipped. Deadlines are compared with
the database's clock, so the reapers' clocks do not matter.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from lifecycle.executions import get_execution, requeue
from lifecycle.task_failure import FailureStage, fail_task
from lifecycle.task_store import record_recovery
from schemas.settings import ReaperSettings
from schemas.task_state import TERMINAL, State

log = logging.getLogger(__name__)

SOURCE_REAPER = "//choreo/reaper"
ERROR_CODE = "no-progress"
BATCH_SIZE = 100

# The stage a task lost in each state failed at (TaskFailed.stage), and who was lost.
STAGE_OF: dict[State, FailureStage] = {
    State.QUEUED: "analysis",
    State.ANALYZING: "analysis",
    State.PLANNED: "dispatch",
    State.DISPATCHED: "render",
    State.RENDERING: "render",
}
LOST: dict[State, str] = {
    State.QUEUED: "no blueprint consumer finished its request (dead-lettered or lost)",
    State.ANALYZING: "the blueprint consumer was lost",
    State.PLANNED: "no dispatcher started its job (blueprint.ready dead-lettered or lost)",
    State.DISPATCHED: "the video job never claimed it (the execution did not start or was lost)",
    State.RENDERING: "the worker was lost (the video job was killed or its machine went away)",
}

# One row per stale task: the deadline of its state comes in as parallel arrays.
_STALE = """
    SELECT tasks.task_id, tasks.state, tasks.updated_at, tasks.execution_name, tasks.recoveries,
           extract(epoch FROM now() - tasks.updated_at)::float8 AS idle_s, deadline.seconds
    FROM tasks
    JOIN unnest(%(states)s::text[], %(seconds)s::float8[]) AS deadline (state, seconds)
        ON tasks.state = deadline.state
    WHERE tasks.updated_at < now() - deadline.seconds * interval '1 second'
    ORDER BY tasks.updated_at
    LIMIT %(limit)s
"""


@dataclass(frozen=True)
class StaleTask:
    """A task the reaper failed (or, in a dry run, would fail), and why."""

    task_id: str
    state: State
    updated_at: datetime
    idle_s: float
    deadline_s: float
    execution_name: str | None
    recoveries: int = 0

    @property
    def stage(self) -> FailureStage:
        """The ``TaskFailed.stage`` its failure is reported at."""
        return STAGE_OF[self.state]

    @property
    def reason(self) -> str:
        """The failure message written to the task and its ``task.failed``."""
        return (
            f"no progress for {self.idle_s:.0f} s in state {self.state} "
            f"(deadline {self.deadline_s:.0f} s); {LOST[self.state]}"
        )


def deadlines(settings: ReaperSettings) -> dict[State, float]:
    """Seconds without an update after which a task in each state is stale (0: never)."""
    configured = {
        State.QUEUED: settings.queued_timeout_s,
        State.ANALYZING: settings.stage_timeout_s,
        State.PLANNED: settings.stage_timeout_s,
        State.DISPATCHED: settings.stage_timeout_s,
        State.RENDERING: settings.rendering_timeout_s,
    }
    return {state: seconds for state, seconds in configured.items() if seconds > 0}


class TaskReaper:
    """Finds stale tasks and fails them, once each however many reapers run."""

    def __init__(
        self,
        pool: ConnectionPool,
        deadlines_s: Mapping[State, float],
        *,
        interval_s: float = 60.0,
        batch_size: int = BATCH_SIZE,
        max_recoveries: int = 3,
    ) -> None:
        if set(deadlines_s) & TERMINAL:
            raise ValueError("terminal tasks are never reaped")
        self._pool = pool
        self._deadlines = dict(deadlines_s)
        self._interval_s = interval_s
        self._batch_size = batch_size
        self._max_recoveries = max_recoveries
        self.recovered_total = 0

    @classmethod
    def from_settings(cls, pool: ConnectionPool, settings: ReaperSettings) -> TaskReaper:
        """A reaper with the deadlines and interval of ``settings``."""
        return cls(
            pool,
            deadlines(settings),
            interval_s=settings.interval_s,
            max_recoveries=settings.max_recoveries,
        )

    def find_stale(self) -> list[StaleTask]:
        """The stale tasks, oldest first, without changing or locking anything (a dry run)."""
        if not self._deadlines:
            return []
        with self._pool.connection() as conn:
            return self._select(conn, lock=False, limit=None)

    def reap(self) -> list[StaleTask]:
        """Fail every stale task, a batch per transaction; the tasks this call failed."""
        reaped: list[StaleTask] = []
        while self._deadlines:
            batch = self._reap_batch()
            reaped.extend(batch)
            if len(batch) < self._batch_size:
                break
        return reaped

    def run_forever(self, stop: threading.Event) -> None:
        """Reap every ``interval_s`` until ``stop`` is set (first pass after one interval)."""
        while not stop.wait(self._interval_s):
            try:
                self.reap()
            except (psycopg.OperationalError, PoolTimeout):
                log.exception("task reaper cannot reach PostgreSQL; retrying")
            except Exception:
                # The loop must outlive one bad pass (it rolled back); the traceback is logged.
                log.exception("task reaper pass failed; retrying next interval")

    def _reap_batch(self) -> list[StaleTask]:
        reaped: list[StaleTask] = []
        recovered: list[tuple[StaleTask, str]] = []
        with self._pool.connection() as conn, conn.transaction():
            for stale in self._select(conn, lock=True, limit=self._batch_size):
                if stale.recoveries < self._max_recoveries:
                    action = recover(conn, stale)
                    if action is None:
                        continue  # in a runner's hands: waiting is not being lost
                    if action:
                        recovered.append((stale, action))
                        continue
                # The row is locked and still in stale.state, so this compare-and-set holds.
                fail_task(
                    conn,
                    stale.task_id,
                    stale.state,
                    reason=stale.reason
                    + (f"; {stale.recoveries} recoveries did not help" if stale.recoveries else ""),
                    stage=stale.stage,
                    error_code=ERROR_CODE,
                    source=SOURCE_REAPER,
                    detail={
                        "by": "reaper",
                        "idle_s": round(stale.idle_s, 1),
                        "deadline_s": stale.deadline_s,
                        "execution": stale.execution_name,
                        "recoveries": stale.recoveries,
                    },
                )
                reaped.append(stale)
        for stale, action in recovered:
            log.warning(
                "recovered stuck task: %s",
                action,
                extra={"task_id": stale.task_id, "state": str(stale.state),
                       "recovery": stale.recoveries + 1, "idle_s": round(stale.idle_s, 1)},
            )  # fmt: skip
        for stale in reaped:
            log.warning(
                "reaped task: %s",
                stale.reason,
                extra={"task_id": stale.task_id, "state": str(stale.state), "stage": stale.stage},
            )
        self.recovered_total += len(recovered)
        return reaped

    def _select(
        self, conn: psycopg.Connection, *, lock: bool, limit: int | None
    ) -> list[StaleTask]:
        query = _STALE + (" FOR UPDATE OF tasks SKIP LOCKED" if lock else "")
        states = sorted(self._deadlines)
        rows = conn.execute(
            query,
            {
                "states": [state.value for state in states],
                "seconds": [self._deadlines[state] for state in states],
                "limit": limit,
            },
        ).fetchall()
        return [
            StaleTask(
                task_id=task_id,
                state=State(state),
                updated_at=updated_at,
                idle_s=idle_s,
                deadline_s=seconds,
                execution_name=execution_name,
                recoveries=recoveries,
            )
            for task_id, state, updated_at, execution_name, recoveries, idle_s, seconds in rows
        ]


# The event that moves a task out of each state, found in the outbox by its topic.
_REPUBLISH_TOPIC: dict[State, str] = {
    State.QUEUED: "choreography-requests",
    State.ANALYZING: "choreography-requests",
    State.PLANNED: "blueprint-ready",
}
_REPUBLISH = """
    UPDATE outbox SET published_at = NULL, next_attempt_at = now(), last_error = NULL
    WHERE id = (
        SELECT id FROM outbox WHERE ordering_key = %s AND topic = %s ORDER BY id DESC LIMIT 1
    )
    RETURNING event_id
"""


def recover(conn: psycopg.Connection[Any], stale: StaleTask) -> str | None:
    """Drive a stuck task on, in the caller's transaction; what was done.

    - ``queued``/``analyzing``: republish its ``choreography.requested`` (same CloudEvent id, so
      a consumer that did handle it acks the copy as a duplicate);
    - ``planned``: republish its ``blueprint.ready``;
    - ``dispatched``/``rendering``: start its execution again when nobody holds it (it exited,
      or was never recorded). An execution queued for, or held by, a runner is left alone and
      ``None`` is returned: it is waiting, not lost (``LOCAL_JOB_TIMEOUT`` bounds a hung job).

    Returns ``""`` when there is nothing that could drive the task on (it is then failed).
    Every recovery bumps ``tasks.recoveries`` (bounded by ``RECOVERY_MAX_ATTEMPTS``), writes a
    history row and restarts the stage's clock.
    """
    action = ""
    if stale.state in _REPUBLISH_TOPIC:
        topic = _REPUBLISH_TOPIC[stale.state]
        row = conn.execute(_REPUBLISH, (stale.task_id, topic)).fetchone()
        if row is not None:
            action = f"republished its {topic} event {row[0]}"
    else:
        execution = get_execution(conn, stale.task_id)
        if execution is None:
            return ""
        if execution.state in ("queued", "running") or execution.launcher != "local":
            return None if execution.launcher == "local" else ""
        requeue(conn, execution.execution_name, f"restarted by the recoverer: {stale.reason}")
        action = f"started its video job {execution.execution_name} again"
    if not action:
        return ""
    conn.execute(
        "UPDATE tasks SET recoveries = recoveries + 1 WHERE task_id = %s", (stale.task_id,)
    )
    record_recovery(
        conn,
        stale.task_id,
        stale.state,
        {
            "by": "recoverer",
            "recovery": stale.recoveries + 1,
            "action": action,
            "idle_s": round(stale.idle_s, 1),
            "deadline_s": stale.deadline_s,
        },
    )
    return action
