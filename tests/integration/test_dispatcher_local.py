"""The dispatcher with the local runner: real ``python -m job`` subprocesses on real PostgreSQL."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from blobstore.storage import LocalStorage
from consumers.dispatcher.app import as_event_handler
from consumers.dispatcher.handler import Dispatcher
from consumers.dispatcher.job_exits import JobExit, settle_exit
from consumers.dispatcher.launcher import StorageBlueprintStash
from consumers.dispatcher.local_runner import LocalJobRunner
from consumers.runtime.handler import EventProcessor
from delivery.error_mapping import Outcome
from lifecycle.task_store import create_task, get_task, task_history, transition
from schemas.event_envelope import ChoreoEvent, Delivery, new_event
from schemas.events import SOURCE_BLUEPRINT_CONSUMER, BlueprintReady
from schemas.task_state import State
from tests.fixtures.blueprints import TEST_CLIPS, MovePlan, build_blueprint, outbox_types

pytestmark = pytest.mark.integration

COMPLETED = "com.choreo.video.completed.v1"
FAILED = "com.choreo.task.failed.v1"
SLEEP = (sys.executable, "-c", "import time; time.sleep(30)")


@pytest.fixture
def storage_root(job_media: Path, tmp_path: Path) -> Path:
    """A private copy of the test media (the job writes its video here)."""
    root = tmp_path / "storage"
    shutil.copytree(job_media, root)
    return root


def job_env(database_url: str, storage_root: Path, tmp_path: Path) -> dict[str, str]:
    """What the dispatcher process would pass on: PATH plus the job's settings."""
    return {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": database_url,
        "STORAGE_BACKEND": "local",
        "STORAGE_ROOT": str(storage_root),
        "JOB_CACHE_DIR": str(tmp_path / "cache"),
        "JOB_PUBLISH": "outbox",
        "JOB_X264_PRESET": "ultrafast",
        "JOB_STORAGE_RETRIES": "0",
        "LOG_JSON": "true",
    }


