"""Submit revisions: a new task that keeps some bars of a planned task and re-plans the others.

A revision names its parent task, the bars to keep and the bars to redo (``1-8,17-24`` or spans,
``schemas.bar_spans``) and optional style, difficulty, energy or repeat overrides. It is refused
here, before anything is stored, when the parent is unknown or has no blueprint yet, or when its
bars do not fit the parent's blueprint (past its end, in both lists, one move both kept and
redone: ``schemas.revision_bars``). Whether the kept bars still fit the song is known only after
the consumer analyses it; a refusal there fails the new task with the bars named.

Otherwise the task (path ``revise``, ``queued``) and the outbox row holding the
``choreography.revision.requested`` event commit together, exactly as a request does
(:mod:`producers.requests`): the same idempotency by ``task_id``, the same publishing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool
from pydantic import ValidationError

from lifecycle.blueprints import get_blueprint_document
from lifecycle.outbox import add_to_outbox
from lifecycle.task_store import create_task
from producers.publishing import Publisher
from producers.requests import (
    FieldError,
    RequestRejected,
    SubmittedRequest,
    TaskConflict,
    field_errors,
    publish_pending,
    stamped_fields,
)
from schemas.bar_spans import BadBars, parse_bars
from schemas.blueprint import parse_blueprint
from schemas.errors import InvalidInput
from schemas.event_envelope import new_event
from schemas.events import SOURCE_PRODUCER, RevisionRequested
from schemas.revision_bars import split_bars

log = logging.getLogger(__name__)

PATH = "revise"
# Fields of the stored request document that differ between two tries of the same revision.
VOLATILE_FIELDS = frozenset({"task_id", "requested_at"})
# Whole-model checks in RevisionRequested report no location; name the field they are about.
_MODEL_ERROR_FIELD = {"revision_parent": "task_id", "revision_bars": "redo"}


def build_revision(
    document: Mapping[str, Any], *, now: datetime | None = None
) -> RevisionRequested:
    """Validate a revision document into the payload; ``keep``/``redo`` may be BARS text."""
    fields = stamped_fields(document, now)
    for name in ("keep", "redo"):
        if isinstance(fields.get(name), str):
            try:
                fields[name] = [span.model_dump() for span in parse_bars(fields[name], option=name)]
            except BadBars as exc:
                message = str(exc).removeprefix(f"{name}: ")
                raise RequestRejected([FieldError(name, message)]) from None
    try:
        return RevisionRequested.model_validate(fields)
    except ValidationError as exc:
        raise RequestRejected(field_errors(exc, _MODEL_ERROR_FIELD)) from None


def submit_revision(
    pool: ConnectionPool, document: Mapping[str, Any], *, publisher: Publisher | None = None
) -> SubmittedRequest:
    """Validate ``document``, check it against the parent's blueprint, store task + event in
    one transaction, then publish if asked."""
    payload = build_revision(document)
    stored = payload.model_dump(mode="json", exclude_none=True, exclude=set(VOLATILE_FIELDS))
    event = new_event(payload, source=SOURCE_PRODUCER)
    with pool.connection() as conn, conn.transaction():
        check_parent(conn, payload)
        try:
            created = create_task(conn, payload.task_id, PATH, stored).created
        except InvalidInput as exc:
            raise TaskConflict([FieldError("task_id", str(exc))]) from None
        if created:
            add_to_outbox(conn, event)
    context = {"task_id": payload.task_id, "parent_task_id": payload.parent_task_id}
    if not created:
        log.info("duplicate revision", extra=context)
        return SubmittedRequest(payload.task_id, created=False, event_id=None, published=False)
    log.info("revision accepted", extra={**context, "event_id": event.id})
    published = publisher is not None and publish_pending(pool, publisher, event.id)
    return SubmittedRequest(payload.task_id, created=True, event_id=event.id, published=published)


def check_parent(conn: psycopg.Connection[Any], payload: RevisionRequested) -> None:
    """``RequestRejected`` when the parent is unknown, has no blueprint, or its blueprint's
    bars do not admit ``keep`` and ``redo``."""
    parent = payload.parent_task_id
    row = conn.execute("SELECT state FROM tasks WHERE task_id = %s", (parent,)).fetchone()
    if row is None:
        raise RequestRejected([FieldError("parent_task_id", f"no task {parent!r}")])
    document = get_blueprint_document(conn, parent)
    if document is None:
        raise RequestRejected(
            [
                FieldError(
                    "parent_task_id",
                    f"task {parent!r} has no blueprint (it is {row[0]}): only a planned task "
                    "can be revised",
                )
            ]
        )
    try:
        split_bars(parse_blueprint(document), payload.keep, payload.redo)
    except InvalidInput as exc:
        raise RequestRejected([FieldError("redo", str(exc))]) from None
