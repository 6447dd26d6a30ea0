"""The dispatcher on real PostgreSQL, launching through google-cloud-run's REST transport.

The Cloud Run Admin API is played by a local HTTP server speaking its v2 REST shape:
``POST /v2/projects/{p}/locations/{l}/jobs/{job}:run`` answers a long-running Operation whose
``metadata`` is the new Execution, or a Google JSON error. The client library is the real one,
pointed at ``http://127.0.0.1:PORT`` with anonymous credentials.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from consumers.dispatcher.app import as_event_handler
from consumers.dispatcher.cloud_run import CloudRunLauncher, jobs_client
from consumers.dispatcher.handler import Dispatcher
from consumers.dispatcher.launcher import StorageBlueprintStash
from consumers.runtime.error_mapping import Outcome
from consumers.runtime.handler import EventProcessor
from job.storage import LocalStorage
from lifecycle.outbox import outbox_rows
from lifecycle.task_store import create_task, get_task, transition
from schemas.event_envelope import ChoreoEvent, Delivery, new_event
from schemas.events import SOURCE_BLUEPRINT_CONSUMER, BlueprintReady
from schemas.task_state import State
from tests.fixtures.blueprints import TEST_CLIPS, MovePlan, build_blueprint

pytestmark = pytest.mark.integration

JOB = "projects/demo-project/locations/europe-west1/jobs/choreo-video"


@dataclass
class FakeCloudRun:
    """A Cloud Run Admin API v2 stand-in: records each request, answers from ``errors`` first."""

    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    endpoint: str = ""

    def answer(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The status and JSON body Cloud Run would send."""
        self.requests.append((method, path, body))
        if self.errors:
            status, code = self.errors.pop(0)
            return status, {"error": {"code": status, "message": f"fake {code}", "status": code}}
        if method != "POST" or not path.endswith(":run"):
            return 404, {"error": {"code": 404, "message": path, "status": "NOT_FOUND"}}
        job = path.removeprefix("/v2/").removesuffix(":run")
        number = len(self.requests)
        execution = f"{job}/executions/choreo-video-{number:05d}"
        operation = {
            "name": f"{job.split('/jobs/')[0]}/operations/op-{number}",
            "metadata": {
                "@type": "type.googleapis.com/google.cloud.run.v2.Execution",
                "name": execution,
                "job": job.rsplit("/", 1)[-1],
            },
            "done": False,
        }
        return 200, operation

    @property
    def runs(self) -> list[dict[str, Any]]:
        """Bodies of the ``:run`` calls received."""
        return [body for method, path, body in self.requests if path.endswith(":run")]


