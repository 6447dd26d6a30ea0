"""The task reaper on real PostgreSQL: stale tasks fail once, with history and task.failed."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool
from typer.testing import CliRunner

from choreo_cli.main import app
from lifecycle.blueprints import insert_blueprint
from lifecycle.outbox import outbox_rows
from lifecycle.task_failure import fail_task
from lifecycle.task_reaper import SOURCE_REAPER, TaskReaper
from lifecycle.task_store import create_task, get_task, task_history, transition
from producers.revisions import submit_revision
from schemas.event_codec import from_pubsub
from schemas.events import REVISION_REQUESTED_V1, TaskFailed
from schemas.task_state import HAPPY_PATH, State
from tests.fixtures.blueprints import MovePlan, build_blueprint

pytestmark = pytest.mark.integration

HOUR = 3600.0
DEADLINES = {
    State.QUEUED: HOUR,
    State.ANALYZING: HOUR,
    State.PLANNED: HOUR,
    State.DISPATCHED: HOUR,
    State.RENDERING: HOUR,
}


def task_in(conn: psycopg.Connection, task_id: str, state: State, *, idle_s: float = 0) -> None:
    """Create the task, walk it to ``state`` and make its last update ``idle_s`` seconds old."""
    create_task(conn, task_id, "song", {"path": "song"})
    path = HAPPY_PATH if state is not State.FAILED else (State.QUEUED, State.FAILED)
    for here, there in itertools.pairwise(path[: path.index(state) + 1]):
        fields: dict[str, Any] = {}
        if there is State.DISPATCHED:
            fields = {"execution_name": f"exec-{task_id}"}
        elif there is State.COMPLETED:
            fields = {"video_uri": f"videos/{task_id}.mp4"}
        elif there is State.FAILED:
            fields = {"error": "bad request", "error_stage": "request"}
        transition(conn, task_id, here, there, **fields)
    if idle_s:
        # The tasks_touch trigger sets updated_at = now() on every UPDATE; bypass it here only.
        with conn.transaction():
            conn.execute("ALTER TABLE tasks DISABLE TRIGGER tasks_touch")
            conn.execute(
                "UPDATE tasks SET updated_at = now() - %s * interval '1 second' WHERE task_id = %s",
                (idle_s, task_id),
            )
            conn.execute("ALTER TABLE tasks ENABLE TRIGGER tasks_touch")


def failures(conn: psycopg.Connection) -> dict[str, list[TaskFailed]]:
    """task.failed events in the outbox, by task."""
    found: dict[str, list[TaskFailed]] = {}
    for row in outbox_rows(conn):
        if row.topic != "video-done":
            continue
        event = from_pubsub(row.data, row.attributes).event
        if isinstance(event.data, TaskFailed):
            assert event.source == SOURCE_REAPER
            found.setdefault(event.data.task_id, []).append(event.data)
    return found


def test_stale_rendering_task_is_failed_with_history_and_one_task_failed(
    pool: ConnectionPool,
) -> None:
    """A rendering task with no progress past its deadline ends failed at stage render."""
    with pool.connection() as conn:
        conn.autocommit = True
        task_in(conn, "lost-render", State.RENDERING, idle_s=2 * HOUR)

    reaped = TaskReaper(pool, DEADLINES).reap()

    assert [t.task_id for t in reaped] == ["lost-render"]
    with pool.connection() as conn:
        task = get_task(conn, "lost-render")
        assert task.state is State.FAILED
        assert task.error_stage == "render"
        assert task.error is not None
        assert task.error.startswith("no progress for 72")
        assert "in state rendering (deadline 3600 s); the worker was lost" in task.error
        last = task_history(conn, "lost-render")[-1]
        assert (last.from_state, last.to_state) == (State.RENDERING, State.FAILED)
        assert last.detail is not None
        assert last.detail["by"] == "reaper"
        assert last.detail["error_code"] == "no-progress"
        assert last.detail["execution"] == "exec-lost-render"
        (event,) = failures(conn)["lost-render"]
        assert (event.stage, event.error_code, event.reason) == (
            "render",
            "no-progress",
            task.error,
        )


def test_each_state_fails_at_its_stage(pool: ConnectionPool) -> None:
    """queued/analyzing -> analysis, planned -> dispatch, dispatched/rendering -> render."""
    expected = {
        State.QUEUED: "analysis",
        State.ANALYZING: "analysis",
        State.PLANNED: "dispatch",
        State.DISPATCHED: "render",
        State.RENDERING: "render",
    }
    with pool.connection() as conn:
        conn.autocommit = True
        for state in expected:
            task_in(conn, f"stale-{state}", state, idle_s=2 * HOUR)

    TaskReaper(pool, DEADLINES).reap()

    with pool.connection() as conn:
        for state, stage in expected.items():
            task = get_task(conn, f"stale-{state}")
            assert (task.state, task.error_stage) == (State.FAILED, stage), state
        assert {task_id: len(events) for task_id, events in failures(conn).items()} == {
            f"stale-{state}": 1 for state in expected
        }


def test_fresh_tasks_and_finished_tasks_are_left_alone(pool: ConnectionPool) -> None:
    """A recent update, a state with no deadline, and terminal tasks are not touched."""
    with pool.connection() as conn:
        conn.autocommit = True
        task_in(conn, "busy-render", State.RENDERING, idle_s=HOUR - 60)
        task_in(conn, "old-queued", State.QUEUED, idle_s=10 * HOUR)
        task_in(conn, "old-done", State.COMPLETED, idle_s=10 * HOUR)
        task_in(conn, "old-failed", State.FAILED, idle_s=10 * HOUR)
        before = {t: task_history(conn, t) for t in ("old-done", "old-failed")}

    without_queued: dict[State, float] = {
        s: d for s, d in DEADLINES.items() if s is not State.QUEUED
    }
    assert TaskReaper(pool, without_queued).reap() == []

    with pool.connection() as conn:
        assert get_task(conn, "busy-render").state is State.RENDERING
        assert get_task(conn, "old-queued").state is State.QUEUED
        assert get_task(conn, "old-done").state is State.COMPLETED
        assert get_task(conn, "old-failed").error == "bad request"
        assert {t: task_history(conn, t) for t in before} == before
        assert outbox_rows(conn) == []


def test_dry_run_lists_stale_tasks_and_changes_nothing(pool: ConnectionPool) -> None:
    """find_stale reports what reap would fail, without a write."""
    with pool.connection() as conn:
        conn.autocommit = True
        task_in(conn, "lost-dispatch", State.DISPATCHED, idle_s=2 * HOUR)
        task_in(conn, "fresh", State.DISPATCHED)

    stale = TaskReaper(pool, DEADLINES).find_stale()

    assert [(t.task_id, t.state, t.stage) for t in stale] == [
        ("lost-dispatch", State.DISPATCHED, "render")
    ]
    with pool.connection() as conn:
        assert get_task(conn, "lost-dispatch").state is State.DISPATCHED
        assert len(task_history(conn, "lost-dispatch")) == 4
        assert outbox_rows(conn) == []


def test_a_task_locked_by_another_reaper_is_skipped(pool: ConnectionPool) -> None:
    """SKIP LOCKED: a row another transaction holds is left to it, and never failed twice."""
    with pool.connection() as conn:
        conn.autocommit = True
        task_in(conn, "held", State.RENDERING, idle_s=2 * HOUR)
        task_in(conn, "free", State.RENDERING, idle_s=2 * HOUR)
    reaper = TaskReaper(pool, DEADLINES)

    with pool.connection() as other, other.transaction():
        other.execute("SELECT 1 FROM tasks WHERE task_id = 'held' FOR UPDATE")
        assert [t.task_id for t in reaper.reap()] == ["free"]
        fail_task(
            other,
            "held",
            State.RENDERING,
            reason="the other reaper",
            stage="render",
            error_code="no-progress",
            source=SOURCE_REAPER,
            detail={"by": "reaper"},
        )

    assert reaper.reap() == []
    with pool.connection() as conn:
        assert {task_id: len(events) for task_id, events in failures(conn).items()} == {
            "held": 1,
            "free": 1,
        }


def test_concurrent_reapers_fail_each_task_once(pool: ConnectionPool) -> None:
    """Two reapers on their own connections, started together, share the stale tasks."""
    count = 40
    with pool.connection() as conn:
        conn.autocommit = True
        for n in range(count):
            task_in(conn, f"lost-{n:02}", State.RENDERING, idle_s=2 * HOUR)
    start = threading.Barrier(2)
    results: list[list[str]] = [[], []]

    def run(slot: int) -> None:
        reaper = TaskReaper(pool, DEADLINES, batch_size=5)
        start.wait()
        results[slot] = [t.task_id for t in reaper.reap()]

    threads = [threading.Thread(target=run, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(results[0] + results[1]) == [f"lost-{n:02}" for n in range(count)]
    with pool.connection() as conn:
        events = failures(conn)
        assert sorted(events) == [f"lost-{n:02}" for n in range(count)]
        assert all(len(found) == 1 for found in events.values())
        for n in range(count):
            history = task_history(conn, f"lost-{n:02}")
            assert [h.to_state for h in history].count(State.FAILED) == 1


def test_run_forever_reaps_on_its_interval(pool: ConnectionPool) -> None:
    """The loop long-running processes start fails a stale task within an interval or two."""
    with pool.connection() as conn:
        conn.autocommit = True
        task_in(conn, "lost-plan", State.PLANNED, idle_s=2 * HOUR)
    stop = threading.Event()
    loop = threading.Thread(
        target=TaskReaper(pool, DEADLINES, interval_s=0.05).run_forever, args=(stop,)
    )
    loop.start()
    try:
        for _ in range(200):
            with pool.connection() as conn:
                if get_task(conn, "lost-plan").state is State.FAILED:
                    break
            stop.wait(0.05)
    finally:
        stop.set()
        loop.join(10)
    with pool.connection() as conn:
        assert get_task(conn, "lost-plan").error_stage == "dispatch"


def test_cli_prints_what_it_reaps_and_what_a_dry_run_would(
    pool: ConnectionPool, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``choreo tasks reap [--dry-run]`` reads the REAPER_* deadlines and names each task."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REAPER_RENDERING_TIMEOUT", "600")
    monkeypatch.setenv("LOG_JSON", "false")
    with pool.connection() as conn:
        conn.autocommit = True
        task_in(conn, "lost-render", State.RENDERING, idle_s=900)
        task_in(conn, "busy-render", State.RENDERING, idle_s=300)
    runner = CliRunner()

    dry = runner.invoke(app, ["tasks", "reap", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would fail lost-render  rendering -> failed (render): no progress for 9" in dry.output
    assert "busy-render" not in dry.output
    assert "1 task(s) would fail" in dry.output

    done = runner.invoke(app, ["tasks", "reap"])
    assert done.exit_code == 0, done.output
    assert "failed lost-render  rendering -> failed (render)" in done.output
    assert "(deadline 600 s); the worker was lost" in done.output
    assert "1 task(s) failed" in done.output
    with pool.connection() as conn:
        assert get_task(conn, "lost-render").state is State.FAILED
        assert get_task(conn, "busy-render").state is State.RENDERING

    again = runner.invoke(app, ["tasks", "reap"])
    assert again.exit_code == 0, again.output
    assert "no stale tasks" in again.output


def make_idle(conn: psycopg.Connection, task_id: str, idle_s: float) -> None:
    """Age the task's last update by ``idle_s`` (bypassing the touch trigger)."""
    with conn.transaction():
        conn.execute("ALTER TABLE tasks DISABLE TRIGGER tasks_touch")
        conn.execute(
            "UPDATE tasks SET updated_at = now() - %s * interval '1 second' WHERE task_id = %s",
            (idle_s, task_id),
        )
        conn.execute("ALTER TABLE tasks ENABLE TRIGGER tasks_touch")


