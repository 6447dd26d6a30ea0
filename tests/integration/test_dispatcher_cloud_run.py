"""The dispatcher and the Cloud Run launcher on real PostgreSQL, through google-cloud-run's REST.

The Cloud Run Admin API is played by a local HTTP server speaking its v2 REST shape:
``POST /v2/projects/{p}/locations/{l}/jobs/{job}:run`` answers a long-running Operation whose
``metadata`` is the new Execution (or a Google JSON error), and ``GET .../jobs/{job}/executions``
lists the executions newest first, each with its container env in ``template``. The client
library is the real one, pointed at ``http://127.0.0.1:PORT`` with anonymous credentials.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from blobstore.storage import LocalStorage
from consumers.dispatcher.app import as_event_handler
from consumers.dispatcher.cloud_run import (
    CloudRunLauncher,
    CloudRunLaunches,
    executions_client,
    jobs_client,
)
from consumers.dispatcher.handler import Dispatcher
from consumers.dispatcher.launcher import StorageBlueprintStash
from consumers.runtime.handler import EventProcessor
from delivery.error_mapping import Outcome
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
    """A Cloud Run Admin API v2 stand-in: records each request, answers from ``errors`` first.

    ``accept_then_fail`` makes the next ``:run`` create its execution and still answer 503, as
    when the response is lost after Cloud Run accepted the call.
    """

    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    executions: list[dict[str, Any]] = field(default_factory=list)
    accept_then_fail: bool = False
    endpoint: str = ""

    def answer(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The status and JSON body Cloud Run would send."""
        self.requests.append((method, path, body))
        if self.errors:
            status, code = self.errors.pop(0)
            return error(status, code)
        if method == "GET" and path.endswith("/executions"):
            job = path.removeprefix("/v2/").removesuffix("/executions")
            listed = [e for e in reversed(self.executions) if e["name"].startswith(job + "/")]
            return 200, {"executions": listed}
        if method != "POST" or not path.endswith(":run"):
            return error(404, "NOT_FOUND")
        job = path.removeprefix("/v2/").removesuffix(":run")
        number = len(self.executions) + 1
        (override,) = body["overrides"]["containerOverrides"]
        execution = {
            "name": f"{job}/executions/choreo-video-{number:05d}",
            "job": job.rsplit("/", 1)[-1],
            "createTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "template": {"containers": [{"image": "job", "env": override["env"]}]},
        }
        self.executions.append(execution)
        if self.accept_then_fail:
            self.accept_then_fail = False
            return error(503, "UNAVAILABLE")
        operation = {
            "name": f"{job.split('/jobs/')[0]}/operations/op-{number}",
            "metadata": {
                "@type": "type.googleapis.com/google.cloud.run.v2.Execution",
                "name": execution["name"],
                "job": execution["job"],
            },
            "done": False,
        }
        return 200, operation

    @property
    def runs(self) -> list[dict[str, Any]]:
        """Bodies of the ``:run`` calls received."""
        return [body for method, path, body in self.requests if path.endswith(":run")]


def error(status: int, code: str) -> tuple[int, dict[str, Any]]:
    """A Google JSON error body."""
    return status, {"error": {"code": status, "message": f"fake {code}", "status": code}}


@pytest.fixture
def cloud_run() -> Iterator[FakeCloudRun]:
    """A fake Cloud Run Admin API on a free local port, for this test."""
    fake = FakeCloudRun()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            self.reply(*fake.answer("POST", self.path.split("?", 1)[0], body))

        def do_GET(self) -> None:
            self.reply(*fake.answer("GET", self.path.split("?", 1)[0], {}))

        def reply(self, status: int, answer: dict[str, Any]) -> None:
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


