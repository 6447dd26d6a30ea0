"""The ports' one contract, held by both implementations: PostgreSQL and ``tests/fakes.py``.

Every test runs twice, on the PostgreSQL unit of work (inside a transaction on a fresh database,
as the runtime runs a handler) and on the in-memory fake, and asserts the same outcome: so the
handler tests on the fakes stand for what the handlers do on PostgreSQL, and a fake that drifts
from the SQL fails here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import psycopg
import pytest

from lifecycle.blueprints import get_blueprint_document
from lifecycle.executions import get_execution
from lifecycle.outbox import outbox_rows
from lifecycle.ports import LockedTask, TaskRow, UnitOfWork
from lifecycle.task_store import create_task, get_task, task_history
from lifecycle.unit_of_work import PostgresUnitOfWork
from schemas.errors import InvalidInput, NotFound
from schemas.event_envelope import new_event
from schemas.events import SOURCE_JOB, TaskFailed
from schemas.task_state import IllegalTransition, StaleState, State
from tests.fakes import FakeDatabase

pytestmark = pytest.mark.integration

T = TypeVar("T")


class Backend(Protocol):
    """One implementation of the ports, and a way to look at what it committed."""

    def create(self, task_id: str) -> None: ...

    def run(self, work: Callable[[UnitOfWork], T]) -> T: ...

    def task(self, task_id: str) -> TaskRow: ...

    def states(self, task_id: str) -> list[State]: ...

    def blueprint(self, task_id: str) -> dict[str, Any] | None: ...

    def outbox_ids(self) -> list[str]: ...

    def execution(self, task_id: str) -> tuple[str, str, dict[str, str]] | None: ...


class Postgres:
    """The PostgreSQL adapters, each ``run`` one transaction on one connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def create(self, task_id: str) -> None:
        create_task(self.conn, task_id, "song", {"path": "song"})

    def run(self, work: Callable[[UnitOfWork], T]) -> T:
        with self.conn.transaction():
            return work(PostgresUnitOfWork.on(self.conn))

    def task(self, task_id: str) -> TaskRow:
        return get_task(self.conn, task_id)

    def states(self, task_id: str) -> list[State]:
        return [row.to_state for row in task_history(self.conn, task_id)]

    def blueprint(self, task_id: str) -> dict[str, Any] | None:
        return get_blueprint_document(self.conn, task_id)

    def outbox_ids(self) -> list[str]:
        return [row.event_id for row in outbox_rows(self.conn)]

    def execution(self, task_id: str) -> tuple[str, str, dict[str, str]] | None:
        row = get_execution(self.conn, task_id)
        return None if row is None else (row.execution_name, row.launcher, row.env)


class Fake:
    """The fakes, each ``run`` one :meth:`FakeDatabase.transaction`."""

    def __init__(self) -> None:
        self.db = FakeDatabase()

    def create(self, task_id: str) -> None:
        self.db.add_task(task_id, request={"path": "song"})

    def run(self, work: Callable[[UnitOfWork], T]) -> T:
        with self.db.transaction() as fake:
            return work(fake)

    def task(self, task_id: str) -> TaskRow:
        return self.db.task(task_id)

    def states(self, task_id: str) -> list[State]:
        return self.db.states(task_id)

    def blueprint(self, task_id: str) -> dict[str, Any] | None:
        stored = self.db.blueprints.get(task_id)
        return None if stored is None else stored[1]

    def outbox_ids(self) -> list[str]:
        return [event.id for event in self.db.outbox_events()]

    def execution(self, task_id: str) -> tuple[str, str, dict[str, str]] | None:
        row = self.db.executions.get(task_id)
        return None if row is None else (row.execution_name, row.launcher, row.env)