def published_ready(conn: psycopg.Connection, task_id: str) -> int:
    """A published blueprint.ready outbox row for the task (what the relay left behind); its id."""
    row = conn.execute(
        "INSERT INTO outbox (event_id, topic, ordering_key, data, published_at) "
        "VALUES (%s, 'blueprint-ready', %s, '\\x7b7d', now()) RETURNING id",
        (f"ready-{task_id}", task_id),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_stuck_planned_task_gets_its_blueprint_ready_republished_not_failed(
    pool: ConnectionPool,
) -> None:
    """Past the deadline, a planned task's blueprint.ready goes out again (same event id)."""
    with pool.connection() as conn:
        conn.autocommit = True
        task_in(conn, "stuck-planned", State.PLANNED)
        row_id = published_ready(conn, "stuck-planned")
        make_idle(conn, "stuck-planned", 2 * HOUR)

    reaper = TaskReaper(pool, DEADLINES, max_recoveries=3)
    assert reaper.reap() == []
    assert reaper.recovered_total == 1
    with pool.connection() as conn:
        task = get_task(conn, "stuck-planned")
        [row] = [r for r in outbox_rows(conn) if r.id == row_id]
        last = task_history(conn, "stuck-planned")[-1]
        recoveries = conn.execute(
            "SELECT recoveries FROM tasks WHERE task_id = 'stuck-planned'"
        ).fetchone()
    assert task.state is State.PLANNED
    assert row.published_at is None and row.event_id == "ready-stuck-planned"
    assert recoveries == (1,)
    assert (last.from_state, last.to_state) == (State.PLANNED, State.PLANNED)
    assert last.detail is not None and last.detail["by"] == "recoverer"
    assert "republished its blueprint-ready event" in last.detail["action"]
    # The clock restarted: a second pass right away does nothing more.
    assert reaper.reap() == [] and reaper.recovered_total == 1


def test_stuck_queued_revision_gets_its_revision_event_republished(pool: ConnectionPool) -> None:
    """The reaper republishes by topic: a revision task stuck in queued gets its own
    choreography.revision.requested out again (same event id), like a request."""
    document = build_blueprint([MovePlan(clip_uri="moves/m.mp4", counts=8)], task_id="t-parent")
    with pool.connection() as conn:
        create_task(conn, "t-parent", "song", {"path": "song"})
        insert_blueprint(conn, "t-parent", "1", document)
    submitted = submit_revision(
        pool, {"task_id": "stuck-revision", "parent_task_id": "t-parent", "redo": "1"}
    )
    with pool.connection() as conn:
        conn.autocommit = True
        conn.execute("UPDATE outbox SET published_at = now()")
        make_idle(conn, "stuck-revision", 2 * HOUR)

    reaper = TaskReaper(pool, DEADLINES, max_recoveries=3)
    assert reaper.reap() == [] and reaper.recovered_total == 1
    with pool.connection() as conn:
        [row] = [r for r in outbox_rows(conn) if r.event_id == submitted.event_id]
        last = task_history(conn, "stuck-revision")[-1]
    assert row.published_at is None and row.topic == "choreography-requests"
    assert row.attributes["ce-type"] == REVISION_REQUESTED_V1
    assert last.detail is not None
    assert last.detail["action"] == f"republished its choreography-requests event {row.event_id}"


def test_task_is_failed_after_its_recoveries_are_spent(pool: ConnectionPool) -> None:
    """After RECOVERY_MAX_ATTEMPTS recoveries that did not help, the task fails with the count."""
    with pool.connection() as conn:
        conn.autocommit = True
        task_in(conn, "hopeless", State.PLANNED)
        published_ready(conn, "hopeless")
    reaper = TaskReaper(pool, DEADLINES, max_recoveries=2)
    for _ in range(2):
        with pool.connection() as conn:
            conn.autocommit = True
            make_idle(conn, "hopeless", 2 * HOUR)
        assert reaper.reap() == []
    with pool.connection() as conn:
        conn.autocommit = True
        make_idle(conn, "hopeless", 2 * HOUR)
    assert [t.task_id for t in reaper.reap()] == ["hopeless"]
    with pool.connection() as conn:
        task = get_task(conn, "hopeless")
        assert len(failures(conn)["hopeless"]) == 1
    assert task.state is State.FAILED
    assert "2 recoveries did not help" in (task.error or "")


def test_dispatched_task_whose_job_exited_is_started_again(pool: ConnectionPool) -> None:
    """A dispatched task whose execution ended without a result gets its execution queued again."""
    with pool.connection() as conn:
        conn.autocommit = True
        task_in(conn, "job-gone", State.DISPATCHED)
        conn.execute(
            "INSERT INTO job_executions (task_id, execution_name, launcher, state, attempts) "
            "VALUES ('job-gone', 'exec-job-gone', 'local', 'exited', 1)"
        )
        make_idle(conn, "job-gone", 2 * HOUR)
    assert TaskReaper(pool, DEADLINES).reap() == []
    with pool.connection() as conn:
        state = conn.execute(
            "SELECT state FROM job_executions WHERE task_id = 'job-gone'"
        ).fetchone()
        assert get_task(conn, "job-gone").state is State.DISPATCHED
    assert state == ("queued",)


def test_job_waiting_for_a_runner_is_not_counted_as_lost(pool: ConnectionPool) -> None:
    """A queued execution (the runners are busy) is waiting: no recovery, no failure."""
    with pool.connection() as conn:
        conn.autocommit = True
        task_in(conn, "job-waits", State.DISPATCHED)
        conn.execute(
            "INSERT INTO job_executions (task_id, execution_name, launcher) "
            "VALUES ('job-waits', 'exec-job-waits', 'local')"
        )
        make_idle(conn, "job-waits", 2 * HOUR)
    reaper = TaskReaper(pool, DEADLINES)
    assert reaper.reap() == [] and reaper.recovered_total == 0
    with pool.connection() as conn:
        assert get_task(conn, "job-waits").state is State.DISPATCHED
