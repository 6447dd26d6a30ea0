"""Handlers and the processor that runs them: typed event in, ack decision out.

A consumer is an :class:`EventHandler`: its name (the dedupe key's first half), the stage it
reports in ``task.failed`` unless the error carries its own (:mod:`.failure_stage`), and a
function of ``(conn, event, delivery)`` whose database effects commit in one transaction with
the ``processed_events`` record. It never sees the transport: the pull worker and the HTTP app
decode first and hand the same :class:`Delivery` to :meth:`EventProcessor.process`, which
applies :mod:`delivery.error_mapping`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from consumers.runtime.failure_stage import Stage, stage_of
from consumers.runtime.idempotency import claim_event, run_once
from delivery.error_mapping import (
    Outcome,
    Verdict,
    classify,
    error_code,
    is_unexpected,
    verdict_for,
)
from delivery.rejection import reject
from lifecycle.outbox import add_to_outbox
from lifecycle.rejections import Rejection
from lifecycle.task_failure import fail_task, failure_event
from producers.publishing import current_traceparent
from schemas.errors import NotFound
from schemas.event_envelope import ChoreoEvent, Delivery
from schemas.events import TaskFailed
from schemas.task_state import StaleState

log = logging.getLogger(__name__)
HandleFn = Callable[[psycopg.Connection, ChoreoEvent, Delivery[ChoreoEvent]], None]


@dataclass(frozen=True)
class EventHandler:
    """One consumer: name, its default failure stage, the effect, and its CloudEvent source."""

    consumer: str
    stage: Stage
    handle: HandleFn
    source: str = "//choreo/consumer"
    # Loops the consumer's process runs beside the handler until it stops (each is given the
    # stop event): the dispatcher's job runner or Cloud Run launcher.
    services: tuple[Callable[[threading.Event], None], ...] = ()


class EventProcessor:
    """Runs a handler on decoded deliveries and maps every outcome to a verdict."""

    def __init__(self, pool: ConnectionPool, handler: EventHandler) -> None:
        self.pool = pool
        self.handler = handler

    def process(self, delivery: Delivery[ChoreoEvent]) -> Verdict:
        """Handle one delivery at most once per CloudEvent id; the ack/HTTP verdict."""
        event = delivery.event
        token = current_traceparent.set(event.traceparent)
        try:
            verdict = self._process(delivery)
        finally:
            current_traceparent.reset(token)
        level = logging.INFO if verdict.ack else logging.WARNING
        log.log(level, "event %s", verdict.outcome, extra=self._context(delivery, verdict))
        return verdict

    def reject(self, error: Exception, rejection: Rejection) -> Verdict:
        """Acknowledge a message that can never be handled: log it and record it
        (:func:`delivery.rejection.reject`; a retry verdict if the row cannot be written)."""
        return reject(self.pool, error, rejection)

    def _process(self, delivery: Delivery[ChoreoEvent]) -> Verdict:
        event = delivery.event
        try:
            done = run_once(
                self.pool,
                self.handler.consumer,
                event.id,
                lambda conn: self.handler.handle(conn, event, delivery),
            )
            return verdict_for(Outcome.PROCESSED if done else Outcome.DUPLICATE)
        except Exception as error:
            outcome = classify(error)
            reason = f"{type(error).__name__}: {error}"
            if outcome is Outcome.RETRY:
                log.warning("handler failed, will retry", exc_info=error, extra=_ids(delivery))
                return verdict_for(outcome, reason, unexpected=is_unexpected(error))
            if outcome is Outcome.FAILED_PERMANENTLY:
                return self._fail_permanently(delivery, error)
            return verdict_for(outcome, reason)

    def _fail_permanently(self, delivery: Delivery[ChoreoEvent], error: Exception) -> Verdict:
        reason = str(error).strip() or type(error).__name__
        try:
            with self.pool.connection() as conn, conn.transaction():
                record_task_failure(
                    conn,
                    self.handler,
                    delivery.event,
                    reason,
                    error_code(error),
                    stage=stage_of(error, self.handler.stage),
                )
        except Exception as record_error:
            # Recording is the effect of a permanent failure; if it cannot commit, retry.
            log.exception("could not record a permanent failure", extra=_ids(delivery))
            return verdict_for(Outcome.RETRY, f"recording failure failed: {record_error}")
        return verdict_for(Outcome.FAILED_PERMANENTLY, reason)

    def _context(self, delivery: Delivery[ChoreoEvent], verdict: Verdict) -> dict[str, Any]:
        return {
            **_ids(delivery),
            "consumer": self.handler.consumer,
            "outcome": verdict.outcome,
            "reason": verdict.reason or None,
        }


def record_task_failure(
    conn: psycopg.Connection,
    handler: EventHandler,
    event: ChoreoEvent,
    reason: str,
    code: str,
    *,
    stage: Stage,
) -> bool:
    """Mark the event handled, move its task to failed, queue ``task.failed``; False if a dupe.

    Runs in the caller's transaction; ``stage`` goes to ``tasks.error_stage`` and the event.
    A task already in a terminal state is left alone and no event is queued; a missing task
    still gets its ``task.failed`` (the requester is waiting). A ``task.failed`` event is never
    answered with another one, which would loop.
    """
    if not claim_event(conn, handler.consumer, event.id):
        return False
    task_id = event.data.task_id
    announce = not isinstance(event.data, TaskFailed)
    failure: dict[str, Any] = {
        "reason": reason,
        "stage": stage,
        "error_code": code,
        "source": handler.source,
        "traceparent": event.traceparent,
    }
    try:
        fail_task(
            conn,
            task_id,
            **failure,
            detail={"event_id": event.id, "consumer": handler.consumer},
            announce=announce,
        )
    except NotFound:
        log.warning("no task row to mark failed", extra={"task_id": task_id, "event_id": event.id})
        if announce:
            add_to_outbox(conn, failure_event(task_id, **failure))
    except StaleState as stale:
        log.info("task already %s; not failing it again", stale.actual, extra={"task_id": task_id})
    return True


def _ids(delivery: Delivery[ChoreoEvent]) -> dict[str, Any]:
    return {
        "task_id": delivery.event.data.task_id,
        "event_id": delivery.event.id,
        "event_type": delivery.event.type,
        "delivery_attempt": delivery.delivery_attempt,
        "message_id": delivery.message_id,
        "transport": delivery.transport,
        "traceparent": delivery.event.traceparent,
    }
