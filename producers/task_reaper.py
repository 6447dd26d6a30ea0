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

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from lifecycle.task_failure import FailureStage, fail_task
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
    SELECT tasks.task_id, tasks.state, tasks.updated_at, tasks.execution_name,
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
    ) -> None:
        if set(deadlines_s) & TERMINAL:
            raise ValueError("terminal tasks are never reaped")
        self._pool = pool
        self._deadlines = dict(deadlines_s)
        self._interval_s = interval_s
        self._batch_size = batch_size

    @classmethod
    def from_settings(cls, pool: ConnectionPool, settings: ReaperSettings) -> TaskReaper:
        """A reaper with the deadlines and interval of ``settings``."""
        return cls(pool, deadlines(settings), interval_s=settings.interval_s)

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
        with self._pool.connection() as conn, conn.transaction():
            for stale in self._select(conn, lock=True, limit=self._batch_size):
                # The row is locked and still in stale.state, so this compare-and-set holds.
                fail_task(
                    conn,
                    stale.task_id,
                    stale.state,
                    reason=stale.reason,
                    stage=stale.stage,
                    error_code=ERROR_CODE,
                    source=SOURCE_REAPER,
                    detail={
                        "by": "reaper",
                        "idle_s": round(stale.idle_s, 1),
                        "deadline_s": stale.deadline_s,
                        "execution": stale.execution_name,
                    },
                )
                reaped.append(stale)
        for stale in reaped:
            log.warning(
                "reaped task: %s",
                stale.reason,
                extra={"task_id": stale.task_id, "state": str(stale.state), "stage": stale.stage},
            )
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
            )
            for task_id, state, updated_at, execution_name, idle_s, seconds in rows
        ]
