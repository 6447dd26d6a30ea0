"""Start the video job as a Cloud Run Job execution (google-cloud-run, REST transport).

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
from typing import Any

import requests
from google.api_core import exceptions as api
from google.api_core.client_options import ClientOptions
from google.auth.exceptions import GoogleAuthError, TransportError
from google.cloud import run_v2
from google.protobuf import duration_pb2

from consumers.dispatcher.launcher import LaunchRejected, LaunchRequest, LaunchUnavailable
from schemas.errors import ConfigurationError

log = logging.getLogger(__name__)

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
    if not endpoint:
        return run_v2.JobsClient(transport="rest")
    credentials = None
    if endpoint.startswith("http://"):
        from google.auth.credentials import AnonymousCredentials  # noqa: PLC0415

        credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
    return run_v2.JobsClient(
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