def processor(pool: ConnectionPool, tmp_path: Path, max_env_bytes: int = 28672) -> EventProcessor:
    """The dispatcher for Cloud Run, with local blueprint storage."""
    stash = StorageBlueprintStash(LocalStorage(tmp_path / "storage"))
    dispatcher = Dispatcher(stash, max_env_bytes=max_env_bytes, launcher="cloud-run")
    return EventProcessor(pool, as_event_handler(dispatcher))


def launches(pool: ConnectionPool, cloud_run: FakeCloudRun) -> CloudRunLaunches:
    """The launch loop against the fake Cloud Run."""
    launcher = CloudRunLauncher(jobs_client(cloud_run.endpoint), JOB, task_timeout_s=600)
    return CloudRunLaunches(pool, launcher, executions_client(cloud_run.endpoint), max_attempts=3)


def execution_row(pool: ConnectionPool, task_id: str) -> tuple[Any, ...]:
    """(state, attempts, remote_name, execution_name) of the task's execution."""
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT state, attempts, remote_name, execution_name FROM job_executions "
            "WHERE task_id = %s",
            (task_id,),
        ).fetchone()
    assert row is not None
    return tuple(row)


def retry_now(pool: ConnectionPool, task_id: str) -> None:
    """Skip the backoff of a requeued launch."""
    with pool.connection() as conn:
        conn.execute("UPDATE job_executions SET lease_until = now() WHERE task_id = %s", (task_id,))


def env_of(run: dict[str, Any]) -> dict[str, str]:
    """The environment override of a ``:run`` body, as a dict."""
    (override,) = run["overrides"]["containerOverrides"]
    return {item["name"]: item["value"] for item in override["env"]}


def test_run_job_request_carries_the_blueprint_and_execution_is_recorded(
    pool: ConnectionPool, database_url: str, cloud_run: FakeCloudRun, tmp_path: Path
) -> None:
    """The dispatch records the launch id; the launcher's run_job carries the blueprint and it."""
    blueprint = planned_task(database_url, "task-cr-ok")
    verdict = processor(pool, tmp_path).process(ready_delivery("task-cr-ok"))
    assert verdict.outcome is Outcome.PROCESSED, verdict.reason
    assert cloud_run.runs == []  # nothing is launched inside the handler's transaction
    assert launches(pool, cloud_run).launch_one()
    run = cloud_run.runs[0]
    env = env_of(run)
    assert json.loads(env["BLUEPRINT_JSON"]) == blueprint
    assert env["JOB_TASK_ID"] == "task-cr-ok"
    assert "BLUEPRINT_URI" not in env
    assert run["overrides"]["taskCount"] == 1
    assert run["overrides"]["timeout"] == "600s"
    state, attempts, remote, launch_id = execution_row(pool, "task-cr-ok")
    assert (state, attempts) == ("launched", 1)
    assert remote == f"{JOB}/executions/choreo-video-00001"
    assert env["JOB_EXECUTION"] == launch_id
    with pool.connection() as conn:
        task = get_task(conn, "task-cr-ok")
    assert task.state is State.DISPATCHED and task.execution_name == launch_id


def test_permission_denied_fails_the_task(
    pool: ConnectionPool, database_url: str, cloud_run: FakeCloudRun, tmp_path: Path
) -> None:
    """A 403 PERMISSION_DENIED is permanent: task failed at dispatch, task.failed queued."""
    planned_task(database_url, "task-cr-403")
    processor(pool, tmp_path).process(ready_delivery("task-cr-403"))
    cloud_run.errors.append((403, "PERMISSION_DENIED"))
    # The lookup comes first; the refusal answers it (a 403 there is as final as on :run).
    assert launches(pool, cloud_run).launch_one()
    with pool.connection() as conn:
        task = get_task(conn, "task-cr-403")
        rows = outbox_rows(conn)
    assert task.state is State.FAILED and task.error_stage == "dispatch"
    assert "403" in (task.error or "")
    assert [row.attributes["ce-type"] for row in rows] == ["com.choreo.task.failed.v1"]
    assert execution_row(pool, "task-cr-403")[0] == "exited"


