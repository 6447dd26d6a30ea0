"""Start the video job as a Cloud Run Job execution (google-cloud-run, REST transport).

Exactly one execution per task: the dispatcher records the execution (launch id
``choreo-<hash of task id>``) before anything is launched, and :class:`CloudRunLaunches` starts
it from that row. The launch id travels in the execution's environment (``JOB_EXECUTION``), so
before every ``run_job`` the launcher first lists the job's recent executions and looks for one
carrying it: a launcher that died after Cloud Run accepted the call, or a call that timed out
after reaching Cloud Run, finds the execution instead of starting a second one.

``run_job`` on the configured job with one container override: the blueprint's environment
variables (merged by Cloud Run with the job's own env), one task, and the task timeout. The call
returns a long-running operation whose ``metadata`` is the new Execution; its name is what the
dispatcher records on the task. The operation is not waited on: it only completes when the
execution does, and the job reports its own outcome.

The client's own retries are off (``retry=None``): a retried ``run_job`` whose first attempt did
reach Cloud Run would start a second execution. Errors are sorted once, here: 400, 403, 404 and
other 4xx refusals are permanent (the task fails); 401, 408, 409, 429, 5xx, deadlines and broken
connections are transient (the message is redelivered, then dead-lettered).
"""

from __future__ import annotations

import logging
import secrets
import threading
from datetime import datetime, timedelta
from typing import Any, TypeVar

import requests
from google.api_core import exceptions as api
from google.api_core.client_options import ClientOptions
from google.auth.exceptions import GoogleAuthError, TransportError
from google.cloud import run_v2
from google.protobuf import duration_pb2

from consumers.dispatcher.launcher import LaunchRejected, LaunchRequest, LaunchUnavailable
from lifecycle.executions import (
    ExecutionRow,
    claim_launch,
    mark_exited,
    mark_launched,
    requeue,
)
from lifecycle.task_failure import fail_task
from schemas.errors import ChoreoError, ConfigurationError
from schemas.events import SOURCE_DISPATCHER
from schemas.task_state import StaleState, State

log = logging.getLogger(__name__)

LAUNCH_ENV = "JOB_EXECUTION"
Client = TypeVar("Client", run_v2.JobsClient, run_v2.ExecutionsClient)
# How far before the recorded launch an execution carrying its id may have been created
# (clock skew between PostgreSQL and Cloud Run).
LOOKUP_MARGIN = timedelta(minutes=10)

# Statuses worth retrying although they are 4xx: expired credentials, request timeout, a
# concurrent modification, quota.
_TRANSIENT_CLIENT_STATUSES = frozenset({401, 408, 409, 429})
_TRANSIENT_ERRORS = (
    api.RetryError, requests.ConnectionError, requests.Timeout, TransportError,
    ConnectionError, TimeoutError,
)  # fmt: skip


def job_resource_name(job: str, *, project: str, region: str) -> str:
    """The full ``projects/P/locations/L/jobs/J`` name; a full name is returned unchanged."""
    if job.startswith("projects/"):
        parts = job.split("/")
        if len(parts) != 6 or parts[2] != "locations" or parts[4] != "jobs" or not all(parts):
            raise ConfigurationError(
                f"CLOUD_RUN_JOB={job!r} is not projects/PROJECT/locations/REGION/jobs/JOB"
            )
        return job
    for name, value in (("CLOUD_RUN_JOB", job), ("CLOUD_RUN_REGION", region)):
        if not value or "/" in value:
            raise ConfigurationError(f"{name}={value!r} must be a plain, non-empty name")
    if not project:
        raise ConfigurationError("no project for the Cloud Run job: set CLOUD_RUN_PROJECT")
    return f"projects/{project}/locations/{region}/jobs/{job}"


def jobs_client(endpoint: str = "") -> run_v2.JobsClient:
    """A REST ``JobsClient``; an ``http://`` endpoint (a local server) is called anonymously."""
    return _rest_client(run_v2.JobsClient, endpoint)