@pytest.fixture
def cloud_run() -> Iterator[FakeCloudRun]:
    """A fake Cloud Run Admin API on a free local port, for this test."""
    fake = FakeCloudRun()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            status, answer = fake.answer("POST", self.path.split("?", 1)[0], body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def planned_task(database_url: str, task_id: str) -> dict[str, Any]:
    """A task in ``planned`` with its blueprint stored; the blueprint document."""
    moves = [MovePlan(TEST_CLIPS[0].key), MovePlan(TEST_CLIPS[1].key)]
    blueprint = build_blueprint(moves, task_id=task_id)
    with psycopg.connect(database_url, autocommit=True) as conn:
        create_task(conn, task_id, "song", {"path": "song"})
        transition(conn, task_id, State.QUEUED, State.ANALYZING)
        transition(conn, task_id, State.ANALYZING, State.PLANNED)
        conn.execute(
            "INSERT INTO blueprints (task_id, schema_version, document) VALUES (%s, '1', %s)",
            (task_id, Jsonb(blueprint)),
        )
    return blueprint


def ready_delivery(task_id: str) -> Delivery[ChoreoEvent]:
    """A pulled ``blueprint.ready`` for the task."""
    ready = BlueprintReady(
        task_id=task_id,
        schema_version="1",
        audio_uri="songs/tone.m4a",
        duration_s=4.0,
        moves_count=2,
    )
    return Delivery(new_event(ready, source=SOURCE_BLUEPRINT_CONSUMER), transport="pubsub")


def processor(
    pool: ConnectionPool, cloud_run: FakeCloudRun, tmp_path: Path, max_env_bytes: int = 28672
) -> EventProcessor:
    """The dispatcher wired to the fake Cloud Run and local blueprint storage."""
    launcher = CloudRunLauncher(jobs_client(cloud_run.endpoint), JOB, task_timeout_s=600)
    stash = StorageBlueprintStash(LocalStorage(tmp_path / "storage"))
    dispatcher = Dispatcher(launcher, stash, max_env_bytes=max_env_bytes)
    return EventProcessor(pool, as_event_handler(dispatcher))


def env_of(run: dict[str, Any]) -> dict[str, str]:
    """The environment override of a ``:run`` body, as a dict."""
    (override,) = run["overrides"]["containerOverrides"]
    return {item["name"]: item["value"] for item in override["env"]}


def test_run_job_request_carries_the_blueprint_and_execution_is_recorded(
    pool: ConnectionPool, database_url: str, cloud_run: FakeCloudRun, tmp_path: Path
) -> None:
    """run_job names the job, sets BLUEPRINT_JSON, one task and the timeout; the task records it."""
    blueprint = planned_task(database_url, "task-cr-ok")
    verdict = processor(pool, cloud_run, tmp_path).process(ready_delivery("task-cr-ok"))
    assert verdict.outcome is Outcome.PROCESSED, verdict.reason
    (method, path, run) = cloud_run.requests[0]
    assert (method, path) == ("POST", f"/v2/{JOB}:run")
    env = env_of(run)
    assert json.loads(env["BLUEPRINT_JSON"]) == blueprint
    assert env["JOB_TASK_ID"] == "task-cr-ok"
    assert "BLUEPRINT_URI" not in env
    assert run["overrides"]["taskCount"] == 1
    assert run["overrides"]["timeout"] == "600s"
    with pool.connection() as conn:
        task = get_task(conn, "task-cr-ok")
    assert task.state is State.DISPATCHED
    assert task.execution_name == f"{JOB}/executions/choreo-video-00001"


def test_permission_denied_fails_the_task(
    pool: ConnectionPool, database_url: str, cloud_run: FakeCloudRun, tmp_path: Path
) -> None:
    """A 403 PERMISSION_DENIED is permanent: task failed at dispatch, task.failed queued, acked."""
    planned_task(database_url, "task-cr-403")
    cloud_run.errors.append((403, "PERMISSION_DENIED"))
    verdict = processor(pool, cloud_run, tmp_path).process(ready_delivery("task-cr-403"))
    assert verdict.outcome is Outcome.FAILED_PERMANENTLY and verdict.ack
    with pool.connection() as conn:
        task = get_task(conn, "task-cr-403")
        rows = outbox_rows(conn)
    assert task.state is State.FAILED and task.error_stage == "dispatch"
    assert "403" in (task.error or "") and task.execution_name is None
    assert [row.attributes["ce-type"] for row in rows] == ["com.choreo.task.failed.v1"]


def test_unavailable_is_retried_and_the_retry_launches(
    pool: ConnectionPool, database_url: str, cloud_run: FakeCloudRun, tmp_path: Path
) -> None:
    """A 503 UNAVAILABLE nacks with the task still planned; the redelivery then launches once."""
    planned_task(database_url, "task-cr-503")
    cloud_run.errors.append((503, "UNAVAILABLE"))
    dispatch = processor(pool, cloud_run, tmp_path)
    delivery = ready_delivery("task-cr-503")
    first = dispatch.process(delivery)
    assert first.outcome is Outcome.RETRY and not first.ack and first.http_status == 503
    with pool.connection() as conn:
        assert get_task(conn, "task-cr-503").state is State.PLANNED
    second = dispatch.process(delivery)
    assert second.outcome is Outcome.PROCESSED
    assert len(cloud_run.runs) == 2
    with pool.connection() as conn:
        assert get_task(conn, "task-cr-503").execution_name is not None


def test_redelivered_blueprint_ready_starts_no_second_execution(
    pool: ConnectionPool, database_url: str, cloud_run: FakeCloudRun, tmp_path: Path
) -> None:
    """The same event again, or another event for the same task, launches nothing more."""
    planned_task(database_url, "task-cr-dup")
    dispatch = processor(pool, cloud_run, tmp_path)
    delivery = ready_delivery("task-cr-dup")
    assert dispatch.process(delivery).outcome is Outcome.PROCESSED
    assert dispatch.process(delivery).outcome is Outcome.DUPLICATE
    assert dispatch.process(ready_delivery("task-cr-dup")).outcome is Outcome.PROCESSED
    assert len(cloud_run.runs) == 1
    with pool.connection() as conn:
        history = conn.execute(
            "SELECT count(*) FROM task_history WHERE task_id = %s AND to_state = 'dispatched'",
            ("task-cr-dup",),
        ).fetchone()
    assert history == (1,)


def test_large_blueprint_travels_as_blueprint_uri(
    pool: ConnectionPool, database_url: str, cloud_run: FakeCloudRun, tmp_path: Path
) -> None:
    """Above BLUEPRINT_ENV_MAX_BYTES the blueprint is stored and passed as BLUEPRINT_URI."""
    blueprint = planned_task(database_url, "task-cr-big")
    verdict = processor(pool, cloud_run, tmp_path, max_env_bytes=512).process(
        ready_delivery("task-cr-big")
    )
    assert verdict.outcome is Outcome.PROCESSED, verdict.reason
    env = env_of(cloud_run.runs[0])
    assert "BLUEPRINT_JSON" not in env
    stored = tmp_path / "storage" / "blueprints" / "task-cr-big.json"
    assert env["BLUEPRINT_URI"] == f"file://{stored.resolve()}"
    assert json.loads(stored.read_text()) == blueprint
