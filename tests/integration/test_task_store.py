"""The task store on a real PostgreSQL: creation, compare-and-set transitions and their history."""

from __future__ import annotations

import threading

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from lifecycle.task_store import create_task, get_task, task_history, transition
from schemas.errors import InvalidInput, NotFound
from schemas.task_state import IllegalTransition, StaleState, State

pytestmark = pytest.mark.integration

REQUEST = {"song_id": "song-1", "constraints": {"difficulty": "beginner", "duration_s": 120.5}}


def _walk_to_rendering(conn: psycopg.Connection, task_id: str) -> None:
    create_task(conn, task_id, "song", REQUEST)
    transition(conn, task_id, State.QUEUED, State.ANALYZING)
    transition(conn, task_id, State.ANALYZING, State.PLANNED)
    transition(conn, task_id, State.PLANNED, State.DISPATCHED)
    transition(conn, task_id, State.DISPATCHED, State.RENDERING)


def _finish(pool: ConnectionPool, task_id: str) -> None:
    with pool.connection() as conn:
        _walk_to_rendering(conn, task_id)
        transition(conn, task_id, State.RENDERING, State.COMPLETED, video_uri="videos/t.mp4")


def test_happy_path_records_every_transition_with_its_fields(pool: ConnectionPool) -> None:
    """queued to completed sets each step's fields and leaves one history row per edge."""
    with pool.connection() as conn:
        created = create_task(conn, "t-1", "song", REQUEST)
        assert created.created
        assert created.task.state is State.QUEUED
        assert created.task.request == REQUEST
        transition(conn, "t-1", State.QUEUED, State.ANALYZING, song_id="song-1")
        transition(conn, "t-1", State.ANALYZING, State.PLANNED, detail={"moves": 12})
        transition(conn, "t-1", State.PLANNED, State.DISPATCHED, execution_name="exec-7")
        transition(conn, "t-1", State.DISPATCHED, State.RENDERING, progress=40.0)
        done = transition(
            conn, "t-1", State.RENDERING, State.COMPLETED, video_uri="videos/t-1.mp4", progress=100
        )
        history = task_history(conn, "t-1")
    assert done.state is State.COMPLETED
    assert (done.song_id, done.execution_name, done.video_uri, done.progress) == (
        "song-1",
        "exec-7",
        "videos/t-1.mp4",
        100.0,
    )
    assert done.updated_at > created.task.updated_at
    assert [(row.from_state, row.to_state) for row in history] == [
        (None, State.QUEUED),
        (State.QUEUED, State.ANALYZING),
        (State.ANALYZING, State.PLANNED),
        (State.PLANNED, State.DISPATCHED),
        (State.DISPATCHED, State.RENDERING),
        (State.RENDERING, State.COMPLETED),
    ]
    assert history[2].detail == {"moves": 12}


def test_failing_from_a_set_of_states_records_the_actual_previous_state(
    pool: ConnectionPool,
) -> None:
    """A transition expecting several states logs the one the task was really in, and why."""
    with pool.connection() as conn:
        create_task(conn, "t-1", "describe", {"text": "energetic hip-hop"})
        transition(conn, "t-1", State.QUEUED, State.ANALYZING)
        failed = transition(
            conn,
            "t-1",
            {State.QUEUED, State.ANALYZING, State.PLANNED},
            State.FAILED,
            error="no song matches",
            error_stage="analysis",
        )
        last = task_history(conn, "t-1")[-1]
    assert (failed.state, failed.error, failed.error_stage) == (
        State.FAILED,
        "no song matches",
        "analysis",
    )
    assert (last.from_state, last.to_state) == (State.ANALYZING, State.FAILED)


def test_creating_the_same_request_twice_is_idempotent(pool: ConnectionPool) -> None:
    """A repeated identical create returns the stored task, created=False, with no new history."""
    with pool.connection() as conn:
        first = create_task(conn, "t-1", "song", REQUEST)
        again = create_task(conn, "t-1", "song", dict(reversed(list(REQUEST.items()))))
        history = task_history(conn, "t-1")
    assert (first.created, again.created) == (True, False)
    assert again.task == first.task
    assert len(history) == 1


