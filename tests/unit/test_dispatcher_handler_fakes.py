"""The dispatcher's handler on the in-memory ports (``tests/fakes.py``), no database.

The same rules ``tests/integration/test_dispatcher_local.py`` and ``test_dispatcher_cloud_run.py``
check on PostgreSQL: one execution per task, recorded with ``planned -> dispatched`` in the
event's transaction, and nothing at all when anything fails.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from consumers.dispatcher.handler import CONSUMER, Dispatcher, TaskNotPlanned
from consumers.dispatcher.launcher import LaunchRejected
from lifecycle.ports import LockedTask, UnitOfWork, execution_name_for
from schemas.blueprint import BlueprintInvalid
from schemas.errors import InvalidInput, NotFound
from schemas.event_envelope import ChoreoEvent, Delivery, new_event
from schemas.events import SOURCE_BLUEPRINT_CONSUMER, SOURCE_JOB, BlueprintReady, VideoCompleted
from schemas.task_state import StaleState, State
from tests.fakes import FakeDatabase, FakeTaskLock, FakeUnitOfWork, RecordingStash, deliver
from tests.fixtures.blueprints import TEST_CLIPS, MovePlan, build_blueprint


def ready(task_id: str) -> ChoreoEvent:
    """A ``blueprint.ready`` for the task (a new CloudEvent id each call)."""
    payload = BlueprintReady(
        task_id=task_id, schema_version="1", audio_uri="songs/tone.m4a", duration_s=2, moves_count=2
    )
    return new_event(payload, source=SOURCE_BLUEPRINT_CONSUMER)


def planned(db: FakeDatabase, task_id: str, **blueprint: object) -> dict[str, object]:
    """A planned task with a two-move blueprint stored; the document."""
    document = build_blueprint(
        [MovePlan(TEST_CLIPS[0].key), MovePlan(TEST_CLIPS[1].key)], task_id=task_id, **blueprint
    )
    db.add_task(task_id, State.PLANNED)
    db.blueprints[task_id] = ("1", document)
    return document


def dispatcher(stash: RecordingStash | None = None, **options: object) -> Dispatcher:
    """A dispatcher with a recording stash; a generous environment limit unless given."""
    options.setdefault("max_env_bytes", 28672)
    return Dispatcher(stash or RecordingStash(), **options)  # type: ignore[arg-type]


def test_ready_records_one_execution_with_the_dispatch() -> None:
    """planned -> dispatched with the execution name, and the execution row, in one event."""
    db = FakeDatabase()
    document = planned(db, "t-ok")
    assert deliver(db, CONSUMER, dispatcher().handle, ready("t-ok"))
    task = db.task("t-ok")
    assert task.state is State.DISPATCHED and task.execution_name == "local-t-ok"
    execution = db.executions["t-ok"]
    assert execution.execution_name == "local-t-ok" and execution.launcher == "local"
    assert execution.env["JOB_TASK_ID"] == "t-ok"
    assert execution.env["JOB_EXECUTION"] == "local-t-ok"
    assert json.loads(execution.env["BLUEPRINT_JSON"]) == document
    assert db.locks == ["t-ok"]
    detail = db.history[-1].detail
    assert detail is not None and detail["blueprint_via"] == "env" and detail["launcher"] == "local"
    assert db.outbox == {}  # the dispatcher announces nothing: the job does


def test_cloud_run_execution_gets_its_deterministic_launch_id() -> None:
    """With the Cloud Run launcher the execution name is the task's hashed launch id."""
    db = FakeDatabase()
    planned(db, "t-cloud")
    deliver(db, CONSUMER, dispatcher(launcher="cloud-run").handle, ready("t-cloud"))
    name = execution_name_for("t-cloud", "cloud-run")
    assert name.startswith("choreo-") and db.task("t-cloud").execution_name == name
    assert db.executions["t-cloud"].launcher == "cloud-run"
    assert db.executions["t-cloud"].env["JOB_EXECUTION"] == name


def test_blueprint_over_the_limit_travels_by_uri() -> None:
    """Above max_env_bytes the blueprint goes to the stash and the job gets BLUEPRINT_URI."""
    db = FakeDatabase()
    planned(db, "t-big")
    stash = RecordingStash()
    deliver(db, CONSUMER, dispatcher(stash, max_env_bytes=64).handle, ready("t-big"))
    env = db.executions["t-big"].env
    assert env["BLUEPRINT_URI"] == "gs://bucket/blueprints/t-big.json"
    assert "BLUEPRINT_JSON" not in env
    assert json.loads(stash.stored["t-big"])["task_id"] == "t-big"


