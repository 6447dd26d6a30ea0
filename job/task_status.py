"""The task row as the job sees it: claim, progress, and the final state with its outbox event.

Every state change is a compare-and-set written with its ``task_history`` row, and the final one
with its ``outbox`` row, in one transaction: only the run whose CAS wins announces the result,
so a task gets exactly one ``video.completed`` however often the job runs. Without a database
(``choreo render``) :class:`NoTaskStatus` stands in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import psycopg
from psycopg_pool import ConnectionPool

from job.errors import BlueprintRejected, NotOwner, StatusFailed
from lifecycle.outbox import add_to_outbox
from lifecycle.task_store import transition
from schemas.event_codec import to_pubsub
from schemas.event_envelope import ChoreoEvent
from schemas.events import VideoCompleted
from schemas.task_state import StaleState, State, check_transition

log = logging.getLogger(__name__)


class Start(StrEnum):
    """What the job should do after claiming the task."""

    RENDER = "render"
    ALREADY_COMPLETED = "already-completed"


@dataclass(frozen=True)
class OutboxMessage:
    """An outbox row to publish: the exact Pub/Sub data and attributes."""

    id: int
    topic: str
    ordering_key: str
    attributes: dict[str, str]
    data: bytes


class TaskStatus(Protocol):
    """The task row operations the job needs."""

    def start(self, task_id: str) -> Start:
        """Claim the task (``dispatched`` or a crashed ``rendering`` run)."""
        ...

    def progress(self, task_id: str, percent: float) -> None:
        """Record rendering progress (rate-limited, best effort)."""
        ...

    def finish(
        self, task_id: str, to: State, event: ChoreoEvent, **fields: Any
    ) -> OutboxMessage | None:
        """CAS to ``completed``/``failed`` with history and outbox rows; None if the CAS lost."""
        ...

    def publish_once(
        self, message: OutboxMessage, publish: Callable[[OutboxMessage], str]
    ) -> str | None:
        """Publish an outbox row unless a relay holds it or already did; the message id or None."""
        ...


class NoTaskStatus:
    """No database: every call succeeds and nothing is recorded."""

    def start(self, task_id: str) -> Start:
        """Always render."""
        return Start.RENDER

    def progress(self, task_id: str, percent: float) -> None:
        """Nothing to record."""

    def finish(
        self, task_id: str, to: State, event: ChoreoEvent, **fields: Any
    ) -> OutboxMessage | None:
        """Nothing to announce."""
        return None

    def publish_once(
        self, message: OutboxMessage, publish: Callable[[OutboxMessage], str]
    ) -> str | None:
        """No outbox to share with a relay: publish."""
        return publish(message)


class PostgresTaskStatus:
    """The task row through :mod:`lifecycle`, on a connection pool.

    ``execution`` is this run's execution name (``JOB_EXECUTION``, set by whichever launcher
    started it). With one, the job claims and finishes only a task recorded with that name: a
    second execution of one task (which the dispatcher never starts, but an operator might) exits
    without rendering. Without one (a hand-run job), any execution's task is taken.
    """

    def __init__(
        self, pool: ConnectionPool, *, execution: str = "", progress_interval_s: float = 1.0
    ) -> None:
        self.pool = pool
        self.execution = execution
        self.progress_interval_s = progress_interval_s
        self._last_progress = float("-inf")
        self._lock = threading.Lock()

    def start(self, task_id: str) -> Start:
        """Claim dispatched -> rendering; resume our own rendering run; report a finished one."""
        try:
            with self.pool.connection() as conn, conn.transaction():
                state, owner = _locked_row(conn, task_id)
                if state is None:
                    raise BlueprintRejected(f"task {task_id!r} does not exist", step="claim")
                if state in (State.DISPATCHED, State.RENDERING) and not self._owns(owner):
                    raise NotOwner(
                        f"task {task_id!r} belongs to execution {owner!r}, not "
                        f"{self.execution!r}: leaving it alone",
                        step="claim",
                    )
                if state == State.DISPATCHED:
                    transition(
                        conn,
                        task_id,
                        State.DISPATCHED,
                        State.RENDERING,
                        progress=0,
                        detail=self._detail(),
                    )
                    return Start.RENDER
        except psycopg.Error as exc:
            raise StatusFailed(f"cannot claim task {task_id!r}: {exc}", step="claim") from exc
        if state == State.RENDERING:
            log.warning("task already rendering: resuming a crashed run", extra={"step": "claim"})
            return Start.RENDER
        if state == State.COMPLETED:
            return Start.ALREADY_COMPLETED
        if state == State.FAILED:
            raise BlueprintRejected(f"task {task_id!r} has already failed", step="claim")
        raise StatusFailed(
            f"task {task_id!r} is {state}, not dispatched yet; retry later", step="claim"
        )

    def progress(self, task_id: str, percent: float) -> None:
        """Write the percentage at most once per interval; errors are logged, not raised.

        Each write also moves ``updated_at``: it is the rendering stage's heartbeat, which the
        recoverer reads as "still making progress".
        """
        now = time.monotonic()
        with self._lock:
            if now - self._last_progress < self.progress_interval_s and percent < 100:
                return
            self._last_progress = now
        try:
            with self.pool.connection() as conn:
                conn.execute(
                    "UPDATE tasks SET progress = %s WHERE task_id = %s AND state = 'rendering'",
                    (round(min(max(percent, 0.0), 100.0), 1), task_id),
                )
        except psycopg.Error as exc:
            log.warning("progress not recorded: %s", exc, extra={"step": "progress"})

    def finish(
        self, task_id: str, to: State, event: ChoreoEvent, **fields: Any
    ) -> OutboxMessage | None:
        """CAS to ``to`` (completed from rendering; failed from either), with history and outbox."""
        claimed = (
            {State.RENDERING} if to == State.COMPLETED else {State.DISPATCHED, State.RENDERING}
        )
        sources = check_transition(claimed, to)
        try:
            with self.pool.connection() as conn, conn.transaction():
                state, owner = _locked_row(conn, task_id)
                if state not in sources or not self._owns(owner):
                    return None
                done = event.data if isinstance(event.data, VideoCompleted) else None
                detail = {**self._detail(fields), **(done.completion_detail() if done else {})}
                transition(conn, task_id, sources, to, detail=detail, **fields)
                row_id = add_to_outbox(conn, event)
        except (psycopg.Error, StaleState) as exc:
            raise StatusFailed(
                f"cannot record task {task_id!r} as {to}: {exc}", step="status"
            ) from exc
        data, attributes = to_pubsub(event)
        return OutboxMessage(row_id, event.topic, event.ordering_key, attributes, data)

    def _owns(self, owner: str | None) -> bool:
        return not self.execution or owner is None or owner == self.execution

    def _detail(self, fields: dict[str, Any] | None = None) -> dict[str, Any]:
        kept = {k: v for k, v in (fields or {}).items() if k in ("error_stage", "video_uri")}
        return {"by": "job", "execution": self.execution or None, **kept}

    def publish_once(
        self, message: OutboxMessage, publish: Callable[[OutboxMessage], str]
    ) -> str | None:
        """Publish the row while holding its lock, as the outbox relay does, then mark it.

        The relays in the consumer processes lock unpublished rows with ``FOR UPDATE SKIP
        LOCKED``; taking the same lock here means exactly one of us publishes the row: if a relay
        holds it (or has published it) the job leaves it alone. A failed publish is counted on
        the row and left for the relay.
        """
        failure: Exception | None = None
        message_id: str | None = None
        try:
            with self.pool.connection() as conn, conn.transaction():
                row = conn.execute(
                    "SELECT id FROM outbox WHERE id = %s AND published_at IS NULL "
                    "FOR UPDATE SKIP LOCKED",
                    (message.id,),
                ).fetchone()
                if row is None:
                    return None
                try:
                    message_id = publish(message)
                except Exception as exc:  # recorded on the row, re-raised after the commit
                    failure = exc
                    conn.execute(
                        "UPDATE outbox SET attempts = attempts + 1, last_error = %s WHERE id = %s",
                        (f"{type(exc).__name__}: {exc}"[:2000], message.id),
                    )
                else:
                    conn.execute(
                        "UPDATE outbox SET published_at = now(), attempts = attempts + 1, "
                        "last_error = NULL WHERE id = %s",
                        (message.id,),
                    )
        except psycopg.Error as exc:
            raise StatusFailed(
                f"cannot publish outbox row {message.id}: {exc}", step="publish"
            ) from exc
        if failure is not None:
            raise RowNotPublished(str(failure)) from failure
        return message_id


class RowNotPublished(Exception):
    """The publisher refused the row; it is counted on the row and left for the relay."""


def _locked_row(conn: psycopg.Connection[Any], task_id: str) -> tuple[State | None, str | None]:
    row = conn.execute(
        "SELECT state, execution_name FROM tasks WHERE task_id = %s FOR UPDATE", (task_id,)
    ).fetchone()
    return (None, None) if row is None else (State(row[0]), row[1])
