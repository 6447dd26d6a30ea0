"""The blueprint consumer's :class:`~consumers.blueprint_consumer.handler.PlanningWork` on
PostgreSQL: the lifecycle adapters, the ``songs`` rows and the move library, all on the one
connection of the transaction the runtime opened for the event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from choreography.moves.library_store import get_move
from choreography.planner.candidates import MoveCandidate, candidate_from_move
from consumers.blueprint_consumer.song_store import PostgresSongRows
from lifecycle.unit_of_work import (
    PostgresBlueprintStore,
    PostgresExecutionLog,
    PostgresOutbox,
    PostgresTaskLock,
    PostgresUnitOfWork,
)


@dataclass(frozen=True)
class LibraryMoves:
    """The planning pipeline's ``MoveLoader``: moves read from the library tables."""

    conn: psycopg.Connection[Any]

    def candidate(self, move_id: str, score: float) -> MoveCandidate:
        """The move as a planner candidate with its search score (``NotFound`` if missing)."""
        return candidate_from_move(get_move(self.conn, move_id), score)


@dataclass(frozen=True)
class PostgresPlanningWork:
    """Every port the blueprint consumer's handler uses, on one connection."""

    tasks: PostgresTaskLock
    blueprints: PostgresBlueprintStore
    outbox: PostgresOutbox
    executions: PostgresExecutionLog
    songs: PostgresSongRows
    library: LibraryMoves

    @classmethod
    def on(cls, conn: psycopg.Connection[Any]) -> PostgresPlanningWork:
        """The ports on ``conn``, which holds the runtime's open transaction."""
        base = PostgresUnitOfWork.on(conn)
        return cls(
            base.tasks,
            base.blueprints,
            base.outbox,
            base.executions,
            PostgresSongRows(conn),
            LibraryMoves(conn),
        )
