"""The outbox relay: publish committed outbox rows, at least once, in id order per ordering key.

Each run locks a batch of unpublished rows with ``FOR UPDATE SKIP LOCKED`` (so relays in several
processes share the work) and, per ordering key, a transaction-scoped advisory lock, so that two
relays never publish one key's rows side by side and out of order. Rows are published in id
order; a row that fails stops its key for this run (the later rows wait for it), its attempt is
counted and the error recorded. Publishing happens before the commit that marks rows published,
so a crash in between republishes them on the next run: consumers dedupe on the CloudEvent id.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from producers.publishing import Publisher
from schemas.settings import OutboxSettings

log = logging.getLogger(__name__)

_SELECT_BATCH = """
    SELECT id, event_id, topic, ordering_key, attributes, data FROM outbox
    WHERE published_at IS NULL AND next_attempt_at <= now()
      AND (%(topics)s::text[] IS NULL OR topic = ANY(%(topics)s::text[]))
      -- Never overtake an earlier row of the same key that is waiting out its retry delay.
      AND NOT EXISTS (
          SELECT 1 FROM outbox AS earlier
          WHERE earlier.published_at IS NULL AND earlier.ordering_key <> ''
            AND earlier.ordering_key = outbox.ordering_key AND earlier.topic = outbox.topic
            AND earlier.id < outbox.id AND earlier.next_attempt_at > now()
      )
    ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED
"""
# Keys are hashed into the advisory-lock space; a collision only makes two keys wait for each
# other, never reorders one.
_LOCK_KEY = "SELECT pg_try_advisory_xact_lock(hashtextextended('choreo-outbox:' || %s, 0))"
_MARK_PUBLISHED = (
    "UPDATE outbox SET published_at = now(), attempts = attempts + 1, last_error = NULL "
    "WHERE id = %s"
)
# A row that failed waits 2^attempts seconds (at most MAX_RETRY_DELAY_S) before its next try.
_MARK_FAILED = (
    "UPDATE outbox SET attempts = attempts + 1, last_error = %s, "
    "next_attempt_at = now() + least(%s, power(2, attempts)) * interval '1 second' WHERE id = %s"
)
MAX_RETRY_DELAY_S = 300
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class RelayRun:
    """What one run did: rows published, rows that failed, rows left for a later run."""

    published: int = 0
    failed: int = 0
    deferred: int = 0


class OutboxRelay:
    """Moves committed outbox rows onto the message bus through a ``Publisher``."""

    def __init__(
        self,
        pool: ConnectionPool,
        publisher: Publisher,
        *,
        batch_size: int = 100,
        poll_interval_s: float = 0.5,
        topics: Sequence[str] = (),
    ) -> None:
        self._pool = pool
        self._publisher = publisher
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        # Only the topics this process's identity may publish (empty: all of them).
        self._topics = sorted(topics) or None
        self.last_pass = time.monotonic()

    @classmethod
    def from_settings(
        cls, pool: ConnectionPool, publisher: Publisher, settings: OutboxSettings
    ) -> OutboxRelay:
        """A relay with the batch size, poll interval and topics of ``settings``."""
        return cls(
            pool,
            publisher,
            batch_size=settings.batch_size,
            poll_interval_s=settings.poll_interval_s,
            topics=settings.topic_list,
        )

    def run_once(self) -> RelayRun:
        """Publish one batch of unpublished rows and mark them; what happened."""
        published = failed = deferred = 0
        with self._pool.connection() as conn, conn.transaction():
            rows = (
                conn.cursor(row_factory=dict_row)
                .execute(_SELECT_BATCH, {"topics": self._topics, "limit": self._batch_size})
                .fetchall()
            )
            blocked: set[str] = set()
            locked: set[str] = set()
            for row in rows:
                key = row["ordering_key"]
                if key in blocked or (key and key not in locked and not _lock_key(conn, key)):
                    blocked.add(key)  # an earlier row failed, or another relay holds this key
                    deferred += 1
                    continue
                if key:
                    locked.add(key)
                error = self._publish(row)
                if error is None:
                    conn.execute(_MARK_PUBLISHED, (row["id"],))
                    published += 1
                else:
                    conn.execute(
                        _MARK_FAILED, (error[:MAX_ERROR_CHARS], MAX_RETRY_DELAY_S, row["id"])
                    )
                    failed += 1
                    if key:
                        blocked.add(key)
        if published or failed:
            log.info(
                "outbox relay run",
                extra={"published": published, "failed": failed, "deferred": deferred},
            )
        return RelayRun(published, failed, deferred)

    def run_forever(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set, pausing ``poll_interval_s`` whenever a run found nothing."""
        while not stop.is_set():
            try:
                run = self.run_once()
            except (psycopg.OperationalError, PoolTimeout):
                log.exception("outbox relay cannot reach PostgreSQL; retrying")
                run = RelayRun()
            except Exception:
                # Whatever else went wrong (it rolled back), the relay must not end silently:
                # rows would wait for a relay that is gone while /healthz still said 200.
                log.exception("outbox relay pass failed; retrying")
                run = RelayRun()
            self.last_pass = time.monotonic()
            if run.published == 0:
                stop.wait(self._poll_interval_s)

    def alive(self, within_s: float = 60.0) -> bool:
        """Whether a pass finished within ``within_s`` (the health check's view)."""
        return time.monotonic() - self.last_pass < within_s

    def _publish(self, row: dict[str, Any]) -> str | None:
        """Publish one row; ``None`` on success, else the error text to record."""
        try:
            self._publisher.publish_raw(
                str(row["topic"]),
                bytes(row["data"]),
                dict(row["attributes"]),
                str(row["ordering_key"]),
            )
        except Exception as error:
            # Whatever went wrong, the row must stay unpublished and say why; the relay goes on
            # with other keys. The traceback goes to the log.
            log.exception("outbox row %s (event %s) not published", row["id"], row["event_id"])
            return f"{type(error).__name__}: {error}"
        return None


def _lock_key(conn: psycopg.Connection, key: str) -> bool:
    row = conn.execute(_LOCK_KEY, (key,)).fetchone()
    return bool(row and row[0])


def relay_once(pool: ConnectionPool, publisher: Publisher, topics: Sequence[str] = ()) -> RelayRun:
    """One relay pass (for a producer that publishes right after its commit); what happened."""
    return OutboxRelay(pool, publisher, topics=topics).run_once()
