"""Replay dead letters to their original topic, or purge them; one run at a time, all audited.

Replay republishes a message's data, attributes and ordering key exactly (only the
``CloudPubSubDeadLetter*`` bookkeeping is stripped and ``choreo-replay-count`` incremented),
waits for Pub/Sub to accept it, and only then acknowledges the dead letter: a crash in between
leaves the message in place and the next replay sends it again (a duplicate, which consumers
drop by CloudEvent id), never loses it. A message replayed ``cap`` times already is refused and
stays. Every message touched gets a ``dlq_replay_audit`` row. A PostgreSQL advisory lock keyed
by the dead-letter subscription keeps two operators from replaying or purging it at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from producers.dlq import DeadLetter, DeadLetterFilter, DeadLetterQueue
from producers.publishing import Publisher
from schemas.errors import ChoreoError, InvalidInput, TransientError
from schemas.topology import Topology

log = logging.getLogger(__name__)

Action = Literal["replay", "purge", "dry-run", "refused"]


class ReplayInProgress(TransientError):
    """Another replay or purge holds this dead-letter subscription's lock."""


@dataclass(frozen=True)
class ReplayOptions:
    """What a replay run does: to where, which messages, how many, how fast, for real or not."""

    actor: str
    cap: int = 3
    to_topic: str | None = None
    selection: DeadLetterFilter = field(default_factory=DeadLetterFilter)
    limit: int | None = None
    rate_per_s: float | None = None
    dry_run: bool = False

    def __post_init__(self) -> None:
        if not self.actor.strip():
            raise InvalidInput("actor must name who runs the replay (--actor or $USER)")
        if self.cap < 1:
            raise InvalidInput(f"cap must be at least 1, got {self.cap}")
        if self.limit is not None and self.limit < 1:
            raise InvalidInput(f"limit must be at least 1, got {self.limit}")
        if self.rate_per_s is not None and self.rate_per_s <= 0:
            raise InvalidInput(
                f"rate must be a positive number of messages per second, got {self.rate_per_s}"
            )


@dataclass(frozen=True)
class Touched:
    """What happened to one message: the audit row's action and outcome."""

    message_id: str
    action: Action
    outcome: str
    to_topic: str | None = None
    new_message_id: str | None = None


@dataclass
class RunReport:
    """Every message a run touched, in order; ``failed`` when it stopped on a publish error."""

    touched: list[Touched] = field(default_factory=list)
    failed: bool = False

    def count(self, action: Action) -> int:
        """How many messages got ``action``."""
        return sum(1 for t in self.touched if t.action == action and t.outcome != "failed")

    @property
    def refused(self) -> int:
        """How many messages were refused (left in place: the cap, or no destination)."""
        return self.count("refused")


@contextmanager
def subscription_lock(conn: psycopg.Connection, queue: DeadLetterQueue) -> Iterator[None]:
    """Hold the advisory lock of ``queue``'s subscription, or raise ``ReplayInProgress``."""
    key = f"choreo-dlq:{queue.path}"
    row = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,)).fetchone()
    if row is None or not row[0]:
        raise ReplayInProgress(
            f"another replay or purge of {queue.path} is running (advisory lock held); "
            "wait for it to finish"
        )
    try:
        yield
    finally:
        conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))