def test_unavailable_is_retried_and_the_retry_launches(
    pool: ConnectionPool, database_url: str, cloud_run: FakeCloudRun, tmp_path: Path
) -> None:
    """A 503 puts the launch back with a backoff; the next pass launches once."""
    planned_task(database_url, "task-cr-503")
    processor(pool, tmp_path).process(ready_delivery("task-cr-503"))
    loop = launches(pool, cloud_run)
    cloud_run.errors.append((503, "UNAVAILABLE"))
    assert loop.launch_one()
    assert execution_row(pool, "task-cr-503")[:2] == ("queued", 1)
    assert not loop.launch_one()  # backing off
    retry_now(pool, "task-cr-503")
    assert loop.launch_one()
    assert len(cloud_run.runs) == 1
    assert execution_row(pool, "task-cr-503")[:2] == ("launched", 2)


def test_run_job_accepted_but_answer_lost_is_found_not_launched_again(
    pool: ConnectionPool, database_url: str, cloud_run: FakeCloudRun, tmp_path: Path
) -> None:
    """Cloud Run created the execution but the call failed: the retry finds it by launch id."""
    planned_task(database_url, "task-cr-lost")
    processor(pool, tmp_path).process(ready_delivery("task-cr-lost"))
    loop = launches(pool, cloud_run)
    cloud_run.accept_then_fail = True
    assert loop.launch_one()
    assert execution_row(pool, "task-cr-lost")[0] == "queued"
    retry_now(pool, "task-cr-lost")
    assert loop.launch_one()
    assert len(cloud_run.runs) == 1, "a second execution was started"
    state, _, remote, _ = execution_row(pool, "task-cr-lost")
    assert state == "launched" and remote == cloud_run.executions[0]["name"]


def test_launches_exhausted_fail_the_task(
    pool: ConnectionPool, database_url: str, cloud_run: FakeCloudRun, tmp_path: Path
) -> None:
    """Three failed launch calls (JOB_MAX_ATTEMPTS) fail the task at dispatch, once."""
    planned_task(database_url, "task-cr-down")
    processor(pool, tmp_path).process(ready_delivery("task-cr-down"))
    loop = launches(pool, cloud_run)
    for _ in range(3):
        cloud_run.errors.append((503, "UNAVAILABLE"))
        retry_now(pool, "task-cr-down")
        assert loop.launch_one()
    with pool.connection() as conn:
        task = get_task(conn, "task-cr-down")
    assert task.state is State.FAILED and "gave up after 3 launch calls" in (task.error or "")
    assert cloud_run.runs == []


def test_redelivered_blueprint_ready_starts_no_second_execution(
    pool: ConnectionPool, database_url: str, cloud_run: FakeCloudRun, tmp_path: Path
) -> None:
    """The same event again, or another event for the same task, records and launches nothing."""
    planned_task(database_url, "task-cr-dup")
    dispatch = processor(pool, tmp_path)
    delivery = ready_delivery("task-cr-dup")
    assert dispatch.process(delivery).outcome is Outcome.PROCESSED
    assert dispatch.process(delivery).outcome is Outcome.DUPLICATE
    assert dispatch.process(ready_delivery("task-cr-dup")).outcome is Outcome.PROCESSED
    loop = launches(pool, cloud_run)
    while loop.launch_one():
        pass
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
    verdict = processor(pool, tmp_path, max_env_bytes=512).process(ready_delivery("task-cr-big"))
    assert verdict.outcome is Outcome.PROCESSED, verdict.reason
    assert launches(pool, cloud_run).launch_one()
    env = env_of(cloud_run.runs[0])
    assert "BLUEPRINT_JSON" not in env
    stored = tmp_path / "storage" / "blueprints" / "task-cr-big.json"
    assert env["BLUEPRINT_URI"] == f"file://{stored.resolve()}"
    assert json.loads(stored.read_text()) == blueprint
