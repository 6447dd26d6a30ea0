"""The dispatcher's pure rules: where the blueprint travels, job names, error sorting, exits."""

from __future__ import annotations

import json

import pytest
import requests
from google.api_core import exceptions as api

from consumers.dispatcher.cloud_run import job_resource_name, launch_error
from consumers.dispatcher.job_exits import exit_meaning
from consumers.dispatcher.launcher import (
    LaunchRejected,
    LaunchUnavailable,
    job_environment,
)
from consumers.dispatcher.local_runner import JobExit, last_error
from consumers.status_recorder.timeline import summarise_blueprint
from schemas.errors import ConfigurationError
from tests.fakes import RecordingStash

JOB = "projects/p/locations/europe-west1/jobs/choreo-video"


def test_blueprint_within_the_limit_travels_in_blueprint_json() -> None:
    """A blueprint of exactly the limit in UTF-8 bytes goes in BLUEPRINT_JSON, nothing stored."""
    text = json.dumps({"task_id": "t1", "song": "café"})
    stash = RecordingStash()
    chosen = job_environment("t1", text, max_env_bytes=len(text.encode()), stash=stash)
    assert chosen.via == "env"
    assert chosen.env == {"BLUEPRINT_JSON": text, "JOB_TASK_ID": "t1"}
    assert stash.stored == {}


def test_blueprint_one_byte_over_the_limit_is_stored_and_referenced() -> None:
    """One byte over the limit (counted in UTF-8, not characters) switches to BLUEPRINT_URI."""
    text = json.dumps({"task_id": "t2", "song": "café"}, ensure_ascii=False)
    stash = RecordingStash()
    chosen = job_environment("t2", text, max_env_bytes=len(text), stash=stash)
    assert chosen.via == "uri"
    assert chosen.env == {"BLUEPRINT_URI": "gs://bucket/blueprints/t2.json", "JOB_TASK_ID": "t2"}
    assert stash.stored["t2"] == text.encode()


def test_job_name_is_built_from_project_region_and_job() -> None:
    """A short job name becomes projects/P/locations/L/jobs/J; a full one is kept."""
    assert job_resource_name("choreo-video", project="p", region="europe-west1") == JOB
    assert job_resource_name(JOB, project="", region="") == JOB


@pytest.mark.parametrize(
    ("job", "project", "message"),
    [
        ("projects/p/jobs/x", "p", "projects/PROJECT/locations/REGION/jobs/JOB"),
        ("a/b", "p", "CLOUD_RUN_JOB"),
        ("choreo-video", "", "CLOUD_RUN_PROJECT"),
    ],
)
def test_bad_job_settings_name_the_variable(job: str, project: str, message: str) -> None:
    """A malformed job name or a missing project is a configuration error naming the variable."""
    with pytest.raises(ConfigurationError, match=message):
        job_resource_name(job, project=project, region="europe-west1")


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (api.PermissionDenied("no run.jobs.run"), LaunchRejected),
        (api.NotFound("no such job"), LaunchRejected),
        (api.InvalidArgument("bad override"), LaunchRejected),
        (api.ServiceUnavailable("try later"), LaunchUnavailable),
        (api.DeadlineExceeded("slow"), LaunchUnavailable),
        (api.TooManyRequests("quota"), LaunchUnavailable),
        (api.InternalServerError("oops"), LaunchUnavailable),
        (api.Unauthorized("token expired"), LaunchUnavailable),
        (requests.ConnectionError("refused"), LaunchUnavailable),
    ],
)
def test_run_job_errors_are_sorted(error: Exception, kind: type[Exception]) -> None:
    """Permission, not-found and invalid requests are permanent; the rest is worth retrying."""
    sorted_error = launch_error(JOB, error)
    assert isinstance(sorted_error, kind)
    assert JOB in str(sorted_error)


def test_unknown_errors_are_not_disguised() -> None:
    """An exception outside the client's vocabulary is returned as is (a bug, not an intent)."""
    bug = KeyError("x")
    assert launch_error(JOB, bug) is bug


@pytest.mark.parametrize(
    ("ended", "code", "words"),
    [
        (JobExit("t", "local-t", 3), "asset-unavailable", "exited with code 3"),
        (JobExit("t", "local-t", 6), "status-failed", "exited with code 6"),
        (JobExit("t", "local-t", 77), "job-exit", "exited with code 77"),
        (JobExit("t", "local-t", -9), "job-killed", "signal 9"),
        (JobExit("t", "local-t", -15, timed_out=True), "job-timeout", "LOCAL_JOB_TIMEOUT"),
        (JobExit("t", "local-t", None, start_error="no python"), "job-start-failed", "no python"),
    ],
)
def test_exit_meaning_names_the_exit(ended: JobExit, code: str, words: str) -> None:
    """Each way a job can end has its error code and a sentence saying what happened."""
    slug, meaning = exit_meaning(ended)
    assert slug == code
    assert words in meaning


def test_last_error_prefers_the_last_error_log_line() -> None:
    """The last ERROR record's message is reported, not a later INFO line or raw JSON."""
    lines = [
        json.dumps({"severity": "ERROR", "message": "first problem"}),
        json.dumps({"severity": "ERROR", "message": "moves/x.mp4: no such file"}),
        json.dumps({"severity": "INFO", "message": "closing"}),
        "",
    ]
    assert last_error(lines) == "moves/x.mp4: no such file"
    assert last_error(["Traceback", "ValueError: boom"]) == "ValueError: boom"


def test_blueprint_summary_tolerates_a_partial_document() -> None:
    """Missing or odd blueprint fields become None or zero instead of an exception."""
    summary = summarise_blueprint({"song": {"title": "T", "window": {"start_s": 1.0}}})
    assert summary.song_title == "T"
    assert summary.duration_s is None and summary.moves_count == 0 and summary.style is None
    assert summarise_blueprint(["not", "a", "dict"]).song_title == ""