def test_the_same_event_delivered_twice_is_handled_once() -> None:
    """A redelivery of the same CloudEvent is a duplicate: the handler does not run again."""
    db = FakeDatabase()
    planned(db, "t-dup")
    handle, event = dispatcher().handle, ready("t-dup")
    assert deliver(db, CONSUMER, handle, event) is True
    assert deliver(db, CONSUMER, handle, event) is False
    assert db.states("t-dup").count(State.DISPATCHED) == 1
    assert list(db.executions) == ["t-dup"]


@pytest.mark.parametrize("later", [State.DISPATCHED, State.RENDERING, State.COMPLETED])
def test_a_second_ready_for_a_dispatched_task_records_nothing(later: State) -> None:
    """Another blueprint.ready (a new CloudEvent id) for a task at or past dispatched: no second
    execution, no state change, and it is acknowledged (no error)."""
    db = FakeDatabase()
    planned(db, "t-again")
    handle = dispatcher().handle
    deliver(db, CONSUMER, handle, ready("t-again"))
    first = db.executions["t-again"]
    db.force("t-again", state=later, video_uri="videos/t.mp4")
    history = list(db.history)
    assert deliver(db, CONSUMER, handle, ready("t-again")) is True
    assert db.executions == {"t-again": first}
    assert db.history == history and db.task("t-again").state is later


def test_a_task_with_an_execution_is_never_dispatched_again() -> None:
    """A planned task already carrying an execution name (recorded, then failed back) is left."""
    db = FakeDatabase()
    planned(db, "t-named")
    db.force("t-named", execution_name="local-t-named")
    deliver(db, CONSUMER, dispatcher().handle, ready("t-named"))
    assert db.task("t-named").state is State.PLANNED and db.executions == {}


@pytest.mark.parametrize("early", [State.QUEUED, State.ANALYZING])
def test_ready_before_the_task_is_planned_is_retried_and_changes_nothing(early: State) -> None:
    """A task not planned yet: TaskNotPlanned (transient), the claim rolled back with it."""
    db = FakeDatabase()
    db.add_task("t-early", early)
    event = ready("t-early")
    with pytest.raises(TaskNotPlanned, match="not planned"):
        deliver(db, CONSUMER, dispatcher().handle, event)
    assert db.task("t-early").state is early
    assert db.executions == {} and db.processed == set()


def test_ready_for_a_failed_task_records_nothing() -> None:
    """A task failed before dispatch is terminal: the ready event is acknowledged, nothing runs."""
    db = FakeDatabase()
    db.add_task("t-failed", State.FAILED, error="no moves")
    assert deliver(db, CONSUMER, dispatcher().handle, ready("t-failed"))
    assert db.task("t-failed").state is State.FAILED and db.executions == {}


def test_unknown_task_is_not_found() -> None:
    """blueprint.ready for a task that does not exist is permanent (NotFound)."""
    db = FakeDatabase()
    with pytest.raises(NotFound, match="no task"):
        deliver(db, CONSUMER, dispatcher().handle, ready("t-missing"))
    assert db.processed == set()


def test_missing_blueprint_is_not_found_and_the_task_stays_planned() -> None:
    """A planned task without a stored blueprint: NotFound, nothing written."""
    db = FakeDatabase()
    db.add_task("t-nobp", State.PLANNED)
    with pytest.raises(NotFound, match="no blueprint"):
        deliver(db, CONSUMER, dispatcher().handle, ready("t-nobp"))
    assert db.task("t-nobp").state is State.PLANNED and db.executions == {}


def test_invalid_blueprint_is_refused_before_anything_is_recorded() -> None:
    """A stored document that breaks the blueprint contract fails the parse; nothing recorded."""
    db = FakeDatabase()
    planned(db, "t-bad")
    db.blueprints["t-bad"][1]["moves_used"] = "not a list"
    with pytest.raises(BlueprintInvalid):
        deliver(db, CONSUMER, dispatcher().handle, ready("t-bad"))
    assert db.task("t-bad").state is State.PLANNED and db.executions == {}


