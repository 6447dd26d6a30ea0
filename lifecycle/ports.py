"""The ports a consumer's handler writes through, and the values they exchange.

A handler never runs SQL itself: it is given a :class:`UnitOfWork` for the one event it handles
and moves the task, stores the blueprint, records the execution and queues events through it.
Every port works inside the transaction the runtime opened for that event (with its
``processed_events`` record), so whatever a handler does for one event commits or rolls back
together, exactly as the SQL did when it was written inline.

The PostgreSQL adapters are in :mod:`lifecycle.unit_of_work`; the in-memory fakes the unit
tests use are in ``tests/fakes.py``. This module imports neither psycopg nor any adapter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple, Protocol

from schemas.event_envelope import ChoreoEvent
from schemas.task_state import State

Launcher = Literal["local", "cloud-run"]
"""Who starts a recorded execution: the local runner or the Cloud Run launcher."""


@dataclass(frozen=True)
class TaskRow:
    """A ``tasks`` row."""

    task_id: str
    state: State
    path: str
    request: dict[str, Any]
    song_id: str | None
    error: str | None
    error_stage: str | None
    execution_name: str | None
    video_uri: str | None
    progress: float
    created_at: datetime
    updated_at: datetime


class LockedTask(NamedTuple):
    """What a handler learns about a task it has locked: its state and its execution, if any."""

    state: State
    execution_name: str | None


def execution_name_for(task_id: str, launcher: Launcher) -> str:
    """The one execution name a task ever gets: the same on every redelivery.

    Local: ``local-<task_id>``. Cloud Run chooses its own execution names, so this is the
    launch id the execution carries in ``JOB_EXECUTION`` (looked up before any relaunch).
    """
    if launcher == "local":
        return f"local-{task_id}"
    digest = hashlib.sha256(task_id.encode()).hexdigest()[:24]
    return f"choreo-{digest}"


class TaskLock(Protocol):
    """A task's row, locked and moved by compare-and-set (the state machine of
    ``schemas/task_state.py``; every move leaves a ``task_history`` row)."""

    def lock(self, task_id: str) -> LockedTask | None:
        """Lock the task until the transaction ends (a concurrent handler of the same task waits
        here, then sees this one's outcome); its state, or None when there is no such task."""
        ...

    def transition(
        self,
        task_id: str,
        expected: State | frozenset[State],
        to: State,
        *,
        detail: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> TaskRow:
        """Move the task from one of ``expected`` to ``to``, setting ``fields``; the new row.

        Raises ``IllegalTransition`` for an edge the state machine forbids, ``InvalidInput``
        for a field it cannot set, ``NotFound`` for no task and ``StaleState`` (nothing written,
        the transaction still usable) when the task is not in ``expected``.
        """
        ...


class BlueprintStore(Protocol):
    """The ``blueprints`` table: one validated blueprint document per task, never replaced."""

    def insert(self, task_id: str, schema_version: str, document: Mapping[str, Any]) -> bool:
        """Store the task's blueprint; False (nothing changed) when it already has one."""
        ...

    def read(self, task_id: str) -> dict[str, Any] | None:
        """The stored document as JSON data, or None when the task has no blueprint."""
        ...


class Outbox(Protocol):
    """The transactional outbox: an event queued here is published once the transaction
    commits, and never if it rolls back."""

    def append(self, event: ChoreoEvent) -> int:
        """Queue ``event``; its row id. Idempotent on the CloudEvent id."""
        ...


class ExecutionLog(Protocol):
    """The ``job_executions`` table: the one video job execution of each task."""

    def record(
        self, task_id: str, execution_name: str, launcher: Launcher, env: Mapping[str, str]
    ) -> bool:
        """Record the execution for a runner to start; False when the task already has one."""
        ...


class UnitOfWork(Protocol):
    """Everything a handler may change for one event, inside one transaction."""

    @property
    def tasks(self) -> TaskLock:
        """The task rows."""
        ...

    @property
    def blueprints(self) -> BlueprintStore:
        """The stored blueprints."""
        ...

    @property
    def outbox(self) -> Outbox:
        """Events to publish after commit."""
        ...

    @property
    def executions(self) -> ExecutionLog:
        """The recorded video job executions."""
        ...
