"""Tasks in PostgreSQL: create them, move them by compare-and-set, read them and their history.

Every function takes a connection rather than a pool, so a caller can compose it with its own
writes (the blueprint row, an outbox event, a dedupe record) in one transaction. Each function
wraps its statements in ``conn.transaction()``: on a connection outside a transaction that
commits on success; inside the caller's transaction it is a savepoint, so a refused transition
leaves the caller's transaction usable and commits only with it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from lifecycle.ports import LockedTask, TaskRow
from schemas.errors import InvalidInput, NotFound
from schemas.task_state import StaleState, State, check_transition

PATHS = frozenset({"song", "describe", "revise"})
# The columns a transition may set besides the state; anything else is refused by name.
TRANSITION_FIELDS = frozenset(
    {"song_id", "error", "error_stage", "execution_name", "video_uri", "progress"}
)
_COLUMNS = sql.SQL(", ").join(
    sql.Identifier(column)
    for column in (
        "task_id",
        "state",
        "path",
        "request",
        "song_id",
        "error",
        "error_stage",
        "execution_name",
        "video_uri",
        "progress",
        "created_at",
        "updated_at",
    )
)


@dataclass(frozen=True)
class HistoryRow:
    """A ``task_history`` row; ``from_state`` is None for the row written at creation."""

    id: int
    task_id: str
    from_state: State | None
    to_state: State
    at: datetime
    detail: dict[str, Any] | None


class CreatedTask(NamedTuple):
    """The task row, and whether this call created it (False: an identical earlier request)."""

    task: TaskRow
    created: bool


def create_task(
    conn: psycopg.Connection, task_id: str, path: str, request: Mapping[str, Any]
) -> CreatedTask:
    """Insert a queued task and its first history row; idempotent for an identical request."""
    check_task_id(task_id)
    if path not in PATHS:
        raise InvalidInput(f"path must be one of {sorted(PATHS)}, got {path!r}")
    if not isinstance(request, Mapping):
        raise InvalidInput(f"request must be a JSON object, got {type(request).__name__}")
    document = _jsonb(dict(request), "request")
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        # ON CONFLICT waits for a concurrent insert of the same id to commit, then yields no
        # row, so two racing identical requests both end up reading the one stored task.
        cur.execute(
            sql.SQL(
                "INSERT INTO tasks (task_id, path, request) VALUES (%s, %s, %s) "
                "ON CONFLICT (task_id) DO NOTHING RETURNING {}"
            ).format(_COLUMNS),
            (task_id, path, document),
        )
        inserted = cur.fetchone()
        if inserted is not None:
            cur.execute(
                "INSERT INTO task_history (task_id, from_state, to_state) VALUES (%s, NULL, %s)",
                (task_id, State.QUEUED.value),
            )
            return CreatedTask(_task(inserted), created=True)
        existing = get_task(conn, task_id)
    if existing.path != path or existing.request != dict(request):
        raise InvalidInput(
            f"task_id {task_id!r} already exists with a different request; "
            "a retried request must repeat the original exactly, a new one needs a new task_id"
        )
    return CreatedTask(existing, created=False)


def transition(
    conn: psycopg.Connection,
    task_id: str,
    expected: State | set[State] | frozenset[State],
    to: State,
    *,
    detail: Mapping[str, Any] | None = None,
    **fields: Any,
) -> TaskRow:
    """Move a task from one of ``expected`` to ``to`` by compare-and-set, logging the edge."""
    sources = check_transition({expected} if isinstance(expected, State) else expected, to)
    check_task_id(task_id)
    check_transition_fields(to, fields)
    assignments = [sql.SQL("state = %(to)s")] + [
        sql.SQL("{} = %({})s").format(sql.Identifier(name), sql.SQL(name)) for name in fields
    ]
    # The locked read of the previous state feeds the history row (with several expected
    # states the caller cannot know which one it was); the UPDATE's own WHERE is the CAS.
    query = sql.SQL(
        """
        WITH previous AS (
            SELECT task_id, state FROM tasks WHERE task_id = %(task_id)s FOR UPDATE
        ), changed AS (
            UPDATE tasks SET {assignments} FROM previous
            WHERE tasks.task_id = previous.task_id AND tasks.state = ANY(%(expected)s)
            RETURNING previous.state AS from_state, tasks.*
        ), logged AS (
            INSERT INTO task_history (task_id, from_state, to_state, detail)
            SELECT task_id, from_state, state, %(detail)s::jsonb FROM changed
        )
        SELECT * FROM changed
        """
    ).format(assignments=sql.SQL(", ").join(assignments))
    params = {
        **fields,
        "task_id": task_id,
        "to": to.value,
        "expected": sorted(state.value for state in sources),
        "detail": None if detail is None else _jsonb(dict(detail), "detail"),
    }
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        try:
            cur.execute(query, params)
        except psycopg.errors.CheckViolation as error:
            constraint = error.diag.constraint_name or "a check constraint"
            raise InvalidInput(
                f"transition of task {task_id!r} to {to} violates {constraint}: "
                f"{error.diag.message_primary}"
            ) from error
        row = cur.fetchone()
        if row is None:
            raise StaleState(task_id, sources, get_task(conn, task_id).state)
    return _task(row)


def record_recovery(
    conn: psycopg.Connection, task_id: str, state: State, detail: Mapping[str, Any]
) -> None:
    """A history row from ``state`` to itself: the task was driven on without changing state
    (its event republished, its job started again); ``choreo status`` shows it as a recovery."""
    conn.execute(
        "INSERT INTO task_history (task_id, from_state, to_state, detail) VALUES (%s, %s, %s, %s)",
        (task_id, state.value, state.value, _jsonb(dict(detail), "detail")),
    )


def lock_task(conn: psycopg.Connection, task_id: str) -> LockedTask | None:
    """Lock the task's row until the caller's transaction ends (``SELECT ... FOR UPDATE``): a
    concurrent locker waits, then reads what this transaction committed. None for no task."""
    row = conn.execute(
        "SELECT state, execution_name FROM tasks WHERE task_id = %s FOR UPDATE", (task_id,)
    ).fetchone()
    return None if row is None else LockedTask(State(row[0]), row[1])


def get_task(conn: psycopg.Connection, task_id: str) -> TaskRow:
    """Return the task, or raise ``NotFound``."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql.SQL("SELECT {} FROM tasks WHERE task_id = %s").format(_COLUMNS), (task_id,))
        row = cur.fetchone()
    if row is None:
        raise NotFound(f"no task with task_id {task_id!r}")
    return _task(row)


