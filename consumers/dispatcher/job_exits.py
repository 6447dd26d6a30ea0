"""After a local job ends: make sure its task ends ``failed`` when the job could not record it.

The job writes its own terminal state whenever it can (a render error, a bad blueprint). It
cannot when it is killed, times out, crashes before reaching PostgreSQL, or fails to start; then
the task would wait in ``dispatched``/``rendering`` forever. :func:`record_job_exit` fails it,
with the exit code's meaning, and queues ``task.failed`` in the same transaction. It only acts
on the execution recorded on the task, so a stray run (one whose dispatch rolled back) never
fails a task another execution owns.
"""

from __future__ import annotations

import logging

from psycopg_pool import ConnectionPool

from consumers.dispatcher.local_runner import JobExit
from job.errors import ExitCode
from producers.task_failure import fail_task
from schemas.events import SOURCE_DISPATCHER
from schemas.task_state import State

log = logging.getLogger(__name__)
UNFINISHED = frozenset({State.DISPATCHED, State.RENDERING})


def exit_meaning(ended: JobExit) -> tuple[str, str]:
    """(error code slug, human explanation) of how the job ended."""
    if ended.start_error:
        return "job-start-failed", f"could not start: {ended.start_error}"
    if ended.timed_out:
        return "job-timeout", "ran past LOCAL_JOB_TIMEOUT and was stopped"
    code = ended.returncode
    if code is None:
        return "job-lost", "ended without an exit status"
    if code < 0:
        return "job-killed", f"was killed by signal {-code}"
    try:
        slug = ExitCode(code).name.lower().replace("_", "-")
    except ValueError:
        slug = "job-exit"
    return slug, f"exited with code {code} ({slug})"


def record_job_exit(pool: ConnectionPool, ended: JobExit) -> bool:
    """Fail the task if this execution left it unfinished; True when this call failed it."""
    context = {"task_id": ended.task_id, "execution": ended.execution_name}
    if ended.returncode == 0 and not ended.timed_out:
        return False
    code, meaning = exit_meaning(ended)
    reason = f"video job {ended.execution_name} {meaning}"
    if ended.last_error:
        reason = f"{reason}: {ended.last_error}"
    with pool.connection() as conn, conn.transaction():
        row = conn.execute(
            "SELECT state, execution_name FROM tasks WHERE task_id = %s FOR UPDATE",
            (ended.task_id,),
        ).fetchone()
        if row is None or row[1] != ended.execution_name or State(row[0]) not in UNFINISHED:
            log.info("job exit needs no task update", extra={**context, "exit": code})
            return False
        fail_task(
            conn,
            ended.task_id,
            UNFINISHED,
            reason=reason,
            stage="render",
            error_code=code,
            source=SOURCE_DISPATCHER,
            detail={"by": "dispatcher", "execution": ended.execution_name},
        )
    log.warning("task failed after its job ended: %s", reason, extra=context)
    return True
