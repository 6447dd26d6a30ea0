"""In-memory fakes of the ports the handlers and services use, shared by every test.

``FakeDatabase`` holds the rows the PostgreSQL adapters of :mod:`lifecycle.unit_of_work` would
write, and :class:`FakeUnitOfWork` exposes them through the ports of :mod:`lifecycle.ports`. The
fakes keep the rules the real tables keep, using the same code where there is code to share:
the task state machine of ``schemas/task_state.py`` (``IllegalTransition``, ``StaleState``
with the state the task is really in), the transition field checks of
:mod:`lifecycle.task_store`, the two CHECK constraints on ``tasks``, one blueprint and one
execution per task, an outbox idempotent on the CloudEvent id. :meth:`FakeDatabase.transaction`
and :func:`deliver` stand in for the runtime's one transaction per event with its
``processed_events`` record: an exception leaves the rows as they were before the event.

:class:`FakePlanningWork` adds the blueprint consumer's song rows and move library. Beside them:
object storage (:class:`MemoryStorage`), a blueprint stash, a publisher and a job
launcher that record what they were asked.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blobstore.storage import ObjectTooLarge, PermanentStorageError, StorageKind
from consumers.dispatcher.launcher import LaunchRequest
from lifecycle.ports import Launcher, LockedTask, TaskRow
from lifecycle.task_store import PATHS, check_task_id, check_transition_fields
from producers.publishing import PublishFailed
from schemas.errors import InvalidInput, NotFound
from schemas.event_codec import to_pubsub
from schemas.event_envelope import ChoreoEvent, Delivery
from schemas.task_state import HAPPY_PATH, StaleState, State, check_transition

if TYPE_CHECKING:
    from choreography.moves.model import Move
    from choreography.planner.candidates import MoveCandidate
    from choreography.planner.song_choice import CatalogSong
    from consumers.blueprint_consumer.song_store import SongRow

# --- the database behind the lifecycle ports ---


@dataclass(frozen=True)
class FakeHistoryRow:
    """A ``task_history`` row as the fake keeps it."""

    task_id: str
    from_state: State | None
    to_state: State
    detail: dict[str, Any] | None


@dataclass(frozen=True)
class FakeExecution:
    """A ``job_executions`` row as the dispatcher records it."""

    task_id: str
    execution_name: str
    launcher: Launcher
    env: dict[str, str]


@dataclass
class FakeDatabase:
    """The tables the handlers write, in memory (see the module docstring)."""

    tasks: dict[str, TaskRow] = field(default_factory=dict)
    history: list[FakeHistoryRow] = field(default_factory=list)
    blueprints: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    outbox: dict[str, tuple[int, ChoreoEvent]] = field(default_factory=dict)
    executions: dict[str, FakeExecution] = field(default_factory=dict)
    processed: set[tuple[str, str]] = field(default_factory=set)
    locks: list[str] = field(default_factory=list)
    """Every ``lock`` call, in order (what a handler locked before changing anything)."""

    def add_task(
        self,
        task_id: str,
        state: State = State.QUEUED,
        *,
        path: str = "song",
        request: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> TaskRow:
        """A task walked to ``state`` through the legal edges (``failed`` from ``analyzing``);
        ``fields`` are set on the last step."""
        check_task_id(task_id)
        if path not in PATHS:
            raise InvalidInput(f"path must be one of {sorted(PATHS)}, got {path!r}")
        now = datetime.now(UTC)
        self.tasks[task_id] = TaskRow(
            task_id, State.QUEUED, path, dict(request or {"path": path}), None, None, None, None,
            None, 0.0, now, now,
        )  # fmt: skip
        self.history.append(FakeHistoryRow(task_id, None, State.QUEUED, None))
        tasks = FakeTaskLock(self)
        last = State.ANALYZING if state is State.FAILED else state
        walk = list(itertools.pairwise(HAPPY_PATH[: HAPPY_PATH.index(last) + 1]))
        if state is State.FAILED:
            walk.append((last, State.FAILED))
        for step, (here, there) in enumerate(walk, start=1):
            tasks.transition(task_id, here, there, **(fields if step == len(walk) else {}))
        return self.tasks[task_id]

    def force(self, task_id: str, **columns: Any) -> TaskRow:
        """Set the task's columns directly, past the state machine: what a test's hand-written
        ``UPDATE`` (or another process's commit) does behind a handler's back."""
        self.tasks[task_id] = replace(self.task(task_id), **columns)
        return self.tasks[task_id]

    def task(self, task_id: str) -> TaskRow:
        """The task's row, or ``NotFound``."""
        try:
            return self.tasks[task_id]
        except KeyError:
            raise NotFound(f"no task with task_id {task_id!r}") from None

    def states(self, task_id: str) -> list[State]:
        """The task's history as the states it entered, oldest first."""
        return [row.to_state for row in self.history if row.task_id == task_id]

    def outbox_events(self) -> list[ChoreoEvent]:
        """The queued events in insertion order."""
        return [event for _, event in sorted(self.outbox.values(), key=lambda row: row[0])]

    @contextmanager
    def transaction(self) -> Iterator[FakeUnitOfWork]:
        """One transaction: the ports on this database; an exception restores every row."""
        saved = copy.deepcopy(self._rows())
        try:
            yield FakeUnitOfWork(self)
        except BaseException:
            self._restore(saved)
            raise

    def _rows(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _TABLES}

    def _restore(self, saved: dict[str, Any]) -> None:
        for name, rows in saved.items():
            setattr(self, name, rows)


_TABLES = ("tasks", "history", "blueprints", "outbox", "executions", "processed")


def deliver(
    db: FakeDatabase,
    consumer: str,
    handle: Callable[[Any, ChoreoEvent, Delivery[ChoreoEvent]], None],
    event: ChoreoEvent,
    delivery: Delivery[ChoreoEvent] | None = None,
    *,
    work: FakeUnitOfWork | None = None,
) -> bool:
    """What the runtime does with one delivery (``run_once``): claim ``(consumer, event.id)``
    and run the handler in one transaction; False, without running it, for a duplicate. An
    exception rolls back the claim and the handler's writes, and propagates. ``work`` is the
    unit of work the handler gets (a :class:`FakePlanningWork` for the blueprint consumer);
    it must be on ``db``."""
    with db.transaction() as plain:
        key = (consumer, event.id)
        if key in db.processed:
            return False
        db.processed.add(key)
        handle(work or plain, event, delivery or Delivery(event, transport="pubsub"))
    return True


@dataclass(frozen=True)
class FakeTaskLock:
    """:class:`lifecycle.ports.TaskLock` on a :class:`FakeDatabase`."""

    db: FakeDatabase

    def lock(self, task_id: str) -> LockedTask | None:
        """The task's state and execution (the lock itself is only recorded)."""
        self.db.locks.append(task_id)
        row = self.db.tasks.get(task_id)
        return None if row is None else LockedTask(row.state, row.execution_name)

    def transition(
        self,
        task_id: str,
        expected: State | frozenset[State],
        to: State,
        *,
        detail: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> TaskRow:
        """The compare-and-set with every check the PostgreSQL one makes, in the same order."""
        sources = check_transition({expected} if isinstance(expected, State) else expected, to)
        check_task_id(task_id)
        check_transition_fields(to, fields)
        document = None if detail is None else _json(dict(detail), "detail")
        current = self.db.task(task_id)
        if current.state not in sources:
            raise StaleState(task_id, sources, current.state)
        moved = replace(current, state=to, updated_at=datetime.now(UTC), **fields)
        for constraint, broken in (
            ("tasks_completed_has_video", moved.state is State.COMPLETED and not moved.video_uri),
            ("tasks_failed_has_error", moved.state is State.FAILED and moved.error is None),
        ):
            if broken:
                raise InvalidInput(
                    f"transition of task {task_id!r} to {to} violates {constraint}: "
                    f'new row for relation "tasks" violates check constraint "{constraint}"'
                )
        self.db.tasks[task_id] = moved
        self.db.history.append(FakeHistoryRow(task_id, current.state, to, document))
        return moved


@dataclass(frozen=True)
class FakeBlueprintStore:
    """:class:`lifecycle.ports.BlueprintStore` on a :class:`FakeDatabase` (documents are kept
    as JSON would return them, so a value JSON cannot hold fails here as it would there)."""

    db: FakeDatabase

    def insert(self, task_id: str, schema_version: str, document: Mapping[str, Any]) -> bool:
        """Keep the document unless the task has one."""
        if task_id in self.db.blueprints:
            return False
        self.db.blueprints[task_id] = (schema_version, _json(dict(document), "document"))
        return True

    def read(self, task_id: str) -> dict[str, Any] | None:
        """A copy of the stored document."""
        stored = self.db.blueprints.get(task_id)
        return None if stored is None else copy.deepcopy(stored[1])


@dataclass(frozen=True)
class FakeOutbox:
    """:class:`lifecycle.ports.Outbox` on a :class:`FakeDatabase`."""

    db: FakeDatabase

    def append(self, event: ChoreoEvent) -> int:
        """Queue the event once per CloudEvent id; its row id."""
        to_pubsub(event)  # the real outbox stores the encoded message: it must encode
        if event.id not in self.db.outbox:
            self.db.outbox[event.id] = (len(self.db.outbox) + 1, event)
        return self.db.outbox[event.id][0]


@dataclass(frozen=True)
class FakeExecutionLog:
    """:class:`lifecycle.ports.ExecutionLog` on a :class:`FakeDatabase`."""

    db: FakeDatabase

    def record(
        self, task_id: str, execution_name: str, launcher: Launcher, env: Mapping[str, str]
    ) -> bool:
        """Record the execution unless the task has one."""
        if task_id in self.db.executions:
            return False
        self.db.executions[task_id] = FakeExecution(task_id, execution_name, launcher, dict(env))
        return True


@dataclass(frozen=True)
class FakeUnitOfWork:
    """:class:`lifecycle.ports.UnitOfWork` on a :class:`FakeDatabase`."""

    db: FakeDatabase

    @property
    def tasks(self) -> FakeTaskLock:
        """The task rows."""
        return FakeTaskLock(self.db)

    @property
    def blueprints(self) -> FakeBlueprintStore:
        """The stored blueprints."""
        return FakeBlueprintStore(self.db)

    @property
    def outbox(self) -> FakeOutbox:
        """The queued events."""
        return FakeOutbox(self.db)

    @property
    def executions(self) -> FakeExecutionLog:
        """The recorded executions."""
        return FakeExecutionLog(self.db)


class FakeSongRows:
    """The blueprint consumer's ``SongRows`` over rows in memory (``rows`` by song id);
    ``analysed()`` is the catalog a describe request without a song chooses from."""

    def __init__(self, rows: Sequence[SongRow] = (), analysed: Sequence[CatalogSong] = ()) -> None:
        self.rows = {row.song_id: row for row in rows}
        self.catalog = list(analysed)
        self.reads: list[str] = []

    def song(self, song_id: str) -> SongRow:
        """The row, or ``UnknownSong`` (as ``song_store.get_song``)."""
        from consumers.blueprint_consumer.song_store import UnknownSong  # noqa: PLC0415 - librosa

        self.reads.append(song_id)
        if song_id not in self.rows:
            raise UnknownSong(f"no song with song_id {song_id!r} in the catalog")
        return self.rows[song_id]

    def song_by_hash(self, content_sha256: str) -> SongRow | None:
        """The row with this content hash, if any."""
        return next((r for r in self.rows.values() if r.content_sha256 == content_sha256), None)

    def analysed(self) -> list[CatalogSong]:
        """The analysed catalog."""
        return list(self.catalog)


class FakeLibrary:
    """The planning pipeline's ``MoveLoader`` over moves in memory."""

    def __init__(self, moves: Sequence[Move] = ()) -> None:
        self.by_id = {move.move_id: move for move in moves}

    def candidate(self, move_id: str, score: float) -> MoveCandidate:
        """The move as a planner candidate, or ``NotFound`` (as ``library_store.get_move``)."""
        from choreography.planner.candidates import candidate_from_move  # noqa: PLC0415

        if move_id not in self.by_id:
            raise NotFound(f"move {move_id!r} is not in the library")
        return candidate_from_move(self.by_id[move_id], score)


@dataclass(frozen=True)
class FakePlanningWork(FakeUnitOfWork):
    """The blueprint consumer's ``PlanningWork``: the fake lifecycle ports, songs, library."""

    songs: FakeSongRows = field(default_factory=FakeSongRows)
    library: FakeLibrary = field(default_factory=FakeLibrary)


def _json(document: dict[str, Any], what: str) -> Any:
    try:
        return json.loads(json.dumps(document, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"{what} is not a JSON document: {error}") from None


# --- object storage, the blueprint stash, publishing and launching ---


class MemoryStorage:
    """A :class:`blobstore.storage.Storage` in a dict: ``objects[uri]`` holds the bytes."""

    def __init__(self, objects: Mapping[str, bytes] | None = None) -> None:
        self.objects: dict[str, bytes] = dict(objects or {})
        self.downloads: list[str] = []

    def download(
        self, uri: str, kind: StorageKind, dest: Path, *, max_bytes: int | None = None
    ) -> int:
        """Write the object to ``dest``; a missing one is permanent, as in every adapter."""
        self.downloads.append(uri)
        if uri not in self.objects:
            raise PermanentStorageError(f"{uri}: no such object")
        data = self.objects[uri]
        if max_bytes is not None and len(data) > max_bytes:
            raise ObjectTooLarge(uri, len(data), max_bytes)
        dest.write_bytes(data)
        return len(data)

    def upload_new(self, source: Path, uri: str, kind: StorageKind) -> bool:
        """Keep ``source``'s bytes at ``uri`` unless an object is there."""
        if uri in self.objects:
            return False
        self.objects[uri] = source.read_bytes()
        return True


class RecordingStash:
    """A blueprint stash (``BlueprintStash``) that keeps what it was given."""

    def __init__(self) -> None:
        self.stored: dict[str, bytes] = {}

    def put(self, task_id: str, document: bytes) -> str:
        """Keep the document; a gs:// URI for it."""
        self.stored[task_id] = document
        return f"gs://bucket/blueprints/{task_id}.json"


class RecordingPublisher:
    """A ``Publisher`` fake: records what it was asked, fails when ``fail_when`` says so."""

    def __init__(self, fail_when: Any = None, gate: threading.Event | None = None) -> None:
        self.published: list[tuple[str, bytes, dict[str, str], str]] = []
        self.attempted: list[str] = []
        self._fail_when = fail_when
        self._gate = gate
        self.entered = threading.Event()

    def publish(self, event: Any) -> str:
        data, attributes = to_pubsub(event)
        return self.publish_raw(event.topic, data, attributes, event.ordering_key)

    def publish_raw(
        self, topic: str, data: bytes, attributes: dict[str, str], ordering_key: str = ""
    ) -> str:
        self.attempted.append(attributes.get("ce-id", ""))
        self.entered.set()
        if self._gate is not None:
            self._gate.wait(10)
        if self._fail_when is not None and self._fail_when(attributes):
            raise PublishFailed(f"refused {attributes.get('ce-id')}")
        self.published.append((topic, data, attributes, ordering_key))
        return str(len(self.published))

    def close(self) -> None:
        pass


class RecordingLauncher:
    """A ``JobLauncher``: records each request; raises the queued ``errors`` first."""

    def __init__(self, errors: list[Exception] | None = None) -> None:
        self.requests: list[LaunchRequest] = []
        self.errors = list(errors or [])

    def launch(self, request: LaunchRequest) -> str:
        """A made-up execution name for the request, or the next queued error."""
        self.requests.append(request)
        if self.errors:
            raise self.errors.pop(0)
        return f"fake-executions/{request.task_id}-{len(self.requests)}"