def executions_client(endpoint: str = "") -> run_v2.ExecutionsClient:
    """A REST ``ExecutionsClient``; an ``http://`` endpoint is called anonymously."""
    return _rest_client(run_v2.ExecutionsClient, endpoint)


def _rest_client(client_class: type[Client], endpoint: str) -> Client:
    if not endpoint:
        return client_class(transport="rest")
    credentials = None
    if endpoint.startswith("http://"):
        from google.auth.credentials import AnonymousCredentials  # noqa: PLC0415

        credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
    return client_class(
        transport="rest",
        credentials=credentials,
        client_options=ClientOptions(api_endpoint=endpoint),
    )


class CloudRunLauncher:
    """A ``JobLauncher`` that runs one execution of a Cloud Run Job per task."""

    def __init__(
        self,
        client: run_v2.JobsClient,
        job_name: str,
        *,
        task_timeout_s: int,
        call_timeout_s: float = 30.0,
    ) -> None:
        self.client = client
        self.job_name = job_name
        self.task_timeout_s = task_timeout_s
        self.call_timeout_s = call_timeout_s

    def launch(self, request: LaunchRequest) -> str:
        """``run_job`` with the task's env override; the new Execution's name."""
        overrides = run_v2.RunJobRequest.Overrides(
            container_overrides=[
                run_v2.RunJobRequest.Overrides.ContainerOverride(
                    env=[run_v2.EnvVar(name=k, value=v) for k, v in sorted(request.env.items())]
                )
            ],
            task_count=1,
            timeout=duration_pb2.Duration(seconds=self.task_timeout_s),
        )
        run_request = run_v2.RunJobRequest(name=self.job_name, overrides=overrides)
        try:
            operation = self.client.run_job(
                request=run_request, retry=None, timeout=self.call_timeout_s
            )
        except Exception as error:
            raise launch_error(self.job_name, error) from error
        return execution_name(operation, self.job_name)


def find_execution(
    client: run_v2.ExecutionsClient,
    job_name: str,
    launch_id: str,
    *,
    not_before: datetime | None = None,
    timeout_s: float = 30.0,
) -> str | None:
    """The execution of ``job_name`` whose environment carries ``JOB_EXECUTION=launch_id``.

    Executions come newest first; the scan stops at ``not_before`` (when the launch was
    recorded, less a margin). The list has no server-side filter, so pages are kept small.
    """
    request = run_v2.ListExecutionsRequest(parent=job_name, page_size=50, show_deleted=True)
    try:
        pages = client.list_executions(request=request, retry=None, timeout=timeout_s)
        for execution in pages:
            created = execution.create_time
            if not_before is not None and created and created < not_before:
                return None
            for container in execution.template.containers:
                if any(e.name == LAUNCH_ENV and e.value == launch_id for e in container.env):
                    return str(execution.name)
    except Exception as error:
        raise launch_error(job_name, error) from error
    return None


def execution_name(operation: Any, job_name: str) -> str:
    """The Execution named by the operation's metadata (the operation's name if it has none)."""
    metadata = operation.metadata
    name = getattr(metadata, "name", "") if metadata is not None else ""
    if name:
        return str(name)
    fallback = str(operation.operation.name)
    if not fallback:
        raise LaunchUnavailable(f"run_job on {job_name} returned an operation with no name")
    log.warning("run_job operation carries no Execution metadata", extra={"operation": fallback})
    return fallback


def launch_error(job_name: str, error: Exception) -> Exception:
    """The transient or permanent launch error for an exception raised by ``run_job``."""
    if isinstance(error, api.GoogleAPICallError):
        status = error.code or 0
        message = f"run_job on {job_name}: {status} {error.message}".strip()
        if status in _TRANSIENT_CLIENT_STATUSES or status >= 500 or status == 0:
            return LaunchUnavailable(message)
        return LaunchRejected(message)
    if isinstance(error, _TRANSIENT_ERRORS):
        return LaunchUnavailable(f"run_job on {job_name}: {type(error).__name__}: {error}")
    if isinstance(error, GoogleAuthError):
        return LaunchUnavailable(f"run_job on {job_name}: credentials: {error}")
    return error