def test_blueprint_naming_another_task_is_invalid_input() -> None:
    """A blueprint stored under one task but naming another is refused as invalid input."""
    db = FakeDatabase()
    planned(db, "t-mine")
    db.blueprints["t-mine"] = ("1", build_blueprint([MovePlan("moves/a.mp4")], task_id="t-other"))
    with pytest.raises(InvalidInput, match="names task_id 't-other'"):
        deliver(db, CONSUMER, dispatcher().handle, ready("t-mine"))
    assert db.executions == {}


def test_wrong_event_type_is_invalid_input() -> None:
    """The dispatcher handles blueprint.ready only; anything else is refused untouched."""
    db = FakeDatabase()
    planned(db, "t-type")
    done = VideoCompleted(
        task_id="t-type", video_uri="videos/t.mp4", duration_s=1, width=640, height=360, fps=24,
        size_bytes=1, completed_at=datetime.now(UTC),
    )  # fmt: skip
    with pytest.raises(InvalidInput, match=r"handles blueprint\.ready"):
        deliver(db, CONSUMER, dispatcher().handle, new_event(done, source=SOURCE_JOB))
    assert db.locks == [] and db.task("t-type").state is State.PLANNED


def test_a_failing_stash_rolls_back_the_whole_event() -> None:
    """The stash fails after the task was locked: no state change, no execution, no claim."""

    class RefusingStash(RecordingStash):
        def put(self, task_id: str, document: bytes) -> str:
            raise LaunchRejected("bucket is gone")

    db = FakeDatabase()
    planned(db, "t-stash")
    with pytest.raises(LaunchRejected):
        deliver(db, CONSUMER, dispatcher(RefusingStash(), max_env_bytes=8).handle, ready("t-stash"))
    assert db.task("t-stash").state is State.PLANNED
    assert db.executions == {} and db.processed == set()
    assert db.states("t-stash")[-1] is State.PLANNED


def test_an_execution_that_cannot_be_recorded_undoes_the_dispatch() -> None:
    """If recording the execution fails after the CAS, the dispatch is rolled back with it."""
    db = FakeDatabase()
    planned(db, "t-undo")

    def handle_then_fail(
        work: UnitOfWork, event: ChoreoEvent, delivery: Delivery[ChoreoEvent]
    ) -> None:
        dispatcher().handle(work, event, delivery)
        assert db.task("t-undo").state is State.DISPATCHED  # inside the transaction
        raise RuntimeError("connection lost before commit")

    with pytest.raises(RuntimeError):
        deliver(db, CONSUMER, handle_then_fail, ready("t-undo"))
    assert db.task("t-undo").state is State.PLANNED
    assert db.task("t-undo").execution_name is None and db.executions == {}
    assert deliver(db, CONSUMER, dispatcher().handle, ready("t-undo"))
    assert db.task("t-undo").state is State.DISPATCHED


@dataclass(frozen=True)
class UnlockedTasks(FakeTaskLock):
    """A task lock whose ``lock`` reports what the task was before another process moved it
    (as a read without ``FOR UPDATE`` would): the CAS is then the last line of defence."""

    seen: State = State.PLANNED

    def lock(self, task_id: str) -> LockedTask | None:
        return LockedTask(self.seen, None)


@dataclass(frozen=True)
class RacedWork(FakeUnitOfWork):
    """The fake unit of work with :class:`UnlockedTasks`."""

    @property
    def tasks(self) -> UnlockedTasks:
        return UnlockedTasks(self.db)


def test_a_missed_compare_and_set_is_stale_and_records_no_execution() -> None:
    """The task moved on (the reaper failed it) after the handler looked: the CAS planned ->
    dispatched raises StaleState with the real state, and no execution is recorded."""
    db = FakeDatabase()
    planned(db, "t-stale")
    db.force("t-stale", state=State.FAILED, error="stuck in planned")
    event = ready("t-stale")
    with pytest.raises(StaleState) as stale, db.transaction():
        dispatcher().handle(RacedWork(db), event, Delivery(event, transport="pubsub"))
    assert stale.value.actual is State.FAILED
    assert stale.value.expected == frozenset({State.PLANNED})
    assert db.executions == {} and db.task("t-stale").state is State.FAILED