def planned_task(database_url: str, task_id: str, clip: str = TEST_CLIPS[1].key) -> None:
    """A task in ``planned`` with a two-move blueprint stored."""
    blueprint = build_blueprint(
        [MovePlan(TEST_CLIPS[0].key), MovePlan(clip)], task_id=task_id, width=320, height=180
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        create_task(conn, task_id, "song", {"path": "song"})
        transition(conn, task_id, State.QUEUED, State.ANALYZING)
        transition(conn, task_id, State.ANALYZING, State.PLANNED)
        conn.execute(
            "INSERT INTO blueprints (task_id, schema_version, document) VALUES (%s, '1', %s)",
            (task_id, Jsonb(blueprint)),
        )


def ready(task_id: str) -> Delivery[ChoreoEvent]:
    """A pulled ``blueprint.ready`` for the task."""
    payload = BlueprintReady(
        task_id=task_id, schema_version="1", audio_uri="songs/tone.m4a", duration_s=2, moves_count=2
    )
    return Delivery(new_event(payload, source=SOURCE_BLUEPRINT_CONSUMER), transport="pubsub")


@pytest.fixture
def runner_for(pool: ConnectionPool, tmp_path: Path) -> Iterator[Any]:
    """Builds durable local runners on ``pool``; closes them (and stops their jobs) afterwards."""
    made: list[LocalJobRunner] = []

    def build(env: dict[str, str], **options: Any) -> LocalJobRunner:
        options.setdefault("lease_s", 2.0)
        options.setdefault("poll_interval_s", 0.1)
        runner = LocalJobRunner(pool, base_env=env, log_dir=tmp_path / "job-logs", **options)
        made.append(runner)
        return runner

    yield build
    for runner in made:
        runner.close(stop_running=True)


def dispatch(pool: ConnectionPool, tmp_path: Path) -> EventProcessor:
    """The dispatcher (local launcher); blueprints stashed under ``tmp_path``."""
    stash = StorageBlueprintStash(LocalStorage(tmp_path / "stash"))
    return EventProcessor(pool, as_event_handler(Dispatcher(stash, max_env_bytes=28672)))


def states(pool: ConnectionPool, task_id: str) -> list[str]:
    """The task's states, oldest first."""
    with pool.connection() as conn:
        return [row.to_state.value for row in task_history(conn, task_id)]


def execution(pool: ConnectionPool, task_id: str) -> dict[str, Any]:
    """The task's ``job_executions`` row."""
    with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("SELECT * FROM job_executions WHERE task_id = %s", (task_id,)).fetchone()
    assert row is not None, f"no execution recorded for {task_id}"
    return row


def job_starts(log: Path) -> int:
    """How many runs of the job wrote to this log (each logs 'inputs fetched' once)."""
    return log.read_text(errors="replace").count('"inputs fetched"') if log.exists() else 0


def test_dispatch_records_one_execution_and_launches_nothing(
    pool: ConnectionPool, database_url: str, tmp_path: Path
) -> None:
    """blueprint.ready commits the execution row with the dispatch; a redelivery adds none."""
    planned_task(database_url, "task-local-record")
    processor = dispatch(pool, tmp_path)
    assert processor.process(ready("task-local-record")).outcome is Outcome.PROCESSED
    assert processor.process(ready("task-local-record")).outcome is Outcome.PROCESSED
    row = execution(pool, "task-local-record")
    assert row["execution_name"] == "local-task-local-record"
    assert row["state"] == "queued" and row["attempts"] == 0
    assert row["env"]["JOB_TASK_ID"] == "task-local-record"
    assert row["env"]["JOB_EXECUTION"] == "local-task-local-record"
    with pool.connection() as conn:
        task = get_task(conn, "task-local-record")
        count = conn.execute("SELECT count(*) FROM job_executions").fetchone()
    assert task.state is State.DISPATCHED and task.execution_name == "local-task-local-record"
    assert count == (1,)


def test_real_job_renders_the_dispatched_task(
    pool: ConnectionPool, database_url: str, storage_root: Path, tmp_path: Path, runner_for: Any
) -> None:
    """A runner runs the recorded job: rendering, completed, one video.completed, a log file."""
    planned_task(database_url, "task-local-ok")
    dispatch(pool, tmp_path).process(ready("task-local-ok"))
    runner = runner_for(job_env(database_url, storage_root, tmp_path))
    assert runner.wait_idle(90)
    with pool.connection() as conn:
        task = get_task(conn, "task-local-ok")
    assert task.state is State.COMPLETED, task.error
    assert (storage_root / "videos" / "task-local-ok.mp4").stat().st_size > 0
    assert states(pool, "task-local-ok")[-3:] == ["dispatched", "rendering", "completed"]
    assert outbox_types(database_url) == [(COMPLETED, False)]
    row = execution(pool, "task-local-ok")
    assert row["state"] == "exited" and row["exit_code"] == 0 and row["attempts"] == 1
    assert job_starts(Path(row["log_path"])) == 1


def test_job_that_records_its_own_failure_is_not_failed_twice(
    pool: ConnectionPool, database_url: str, storage_root: Path, tmp_path: Path, runner_for: Any
) -> None:
    """A missing clip: the job fails the task itself (exit 3); the runner adds nothing."""
    planned_task(database_url, "task-local-clip", clip="moves/nowhere.mp4")
    dispatch(pool, tmp_path).process(ready("task-local-clip"))
    runner = runner_for(job_env(database_url, storage_root, tmp_path))
    assert runner.wait_idle(60)
    with pool.connection() as conn:
        task = get_task(conn, "task-local-clip")
    assert task.state is State.FAILED and "moves/nowhere.mp4" in (task.error or "")
    assert not (task.error or "").startswith("video job")  # the job's words, not the runner's
    assert outbox_types(database_url) == [(FAILED, False)]
    assert execution(pool, "task-local-clip")["attempts"] == 1


def test_job_that_cannot_reach_the_database_is_retried_then_its_task_failed(
    pool: ConnectionPool, database_url: str, storage_root: Path, tmp_path: Path, runner_for: Any
) -> None:
    """The job exits 6 without writing anything: started again up to the cap, then failed."""
    planned_task(database_url, "task-local-nodb")
    dispatch(pool, tmp_path).process(ready("task-local-nodb"))
    env = {**job_env(database_url, storage_root, tmp_path), "DB_CONNECT_TIMEOUT": "1"}
    env["DATABASE_URL"] = "postgresql://nobody@127.0.0.1:9/nowhere"
    runner = runner_for(env, max_attempts=2)
    assert runner.wait_idle(60)
    with pool.connection() as conn:
        task = get_task(conn, "task-local-nodb")
    assert task.state is State.FAILED
    assert "exited with code 6 (status-failed)" in (task.error or "")
    assert "gave up after 2 starts" in (task.error or "")
    assert task.error_stage == "render"
    assert outbox_types(database_url) == [(FAILED, False)]
    assert execution(pool, "task-local-nodb")["attempts"] == 2


def test_job_past_its_timeout_is_stopped_and_its_task_failed(
    pool: ConnectionPool, database_url: str, tmp_path: Path, runner_for: Any
) -> None:
    """A job still running at LOCAL_JOB_TIMEOUT is killed and the task fails as job-timeout."""
    planned_task(database_url, "task-local-slow")
    dispatch(pool, tmp_path).process(ready("task-local-slow"))
    runner = runner_for({"PATH": os.environ["PATH"]}, command=SLEEP, timeout_s=0.5)
    assert runner.wait_idle(20)
    with pool.connection() as conn:
        task = get_task(conn, "task-local-slow")
    assert task.state is State.FAILED and "LOCAL_JOB_TIMEOUT" in (task.error or "")
    with pool.connection() as conn:
        last = task_history(conn, "task-local-slow")[-1]
    assert last.detail is not None and last.detail["error_code"] == "job-timeout"


# The first run claims the task (dispatched -> rendering), then SIGKILLs itself; later runs
# are the real job.
KILLED_ONCE = """
import os, pathlib, runpy, signal, sys
marker = pathlib.Path(sys.argv[1])
if not marker.exists():
    import psycopg
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute(
            "UPDATE tasks SET state = 'rendering' WHERE task_id = %s", (os.environ["JOB_TASK_ID"],)
        )
    marker.touch()
    os.kill(os.getpid(), signal.SIGKILL)
sys.argv = ["job"]
runpy.run_module("job", run_name="__main__")
"""


def test_job_killed_mid_run_is_started_again_and_completes(
    pool: ConnectionPool, database_url: str, storage_root: Path, tmp_path: Path, runner_for: Any
) -> None:
    """kill -9 of the job after it claimed the task: the runner starts it again; one video."""
    planned_task(database_url, "task-local-killed")
    dispatch(pool, tmp_path).process(ready("task-local-killed"))
    marker = tmp_path / "killed-once"
    runner = runner_for(
        job_env(database_url, storage_root, tmp_path),
        command=(sys.executable, "-c", KILLED_ONCE, str(marker)),
    )
    assert runner.wait_idle(90)
    with pool.connection() as conn:
        task = get_task(conn, "task-local-killed")
    assert task.state is State.COMPLETED, task.error
    row = execution(pool, "task-local-killed")
    assert row["attempts"] == 2 and row["exit_code"] == 0
    assert outbox_types(database_url) == [(COMPLETED, False)]
    with pool.connection() as conn:
        restarts = [
            h.detail for h in task_history(conn, "task-local-killed") if h.from_state == h.to_state
        ]
    assert restarts and restarts[0] is not None and restarts[0]["exit"] == "job-killed"


def test_runner_killed_mid_job_the_next_runner_adopts_the_job(
    pool: ConnectionPool, database_url: str, storage_root: Path, tmp_path: Path, runner_for: Any
) -> None:
    """kill -9 of `choreo runner` while its job runs: the job finishes, keeps its log, and the
    next runner adopts it instead of starting a second run."""
    planned_task(database_url, "task-local-orphan")
    dispatch(pool, tmp_path).process(ready("task-local-orphan"))
    # A runner in a process of its own, whose job waits 2 s before starting, so the runner
    # dies while its job runs.
    runner_script = (
        "import sys, threading, pathlib\n"
        "from psycopg_pool import ConnectionPool\n"
        "from consumers.dispatcher.local_runner import LocalJobRunner\n"
        f"pool = ConnectionPool({database_url!r}, min_size=1, max_size=2)\n"
        'job = \'import time, runpy, sys; time.sleep(2); sys.argv = ["job"]; '
        'runpy.run_module("job", run_name="__main__")\'\n'
        f"LocalJobRunner(pool, base_env={job_env(database_url, storage_root, tmp_path)!r}, "
        f"log_dir=pathlib.Path({str(tmp_path / 'job-logs')!r}), lease_s=2.0, "
        "command=(sys.executable, '-c', job)).run_forever(threading.Event())\n"
    )
    runner_process = subprocess.Popen(
        [sys.executable, "-c", runner_script],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while execution(pool, "task-local-orphan")["pid"] is None:
            assert time.monotonic() < deadline, "the runner never started the job"
            time.sleep(0.1)
    finally:
        runner_process.send_signal(signal.SIGKILL)
        runner_process.wait(10)
    orphan_pid = execution(pool, "task-local-orphan")["pid"]
    assert Path(f"/proc/{orphan_pid}").exists(), "the job died with its runner"
    runner = runner_for(job_env(database_url, storage_root, tmp_path))
    assert runner.wait_idle(90)
    with pool.connection() as conn:
        task = get_task(conn, "task-local-orphan")
    assert task.state is State.COMPLETED, task.error
    row = execution(pool, "task-local-orphan")
    assert row["attempts"] == 1, "the orphan was started again instead of adopted"
    assert job_starts(Path(row["log_path"])) == 1
    assert outbox_types(database_url) == [(COMPLETED, False)]


def test_second_execution_of_a_task_leaves_it_alone(
    pool: ConnectionPool, database_url: str, storage_root: Path, tmp_path: Path
) -> None:
    """A job run under another execution name exits 8 and neither renders nor fails the task."""
    planned_task(database_url, "task-local-other")
    dispatch(pool, tmp_path).process(ready("task-local-other"))
    env = {**execution(pool, "task-local-other")["env"], "JOB_EXECUTION": "local-impostor"}
    done = subprocess.run(
        [sys.executable, "-m", "job"],
        env={**job_env(database_url, storage_root, tmp_path), **env},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 8, done.stderr[-2000:]
    with pool.connection() as conn:
        task = get_task(conn, "task-local-other")
    assert task.state is State.DISPATCHED
    assert outbox_types(database_url) == []


def test_exit_of_a_stray_execution_leaves_the_task_alone(
    pool: ConnectionPool, database_url: str
) -> None:
    """An exit of an execution the task does not record (rolled-back dispatch) changes nothing."""
    planned_task(database_url, "task-local-stray")
    with pool.connection() as conn:
        transition(
            conn, "task-local-stray", State.PLANNED, State.DISPATCHED, execution_name="local-real"
        )
    stray = JobExit("task-local-stray", "local-stray", 6, last_error="task is planned")
    assert settle_exit(pool, stray, max_attempts=3).startswith("over")
    with pool.connection() as conn:
        assert get_task(conn, "task-local-stray").state is State.DISPATCHED