def test_a_different_request_under_an_existing_id_is_refused(pool: ConnectionPool) -> None:
    """Reusing a task id for a different request raises InvalidInput and keeps the original."""
    with pool.connection() as conn:
        create_task(conn, "t-1", "song", REQUEST)
        with pytest.raises(InvalidInput, match="'t-1' already exists with a different request"):
            create_task(conn, "t-1", "song", {"song_id": "song-2"})
        with pytest.raises(InvalidInput, match="different request"):
            create_task(conn, "t-1", "describe", REQUEST)
        assert get_task(conn, "t-1").request == REQUEST


@pytest.mark.parametrize(
    ("task_id", "path", "request_document", "message"),
    [
        ("", "song", {}, "task_id must be a non-empty string"),
        ("t-1", "dance", {}, "path must be one of"),
        ("t-1", "song", ["not", "an", "object"], "request must be a JSON object"),
        ("t-1", "song", {"tempo": float("nan")}, "request is not a JSON document"),
    ],
)
def test_create_rejects_bad_input_by_name(
    pool: ConnectionPool, task_id: str, path: str, request_document: object, message: str
) -> None:
    """Bad task ids, paths and requests are refused with InvalidInput naming the problem."""
    with pool.connection() as conn:
        with pytest.raises(InvalidInput, match=message):
            create_task(conn, task_id, path, request_document)  # type: ignore[arg-type]
        assert conn.execute("SELECT count(*) FROM tasks").fetchone() == (0,)


def test_illegal_transition_is_refused_before_touching_the_database(
    pool: ConnectionPool, database_url: str
) -> None:
    """completed -> rendering is refused even on a closed connection, and nothing changes."""
    _finish(pool, "t-1")
    closed = psycopg.connect(database_url)
    closed.close()
    with pytest.raises(IllegalTransition, match="completed -> rendering"):
        transition(closed, "t-1", State.COMPLETED, State.RENDERING)
    with pool.connection() as conn:
        with pytest.raises(IllegalTransition):
            transition(conn, "t-1", State.COMPLETED, State.RENDERING)
        assert get_task(conn, "t-1").state is State.COMPLETED
        assert len(task_history(conn, "t-1")) == 6


def test_stale_compare_and_set_raises_naming_the_actual_state(pool: ConnectionPool) -> None:
    """Expecting queued while the task is analyzing raises StaleState(actual=analyzing)."""
    with pool.connection() as conn:
        create_task(conn, "t-1", "song", REQUEST)
        transition(conn, "t-1", State.QUEUED, State.ANALYZING)
        with pytest.raises(StaleState, match="is in state analyzing, expected one of: queued") as e:
            transition(conn, "t-1", State.QUEUED, State.ANALYZING)
        assert e.value.actual is State.ANALYZING
        assert get_task(conn, "t-1").state is State.ANALYZING
        assert len(task_history(conn, "t-1")) == 2