class CloudRunLaunches:
    """Starts recorded Cloud Run executions: look up first, ``run_job`` only if none exists.

    Each pass claims one ``queued`` execution with a lease (so two dispatchers never launch one
    row side by side) and holds no database connection during the API calls. A transient
    failure puts the row back after a backoff; a refusal, or ``JOB_MAX_ATTEMPTS`` failed launch
    calls, fails the task (stage ``dispatch``).
    """

    def __init__(
        self,
        pool: Any,
        launcher: CloudRunLauncher,
        executions: run_v2.ExecutionsClient,
        *,
        max_attempts: int = 3,
        lease_s: float = 120.0,
        poll_interval_s: float = 0.5,
    ) -> None:
        self.pool = pool
        self.launcher = launcher
        self.executions = executions
        self.max_attempts = max_attempts
        self.lease_s = lease_s
        self.poll_interval_s = poll_interval_s
        self.runner_id = f"cloud-run-launcher:{secrets.token_hex(4)}"

    def run_forever(self, stop: threading.Event) -> None:
        """Launch until ``stop``; errors are logged, never fatal to the loop."""
        while not stop.is_set():
            try:
                busy = self.launch_one()
            except Exception:
                log.exception("cloud run launch pass failed")
                busy = False
            if not busy:
                stop.wait(self.poll_interval_s)

    def launch_one(self) -> bool:
        """Settle one recorded execution; False when there was none to launch."""
        with self.pool.connection() as conn:
            row = claim_launch(conn, self.runner_id, self.lease_s)
        if row is None:
            return False
        context = {"task_id": row.task_id, "execution": row.execution_name}
        not_before = row.created_at - LOOKUP_MARGIN if row.created_at else None
        try:
            found = find_execution(
                self.executions,
                self.launcher.job_name,
                row.execution_name,
                not_before=not_before,
                timeout_s=self.launcher.call_timeout_s,
            )
            if found is not None:
                log.warning("execution already exists: not launching again", extra=context)
                name = found
            else:
                name = self.launcher.launch(LaunchRequest(row.task_id, row.env))
        except LaunchRejected as error:
            self._fail(row, str(error), "launch-rejected")
            return True
        except ChoreoError as error:  # LaunchUnavailable and the like: retried
            if row.attempts >= self.max_attempts:
                self._fail(
                    row,
                    f"{error}; gave up after {row.attempts} launch calls (JOB_MAX_ATTEMPTS)",
                    "launch-unavailable",
                )
            else:
                delay = min(60.0, 2.0**row.attempts)
                with self.pool.connection() as conn:
                    requeue(conn, row.execution_name, str(error), delay_s=delay)
                log.warning("launch failed, retrying in %.0f s: %s", delay, error, extra=context)
            return True
        with self.pool.connection() as conn, conn.transaction():
            mark_launched(conn, row.execution_name, name)
        log.info("video job launched", extra={**context, "remote": name})
        return True

    def _fail(self, row: ExecutionRow, reason: str, code: str) -> None:
        with self.pool.connection() as conn, conn.transaction():
            mark_exited(conn, row.execution_name, None, reason)
            try:
                fail_task(
                    conn,
                    row.task_id,
                    State.DISPATCHED,
                    reason=f"video job {row.execution_name} was not launched: {reason}",
                    stage="dispatch",
                    error_code=code,
                    source=SOURCE_DISPATCHER,
                    detail={"by": "cloud-run-launcher", "execution": row.execution_name},
                )
            except StaleState:
                log.info(
                    "task moved on; launch failure not recorded", extra={"task_id": row.task_id}
                )
