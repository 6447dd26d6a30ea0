"""The PostgreSQL adapters of :mod:`lifecycle.ports`, on the connection of one transaction.

The runtime opens a transaction per event (with its ``processed_events`` record) and hands the
connection to the consumer's composition root, which wraps it in a :class:`PostgresUnitOfWork`
(:func:`on_connection`) before calling the handler. The adapters open no connection and no
transaction of their own: each is a thin call of the SQL function the handler used to call
itself, on the same connection, so what a handler does for one event still commits or rolls
back together, and a refused compare-and-set is still a savepoint that leaves the transaction
usable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg

from lifecycle.blueprints import get_blueprint_document, insert_blueprint
from lifecycle.executions import record_execution
from lifecycle.outbox import add_to_outbox
from lifecycle.ports import Launcher, LockedTask, TaskRow
from lifecycle.task_store import lock_task, transition
from schemas.event_envelope import ChoreoEvent
from schemas.task_state import State

E = TypeVar("E")
D = TypeVar("D")


@dataclass(frozen=True)
class PostgresTaskLock:
    """:class:`lifecycle.ports.TaskLock` on ``tasks`` and ``task_history``."""

    conn: psycopg.Connection[Any]

    def lock(self, task_id: str) -> LockedTask | None:
        """``SELECT ... FOR UPDATE`` of the task's row (see :func:`lock_task`)."""
        return lock_task(self.conn, task_id)

    def transition(
        self,
        task_id: str,
        expected: State | frozenset[State],
        to: State,
        *,
        detail: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> TaskRow:
        """The compare-and-set of :func:`lifecycle.task_store.transition`."""
        return transition(self.conn, task_id, expected, to, detail=detail, **fields)


@dataclass(frozen=True)
class PostgresBlueprintStore:
    """:class:`lifecycle.ports.BlueprintStore` on ``blueprints``."""

    conn: psycopg.Connection[Any]

    def insert(self, task_id: str, schema_version: str, document: Mapping[str, Any]) -> bool:
        """``INSERT ... ON CONFLICT (task_id) DO NOTHING``."""
        return insert_blueprint(self.conn, task_id, schema_version, document)

    def read(self, task_id: str) -> dict[str, Any] | None:
        """The stored document."""
        return get_blueprint_document(self.conn, task_id)


@dataclass(frozen=True)
class PostgresOutbox:
    """:class:`lifecycle.ports.Outbox` on ``outbox`` (published by the relay after commit)."""

    conn: psycopg.Connection[Any]

    def append(self, event: ChoreoEvent) -> int:
        """See :func:`lifecycle.outbox.add_to_outbox`."""
        return add_to_outbox(self.conn, event)


@dataclass(frozen=True)
class PostgresExecutionLog:
    """:class:`lifecycle.ports.ExecutionLog` on ``job_executions``."""

    conn: psycopg.Connection[Any]

    def record(
        self, task_id: str, execution_name: str, launcher: Launcher, env: Mapping[str, str]
    ) -> bool:
        """See :func:`lifecycle.executions.record_execution`."""
        return record_execution(self.conn, task_id, execution_name, launcher, env)


@dataclass(frozen=True)
class PostgresUnitOfWork:
    """:class:`lifecycle.ports.UnitOfWork`: every port on the one connection (and transaction)."""

    tasks: PostgresTaskLock
    blueprints: PostgresBlueprintStore
    outbox: PostgresOutbox
    executions: PostgresExecutionLog

    @classmethod
    def on(cls, conn: psycopg.Connection[Any]) -> PostgresUnitOfWork:
        """The ports on ``conn``, which holds the caller's open transaction."""
        return cls(
            PostgresTaskLock(conn),
            PostgresBlueprintStore(conn),
            PostgresOutbox(conn),
            PostgresExecutionLog(conn),
        )


def on_connection(
    handle: Callable[[PostgresUnitOfWork, E, D], None],
) -> Callable[[psycopg.Connection[Any], E, D], None]:
    """A handler of ``(unit_of_work, event, delivery)`` as the runtime calls it, with the
    connection of the transaction it opened for the event."""

    def run(conn: psycopg.Connection[Any], event: E, delivery: D) -> None:
        handle(PostgresUnitOfWork.on(conn), event, delivery)

    return run