def task_history(conn: psycopg.Connection, task_id: str) -> list[HistoryRow]:
    """Return the task's state changes, oldest first (empty for an unknown task)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT id, task_id, from_state, to_state, at, detail FROM task_history "
            "WHERE task_id = %s ORDER BY id",
            (task_id,),
        )
        rows = cur.fetchall()
    return [
        HistoryRow(
            id=row["id"],
            task_id=row["task_id"],
            from_state=None if row["from_state"] is None else State(row["from_state"]),
            to_state=State(row["to_state"]),
            at=row["at"],
            detail=row["detail"],
        )
        for row in rows
    ]


def check_task_id(task_id: str) -> None:
    """Refuse an empty or non-string task id with ``InvalidInput``."""
    if not isinstance(task_id, str) or not task_id.strip():
        raise InvalidInput(f"task_id must be a non-empty string, got {task_id!r}")


def check_transition_fields(to: State, fields: Mapping[str, Any]) -> None:
    """Refuse, with ``InvalidInput``, a field a transition to ``to`` may not set, or its value."""
    unknown = sorted(set(fields) - TRANSITION_FIELDS)
    if unknown:
        raise InvalidInput(
            f"transition cannot set {', '.join(unknown)}; settable: {sorted(TRANSITION_FIELDS)}"
        )
    for name, value in fields.items():
        if name == "progress":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInput(f"progress must be a number, got {value!r}")
            if not math.isfinite(value) or not 0 <= value <= 100:
                raise InvalidInput(f"progress must be between 0 and 100, got {value!r}")
        elif value is not None and not isinstance(value, str):
            raise InvalidInput(f"{name} must be a string or None, got {type(value).__name__}")
    if to is State.FAILED and not fields.get("error"):
        raise InvalidInput("a transition to failed must say why: pass error=...")


def _jsonb(document: dict[str, Any], what: str) -> Jsonb:
    # Serialise up front so a bad value is reported by name; PostgreSQL rejects NaN as well.
    try:
        json.dumps(document, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"{what} is not a JSON document: {error}") from None
    return Jsonb(document)


def _task(row: Mapping[str, Any]) -> TaskRow:
    return TaskRow(
        task_id=row["task_id"],
        state=State(row["state"]),
        path=row["path"],
        request=row["request"],
        song_id=row["song_id"],
        error=row["error"],
        error_stage=row["error_stage"],
        execution_name=row["execution_name"],
        video_uri=row["video_uri"],
        progress=row["progress"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