def _race_from_queued(pool: ConnectionPool, task_id: str) -> list[object]:
    """Two threads, released together, each try queued -> analyzing; return what each got."""
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def move() -> None:
        with pool.connection() as conn:
            barrier.wait()
            try:
                outcomes.append(transition(conn, task_id, State.QUEUED, State.ANALYZING))
            except StaleState as error:
                outcomes.append(error)

    threads = [threading.Thread(target=move) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_concurrent_transitions_exactly_one_wins(pool: ConnectionPool) -> None:
    """Two threads moving the same task from queued at once: one succeeds, one sees StaleState."""
    for attempt in range(5):
        task_id = f"t-{attempt}"
        with pool.connection() as conn:
            create_task(conn, task_id, "song", REQUEST)
        outcomes = _race_from_queued(pool, task_id)
        stale = [outcome for outcome in outcomes if isinstance(outcome, StaleState)]
        assert len(outcomes) == 2
        assert len(stale) == 1
        assert stale[0].actual is State.ANALYZING
        with pool.connection() as conn:
            edges = [(row.from_state, row.to_state) for row in task_history(conn, task_id)]
        assert edges == [(None, State.QUEUED), (State.QUEUED, State.ANALYZING)]


def test_transition_composes_with_the_callers_transaction(pool: ConnectionPool) -> None:
    """Inside a caller's transaction a transition commits or rolls back together with it."""
    with pool.connection() as conn:
        create_task(conn, "t-1", "song", REQUEST)
        with conn.transaction() as outer:
            transition(conn, "t-1", State.QUEUED, State.ANALYZING)
            conn.execute("INSERT INTO processed_events (consumer, event_id) VALUES ('c', 'e-1')")
            raise psycopg.Rollback(outer)
        assert get_task(conn, "t-1").state is State.QUEUED
        assert len(task_history(conn, "t-1")) == 1
        assert conn.execute("SELECT count(*) FROM processed_events").fetchone() == (0,)


def test_a_refused_transition_leaves_the_callers_transaction_usable(pool: ConnectionPool) -> None:
    """A database-refused or stale transition inside a caller's transaction undoes only itself."""
    with pool.connection() as conn:
        _walk_to_rendering(conn, "t-1")
        with conn.transaction():
            conn.execute("INSERT INTO processed_events (consumer, event_id) VALUES ('c', 'e-1')")
            with pytest.raises(InvalidInput, match="tasks_completed_has_video"):
                transition(conn, "t-1", State.RENDERING, State.COMPLETED)
            with pytest.raises(StaleState):
                transition(conn, "t-1", State.DISPATCHED, State.RENDERING)
            transition(conn, "t-1", State.RENDERING, State.COMPLETED, video_uri="videos/t-1.mp4")
        assert conn.execute("SELECT count(*) FROM processed_events").fetchone() == (1,)
        assert get_task(conn, "t-1").state is State.COMPLETED


def test_completed_without_a_video_uri_is_refused_by_name(pool: ConnectionPool) -> None:
    """Completing a task that never got a video_uri raises InvalidInput naming the constraint."""
    with pool.connection() as conn:
        _walk_to_rendering(conn, "t-1")
        with pytest.raises(InvalidInput, match="tasks_completed_has_video"):
            transition(conn, "t-1", State.RENDERING, State.COMPLETED)
        assert get_task(conn, "t-1").state is State.RENDERING


@pytest.mark.parametrize(
    ("to", "fields", "message"),
    [
        (State.ANALYZING, {"state": "completed"}, "transition cannot set state"),
        (State.ANALYZING, {"progress": 101}, "progress must be between 0 and 100"),
        (State.ANALYZING, {"progress": "half"}, "progress must be a number"),
        (State.ANALYZING, {"song_id": 7}, "song_id must be a string or None"),
        (State.FAILED, {}, "a transition to failed must say why"),
    ],
)
def test_transition_rejects_bad_fields_by_name(
    pool: ConnectionPool, to: State, fields: dict[str, object], message: str
) -> None:
    """Unknown columns, out-of-range progress and a reasonless failure are refused by name."""
    with pool.connection() as conn:
        create_task(conn, "t-1", "song", REQUEST)
        with pytest.raises(InvalidInput, match=message):
            transition(conn, "t-1", State.QUEUED, to, **fields)
        assert get_task(conn, "t-1").state is State.QUEUED


def test_unknown_task_is_not_found(pool: ConnectionPool) -> None:
    """Reading or moving a task that does not exist raises NotFound naming its id."""
    with pool.connection() as conn:
        with pytest.raises(NotFound, match="'nope'"):
            get_task(conn, "nope")
        with pytest.raises(NotFound, match="'nope'"):
            transition(conn, "nope", State.QUEUED, State.ANALYZING)
        assert task_history(conn, "nope") == []