@pytest.fixture(params=["postgres", "fake"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """Each implementation in turn (PostgreSQL on a fresh database of its own)."""
    if request.param == "fake":
        yield Fake()
        return
    url = request.getfixturevalue("database_url")
    with psycopg.connect(url, autocommit=True) as conn:
        yield Postgres(conn)


def test_lock_reads_state_and_execution_and_none_for_no_task(backend: Backend) -> None:
    """``lock`` answers the state and execution name; None when there is no such task."""
    backend.create("t-lock")
    assert backend.run(lambda w: w.tasks.lock("t-lock")) == LockedTask(State.QUEUED, None)
    assert backend.run(lambda w: w.tasks.lock("t-none")) is None


def test_transitions_follow_the_happy_path_and_set_their_fields(backend: Backend) -> None:
    """Each CAS moves the state, sets its fields and adds one history row."""
    backend.create("t-walk")

    def walk(work: UnitOfWork) -> TaskRow:
        work.tasks.transition("t-walk", State.QUEUED, State.ANALYZING, detail={"by": "test"})
        work.tasks.transition("t-walk", State.ANALYZING, State.PLANNED, song_id="s-1")
        work.tasks.transition(
            "t-walk", State.PLANNED, State.DISPATCHED, execution_name="local-t-walk"
        )
        work.tasks.transition("t-walk", frozenset({State.DISPATCHED}), State.RENDERING)
        return work.tasks.transition(
            "t-walk", State.RENDERING, State.COMPLETED, video_uri="videos/t.mp4", progress=100
        )

    returned = backend.run(walk)
    task = backend.task("t-walk")
    assert returned.state is task.state is State.COMPLETED
    assert (task.song_id, task.execution_name, task.video_uri) == (
        "s-1", "local-t-walk", "videos/t.mp4",
    )  # fmt: skip
    assert task.progress == 100
    assert backend.states("t-walk") == [
        State.QUEUED, State.ANALYZING, State.PLANNED, State.DISPATCHED, State.RENDERING,
        State.COMPLETED,
    ]  # fmt: skip
    assert backend.run(lambda w: w.tasks.lock("t-walk")) == LockedTask(
        State.COMPLETED, "local-t-walk"
    )


def test_a_missed_cas_is_stale_and_leaves_the_transaction_usable(backend: Backend) -> None:
    """StaleState names the expected and the real state, writes nothing, and what the same
    transaction does next still commits (a savepoint on PostgreSQL)."""
    backend.create("t-stale")

    def stale_then_move(work: UnitOfWork) -> StaleState:
        try:
            work.tasks.transition("t-stale", State.PLANNED, State.DISPATCHED)
        except StaleState as stale:
            work.tasks.transition("t-stale", State.QUEUED, State.ANALYZING)
            return stale
        raise AssertionError("the CAS should have missed")

    stale = backend.run(stale_then_move)
    assert stale.actual is State.QUEUED and stale.expected == frozenset({State.PLANNED})
    assert str(stale) == "task 't-stale' is in state queued, expected one of: planned"
    assert backend.states("t-stale") == [State.QUEUED, State.ANALYZING]


@pytest.mark.parametrize(
    ("expected", "to"),
    [
        (State.QUEUED, State.PLANNED),
        (State.COMPLETED, State.FAILED),
        (frozenset({State.PLANNED, State.QUEUED}), State.DISPATCHED),
    ],
)
def test_an_illegal_edge_is_refused_before_anything(
    backend: Backend, expected: Any, to: State
) -> None:
    """The state machine's IllegalTransition, whatever state the task is in."""
    backend.create("t-illegal")
    with pytest.raises(IllegalTransition):
        backend.run(lambda w: w.tasks.transition("t-illegal", expected, to, error="x"))
    assert backend.task("t-illegal").state is State.QUEUED


@pytest.mark.parametrize(
    ("to", "fields", "message"),
    [
        (State.ANALYZING, {"state": "planned"}, "cannot set state"),
        (State.ANALYZING, {"progress": 101}, "between 0 and 100"),
        (State.ANALYZING, {"song_id": 7}, "song_id must be a string"),
        (State.FAILED, {}, "must say why"),
    ],
)
def test_bad_fields_are_invalid_input(
    backend: Backend, to: State, fields: dict[str, Any], message: str
) -> None:
    """Fields a transition may not set, or values it may not store, are InvalidInput."""
    backend.create("t-fields")
    with pytest.raises(InvalidInput, match=message):
        backend.run(lambda w: w.tasks.transition("t-fields", State.QUEUED, to, **fields))
    assert backend.states("t-fields") == [State.QUEUED]


def test_completed_without_a_video_violates_the_table_check(backend: Backend) -> None:
    """tasks_completed_has_video: refused as InvalidInput naming the constraint."""
    backend.create("t-novideo")

    def complete(work: UnitOfWork) -> None:
        for here, there in [
            (State.QUEUED, State.ANALYZING), (State.ANALYZING, State.PLANNED),
            (State.PLANNED, State.DISPATCHED), (State.DISPATCHED, State.RENDERING),
        ]:  # fmt: skip
            work.tasks.transition("t-novideo", here, there)
        work.tasks.transition("t-novideo", State.RENDERING, State.COMPLETED)

    with pytest.raises(InvalidInput, match="violates tasks_completed_has_video"):
        backend.run(complete)
    assert backend.states("t-novideo") == [State.QUEUED]  # the whole transaction rolled back


def test_transition_of_a_missing_task_is_not_found(backend: Backend) -> None:
    """No such task: NotFound."""
    with pytest.raises(NotFound, match="no task with task_id 't-ghost'"):
        backend.run(lambda w: w.tasks.transition("t-ghost", State.QUEUED, State.ANALYZING))


def test_one_blueprint_per_task(backend: Backend) -> None:
    """The first insert stores the document; a second is refused and changes nothing."""
    backend.create("t-bp")
    first = {"task_id": "t-bp", "moves_used": [1, 2.5, "x"], "song": {"title": "café"}}
    assert backend.run(lambda w: w.blueprints.insert("t-bp", "1", first)) is True
    assert backend.run(lambda w: w.blueprints.insert("t-bp", "1", {"other": True})) is False
    assert backend.blueprint("t-bp") == first
    assert backend.run(lambda w: w.blueprints.read("t-bp")) == first
    assert backend.run(lambda w: w.blueprints.read("t-none")) is None


def test_the_outbox_is_idempotent_on_the_event_id(backend: Backend) -> None:
    """The same event appended twice is one row, with one id."""
    backend.create("t-out")
    failure = TaskFailed(
        task_id="t-out", stage="render", reason="r", error_code="e", failed_at=datetime.now(UTC)
    )
    event = new_event(failure, source=SOURCE_JOB)
    ids = backend.run(lambda w: (w.outbox.append(event), w.outbox.append(event)))
    assert ids[0] == ids[1]
    assert backend.outbox_ids() == [event.id]


def test_one_execution_per_task(backend: Backend) -> None:
    """The first record stores the execution; a second for the task is refused."""
    backend.create("t-exec")
    env = {"JOB_TASK_ID": "t-exec", "JOB_EXECUTION": "local-t-exec"}
    assert backend.run(lambda w: w.executions.record("t-exec", "local-t-exec", "local", env))
    again = backend.run(lambda w: w.executions.record("t-exec", "other", "cloud-run", {}))
    assert again is False
    assert backend.execution("t-exec") == ("local-t-exec", "local", env)


def test_an_error_rolls_back_every_port(backend: Backend) -> None:
    """A failure after writes through every port leaves none of them: one transaction."""
    backend.create("t-undo")
    failure = TaskFailed(
        task_id="t-undo", stage="render", reason="r", error_code="e", failed_at=datetime.now(UTC)
    )

    def write_then_fail(work: UnitOfWork) -> None:
        work.tasks.transition("t-undo", State.QUEUED, State.ANALYZING)
        work.blueprints.insert("t-undo", "1", {"task_id": "t-undo"})
        work.outbox.append(new_event(failure, source=SOURCE_JOB))
        work.executions.record("t-undo", "local-t-undo", "local", {})
        raise RuntimeError("the handler failed after writing")

    with pytest.raises(RuntimeError):
        backend.run(write_then_fail)
    assert backend.states("t-undo") == [State.QUEUED]
    assert backend.blueprint("t-undo") is None
    assert backend.outbox_ids() == [] and backend.execution("t-undo") is None
