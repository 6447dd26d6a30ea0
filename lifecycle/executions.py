"""The video job's executions as durable rows (``job_executions``): one per task.

The dispatcher records the execution (its deterministic name and its environment) in the same
transaction as ``planned -> dispatched``, before anything starts, and only then acks. Whoever
starts it afterwards (the local runner, or the Cloud Run launcher) claims the row with
``FOR UPDATE SKIP LOCKED`` and a lease, so a crash anywhere loses nothing: the row is still
there, and a lapsed lease lets the next runner take it over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from lifecycle.ports import Launcher

MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class ExecutionRow:
    """A ``job_executions`` row, as a runner claimed it (``was``: its state before the claim)."""

    task_id: str
    execution_name: str
    launcher: str
    env: dict[str, str]
    state: str
    attempts: int
    was: str = ""
    host: str | None = None
    pid: int | None = None
    pid_started: int | None = None
    log_path: str | None = None
    remote_name: str | None = None
    created_at: Any = None


def record_execution(
    conn: psycopg.Connection[Any],
    task_id: str,
    execution_name: str,
    launcher: Launcher,
    env: Mapping[str, str],
) -> bool:
    """Insert the execution in the caller's transaction; False when the task already has one."""
    row = conn.execute(
        "INSERT INTO job_executions (task_id, execution_name, launcher, env) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (task_id) DO NOTHING RETURNING task_id",
        (task_id, execution_name, launcher, Jsonb(dict(env))),
    ).fetchone()
    return row is not None


_CLAIM_LOCAL = """
    WITH picked AS (
        SELECT task_id, state AS was, host AS was_host, pid AS was_pid,
               pid_started AS was_pid_started
        FROM job_executions
        WHERE launcher = 'local'
          AND ((state = 'queued' AND (lease_until IS NULL OR lease_until <= now()))
               OR (state = 'running' AND lease_until < now()))
        ORDER BY created_at
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    )
    UPDATE job_executions AS j
    SET state = 'running', runner = %(runner)s,
        lease_until = now() + %(lease_s)s * interval '1 second'
    FROM picked
    WHERE j.task_id = picked.task_id
    RETURNING j.task_id, j.execution_name, j.launcher, j.env, j.state, j.attempts, picked.was,
              picked.was_host AS host, picked.was_pid AS pid,
              picked.was_pid_started AS pid_started, j.log_path, j.remote_name, j.created_at
"""


def claim_local(conn: psycopg.Connection[Any], runner: str, lease_s: float) -> ExecutionRow | None:
    """Claim the oldest queued local execution, or a running one whose runner's lease lapsed."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_CLAIM_LOCAL, {"runner": runner, "lease_s": lease_s}).fetchone()
    return None if row is None else ExecutionRow(**row)


_CLAIM_LAUNCH = """
    WITH picked AS (
        SELECT task_id FROM job_executions
        WHERE launcher = 'cloud-run' AND state = 'queued'
          AND (lease_until IS NULL OR lease_until < now())
        ORDER BY created_at
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    )
    UPDATE job_executions AS j
    SET runner = %(runner)s, lease_until = now() + %(lease_s)s * interval '1 second',
        attempts = j.attempts + 1
    FROM picked
    WHERE j.task_id = picked.task_id
    RETURNING j.task_id, j.execution_name, j.launcher, j.env, j.state, j.attempts,
              j.state AS was, j.log_path, j.remote_name, j.created_at
"""


def claim_launch(conn: psycopg.Connection[Any], runner: str, lease_s: float) -> ExecutionRow | None:
    """Claim the oldest Cloud Run execution not launched yet (its lease lapsed or never taken)."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_CLAIM_LAUNCH, {"runner": runner, "lease_s": lease_s}).fetchone()
    return None if row is None else ExecutionRow(**row)


def mark_started(
    conn: psycopg.Connection[Any],
    execution_name: str,
    *,
    runner: str,
    host: str,
    pid: int,
    pid_started: int | None,
    log_path: str,
    lease_s: float,
) -> None:
    """Record the process that now runs the execution (one more attempt)."""
    conn.execute(
        "UPDATE job_executions SET state = 'running', runner = %s, host = %s, pid = %s, "
        "pid_started = %s, log_path = %s, attempts = attempts + 1, exit_code = NULL, "
        "lease_until = now() + %s * interval '1 second' WHERE execution_name = %s",
        (runner, host, pid, pid_started, log_path, lease_s, execution_name),
    )


def renew_leases(
    conn: psycopg.Connection[Any], runner: str, names: Sequence[str], lease_s: float
) -> int:
    """Extend the lease of the executions this runner watches; how many it still holds."""
    if not names:
        return 0
    cur = conn.execute(
        "UPDATE job_executions SET lease_until = now() + %s * interval '1 second' "
        "WHERE runner = %s AND state = 'running' AND execution_name = ANY(%s)",
        (lease_s, runner, list(names)),
    )
    return cur.rowcount


def release_leases(conn: psycopg.Connection[Any], runner: str) -> None:
    """Let another runner adopt this runner's executions at once (a clean stop)."""
    conn.execute(
        "UPDATE job_executions SET lease_until = now() WHERE runner = %s AND state = 'running'",
        (runner,),
    )


def mark_exited(
    conn: psycopg.Connection[Any],
    execution_name: str,
    exit_code: int | None,
    error: str = "",
) -> None:
    """The execution is over (its process ended, or its launch is settled)."""
    conn.execute(
        "UPDATE job_executions SET state = 'exited', exit_code = %s, lease_until = NULL, "
        "last_error = NULLIF(%s, '') WHERE execution_name = %s",
        (exit_code, error[:MAX_ERROR_CHARS], execution_name),
    )


def requeue(
    conn: psycopg.Connection[Any], execution_name: str, error: str, *, delay_s: float = 0.0
) -> None:
    """Put the execution back to be started again (after ``delay_s``), saying why."""
    conn.execute(
        "UPDATE job_executions SET state = 'queued', pid = NULL, pid_started = NULL, "
        "runner = NULL, lease_until = now() + %s * interval '1 second', last_error = %s "
        "WHERE execution_name = %s",
        (delay_s, error[:MAX_ERROR_CHARS], execution_name),
    )


def mark_launched(conn: psycopg.Connection[Any], execution_name: str, remote_name: str) -> None:
    """Cloud Run: the execution exists, under ``remote_name``."""
    conn.execute(
        "UPDATE job_executions SET state = 'launched', remote_name = %s, lease_until = NULL, "
        "last_error = NULL WHERE execution_name = %s",
        (remote_name, execution_name),
    )


def get_execution(conn: psycopg.Connection[Any], task_id: str) -> ExecutionRow | None:
    """The task's execution, if it has one."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT task_id, execution_name, launcher, env, state, attempts, host, pid, "
            "pid_started, log_path, remote_name, created_at FROM job_executions "
            "WHERE task_id = %s",
            (task_id,),
        ).fetchone()
    return None if row is None else ExecutionRow(**row)
