"""Settle a local job execution that ended: finished, started again, or its task failed.

The job writes its own terminal state whenever it can (a render error, a bad blueprint). It
cannot when it is killed, crashes before reaching PostgreSQL, or its runner died with it; then
the task would wait in ``dispatched``/``rendering`` forever. :func:`settle_exit` reads the task
under its row lock and, in one transaction:

- task terminal: the run is over (``exited``);
- task unfinished, the run killed, lost or crashed, and fewer than ``JOB_MAX_ATTEMPTS`` starts:
  the execution is queued again (same name: the job resumes its own ``rendering`` task and
  reuses its cached segments);
- otherwise (a timeout, a start that cannot succeed, the attempts spent): the task fails with
  the exit's meaning, and ``task.failed`` goes to the outbox.

It only acts on the execution recorded on the task, so a stray run never touches a task another
execution owns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from psycopg_pool import ConnectionPool

from lifecycle.executions import mark_exited, requeue
from lifecycle.task_failure import fail_task
from lifecycle.task_store import record_recovery
from schemas.events import SOURCE_DISPATCHER
from schemas.job_exit import ExitCode
from schemas.task_state import State

log = logging.getLogger(__name__)
UNFINISHED = frozenset({State.DISPATCHED, State.RENDERING})
# Exit codes after which starting the same execution again cannot help.
FINAL_EXITS = frozenset({ExitCode.INVALID_BLUEPRINT, ExitCode.ASSET_UNAVAILABLE})
RESTART_DELAY_S = 1.0


@dataclass(frozen=True)
class JobExit:
    """How one run of an execution ended: exit code (None: not ours to read, or never started)."""

    task_id: str
    execution_name: str
    returncode: int | None
    timed_out: bool = False
    start_error: str = ""
    last_error: str = ""
    lost: bool = False
    exhausted: bool = False


def exit_meaning(ended: JobExit) -> tuple[str, str]:
    """(error code slug, human explanation) of how the job ended."""
    flagged = (
        (ended.exhausted, "job-attempts-exhausted", "was started its maximum number of times"),
        (bool(ended.start_error), "job-start-failed", f"could not start: {ended.start_error}"),
        (ended.timed_out, "job-timeout", "ran past LOCAL_JOB_TIMEOUT and was stopped"),
        (ended.lost, "job-lost", "was lost with its runner"),
        (
            ended.returncode is None,
            "job-lost",
            "ended while no runner could read its exit status",
        ),
    )
    for flag, slug, meaning in flagged:
        if flag:
            return slug, meaning
    code = int(ended.returncode or 0)
    if code < 0:
        return "job-killed", f"was killed by signal {-code}"
    try:
        slug = ExitCode(code).name.lower().replace("_", "-")
    except ValueError:
        slug = "job-exit"
    return slug, f"exited with code {code} ({slug})"


def _restartable(ended: JobExit) -> bool:
    if ended.timed_out or ended.start_error or ended.exhausted:
        return False
    return ended.returncode not in FINAL_EXITS


def settle_exit(pool: ConnectionPool, ended: JobExit, *, max_attempts: int) -> str:
    """Record how the run ended and what happens next; a short description of that."""
    context = {"task_id": ended.task_id, "execution": ended.execution_name}
    code, meaning = exit_meaning(ended)
    reason = f"video job {ended.execution_name} {meaning}"
    if ended.last_error:
        reason = f"{reason}: {ended.last_error}"
    with pool.connection() as conn, conn.transaction():
        task = conn.execute(
            "SELECT state, execution_name FROM tasks WHERE task_id = %s FOR UPDATE",
            (ended.task_id,),
        ).fetchone()
        attempts_row = conn.execute(
            "SELECT attempts FROM job_executions WHERE execution_name = %s FOR UPDATE",
            (ended.execution_name,),
        ).fetchone()
        attempts = int(attempts_row[0]) if attempts_row else max_attempts
        if task is None or task[1] != ended.execution_name or State(task[0]) not in UNFINISHED:
            mark_exited(conn, ended.execution_name, ended.returncode, ended.last_error)
            return "finished" if ended.returncode == 0 else "over (task already settled)"
        if _restartable(ended) and attempts < max_attempts:
            requeue(conn, ended.execution_name, reason, delay_s=RESTART_DELAY_S)
            record_recovery(
                conn,
                ended.task_id,
                State(task[0]),
                {"recovery": "job restarted", "attempt": attempts + 1, "exit": code},
            )
            log.warning("video job will be started again: %s", reason, extra=context)
            return "started again"
        if attempts >= max_attempts and _restartable(ended):
            reason = f"{reason}; gave up after {attempts} starts (JOB_MAX_ATTEMPTS)"
        mark_exited(conn, ended.execution_name, ended.returncode, ended.last_error or reason)
        fail_task(
            conn,
            ended.task_id,
            UNFINISHED,
            reason=reason,
            stage="render",
            error_code=code,
            source=SOURCE_DISPATCHER,
            detail={"by": "job-runner", "execution": ended.execution_name},
        )
    log.warning("task failed after its job ended: %s", reason, extra=context)
    return "task failed"