def replay(
    conn: psycopg.Connection,
    queue: DeadLetterQueue,
    publisher: Publisher,
    topology: Topology,
    options: ReplayOptions,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> RunReport:
    """Replay the selected dead letters (``conn`` in autocommit: each audit row stands alone)."""
    if options.to_topic is not None:
        _check_destination(topology, options.to_topic)
    audit = _AuditLog(conn, queue, options.actor, options.selection)
    interval = 0.0 if options.rate_per_s is None else 1.0 / options.rate_per_s
    last_publish = float("-inf")
    with subscription_lock(conn, queue), queue:
        for message in queue.pull(options.selection, limit=options.limit):
            queue.keep_leases()
            topic, refusal = destination_for(message, queue, topology, options)
            if topic is None:
                audit.record(message, "refused", refusal or "refused")
                continue
            if options.dry_run:
                outcome = f"would replay to {topic} (replay {message.replay_count + 1})"
                audit.record(message, "dry-run", outcome, topic)
                continue
            sleep(max(0.0, last_publish + interval - time.monotonic()))
            last_publish = time.monotonic()
            # The audit row comes first: whatever happens next, the message was touched.
            row = audit.record(message, "replay", "replaying", topic, final=False)
            try:
                new_id = publisher.publish_raw(
                    topic, message.data, message.replay_attributes(), message.ordering_key
                )
            except Exception as exc:
                error = str(exc) if isinstance(exc, ChoreoError) else f"{type(exc).__name__}: {exc}"
                audit.settle(row, message, "replay", "failed", topic, error=error)
                audit.report.failed = True
                log.error("replay stopped: %s", error, extra={"message_id": message.message_id})
                break
            audit.settle(row, message, "replay", "replayed", topic, new_id=new_id)
            # Acknowledged only now that Pub/Sub has accepted the copy and the audit says so.
            queue.ack(message)
    return audit.report


def purge(
    conn: psycopg.Connection,
    queue: DeadLetterQueue,
    *,
    actor: str,
    selection: DeadLetterFilter | None = None,
    limit: int | None = None,
) -> RunReport:
    """Acknowledge (delete) the selected dead letters, one audit row each."""
    if not actor.strip():
        raise InvalidInput("actor must name who runs the purge (--actor or $USER)")
    if limit is not None and limit < 1:
        raise InvalidInput(f"limit must be at least 1, got {limit}")
    selection = selection or DeadLetterFilter()
    audit = _AuditLog(conn, queue, actor, selection)
    with subscription_lock(conn, queue), queue:
        for message in queue.pull(selection, limit=limit):
            row = audit.record(message, "purge", "purging", final=False)
            queue.ack(message)
            audit.settle(row, message, "purge", "purged")
    return audit.report


def audit_rows(
    conn: psycopg.Connection, *, subscription_path: str | None = None
) -> list[dict[str, Any]]:
    """The audit rows, oldest first (optionally for one dead-letter subscription path)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT id, at, actor, action, subscription, message_id, event_id, to_topic, outcome, "
            "detail FROM dlq_replay_audit WHERE %(s)s::text IS NULL OR subscription = %(s)s "
            "ORDER BY id",
            {"s": subscription_path},
        )
        return list(cur.fetchall())


def destination_for(
    message: DeadLetter, queue: DeadLetterQueue, topology: Topology, options: ReplayOptions
) -> tuple[str | None, str | None]:
    """The topic to replay ``message`` to, or None and why it is refused."""
    if message.replay_count >= options.cap:
        return None, f"replay cap reached ({message.replay_count} of {options.cap})"
    if options.to_topic is not None:
        return options.to_topic, None
    source = message.source_subscription
    if source is None:
        return None, "no CloudPubSubDeadLetterSourceSubscription attribute; pass --to TOPIC"
    if message.source_project not in (None, queue.project_id):
        return None, f"source subscription is in project {message.source_project}; pass --to TOPIC"
    try:
        return topology.topic_of(source).name, None
    except InvalidInput:
        return None, f"source subscription {source!r} is not in the topology; pass --to TOPIC"


def _check_destination(topology: Topology, topic: str) -> None:
    if topology.topic(topic).is_dead_letter:
        raise InvalidInput(f"--to {topic!r} is a dead-letter topic; replay goes to a source topic")


class _AuditLog:
    """Writes one ``dlq_replay_audit`` row per message touched and collects the run's report."""

    def __init__(
        self,
        conn: psycopg.Connection,
        queue: DeadLetterQueue,
        actor: str,
        selection: DeadLetterFilter,
    ) -> None:
        self._conn = conn
        self._queue = queue
        self._actor = actor
        self._filter = {k: str(v) for k, v in vars(selection).items() if v}
        self.report = RunReport()

    def record(
        self,
        message: DeadLetter,
        action: Action,
        outcome: str,
        topic: str | None = None,
        *,
        new_id: str | None = None,
        error: str | None = None,
        final: bool = True,
    ) -> int:
        """Insert the row (committed at once: ``conn`` is in autocommit); its id.

        ``final=False`` writes ahead of the action (``replaying``, ``purging``); :meth:`settle`
        then records how it ended.
        """
        detail = {
            "task_id": message.task_id,
            "event_type": message.event_type,
            "source_subscription": message.source_subscription,
            "delivery_count": message.delivery_count,
            "replay_count": message.replay_count,
            "publish_time": message.publish_time.isoformat(),
            "new_message_id": new_id,
            "error": error,
            "filter": self._filter or None,
        }
        row = self._conn.execute(
            "INSERT INTO dlq_replay_audit (actor, action, subscription, message_id, event_id, "
            "to_topic, outcome, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (
                self._actor,
                action,
                self._queue.path,
                message.message_id,
                message.event_id,
                topic,
                outcome,
                Jsonb({k: v for k, v in detail.items() if v is not None}),
            ),
        ).fetchone()
        if final:
            self._note(message, action, outcome, topic, new_id)
        return int(row[0]) if row else 0

    def settle(
        self,
        row_id: int,
        message: DeadLetter,
        action: Action,
        outcome: str,
        topic: str | None = None,
        *,
        new_id: str | None = None,
        error: str | None = None,
    ) -> None:
        """Record how a written-ahead action ended on its row."""
        extra = {k: v for k, v in {"new_message_id": new_id, "error": error}.items() if v}
        self._conn.execute(
            "UPDATE dlq_replay_audit SET outcome = %s, detail = detail || %s WHERE id = %s",
            (outcome, Jsonb(extra), row_id),
        )
        self._note(message, action, outcome, topic, new_id)

    def _note(
        self,
        message: DeadLetter,
        action: Action,
        outcome: str,
        topic: str | None,
        new_id: str | None,
    ) -> None:
        log.info(
            "dead letter %s: %s",
            action,
            outcome,
            extra={"message_id": message.message_id, "task_id": message.task_id, "to_topic": topic},
        )
        self.report.touched.append(Touched(message.message_id, action, outcome, topic, new_id))
