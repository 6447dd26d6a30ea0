"""Submit choreography requests: validate, then create the task and its event in one transaction.

Both user paths (a song, or a description) become a :class:`ChoreographyRequested` payload. The
task row (``queued``) and the outbox row holding the ``choreography.requested`` event commit
together, so a request is either fully accepted or leaves nothing behind; the outbox relay
publishes it (at once, when the caller passes a publisher, so latency stays low).

A submission with an explicit ``task_id`` is idempotent: repeating the same request returns the
same task and adds no second event; the same id with a different request is a conflict.

An ``audio_uri`` must be in ``SONG_SOURCES`` (``schemas.song_limits``): a request naming any
other bucket or prefix is rejected here, naming the setting, before anything is stored.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout
from pydantic import ValidationError

from lifecycle.outbox import add_to_outbox
from lifecycle.task_store import create_task
from producers.outbox_relay import relay_once
from producers.publishing import Publisher
from schemas.errors import ChoreoError, InvalidInput
from schemas.event_envelope import new_event
from schemas.events import SOURCE_PRODUCER, ChoreographyRequested, ClientInfo, Constraints
from schemas.song_limits import DEFAULT_LIMITS, SongSourceRefused, SongSources

log = logging.getLogger(__name__)

# Fields of the stored request document that differ between two tries of the same request.
_VOLATILE_FIELDS = frozenset({"task_id", "requested_at"})
# Whole-model checks in ChoreographyRequested report no location; name the field they are about.
_MODEL_ERROR_FIELD = {"path_song": "song", "path_describe": "description"}


@dataclass(frozen=True)
class FieldError:
    """One problem with a request: the dotted field path and what is wrong with it."""

    field: str
    message: str


class RequestRejected(InvalidInput):
    """A request that does not validate; ``errors`` names every offending field."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))


class TaskConflict(RequestRejected):
    """The task id is taken by a different request."""


@dataclass(frozen=True)
class SubmittedRequest:
    """What a submission did: the task id, whether it was new, and the event's id if it was."""

    task_id: str
    created: bool
    event_id: str | None
    published: bool


def stamped_fields(document: Mapping[str, Any], now: datetime | None) -> dict[str, Any]:
    """A client document's fields with a ``task_id`` (a new one unless the client chose it) and
    ``requested_at`` (now; the client may not set it)."""
    if not isinstance(document, Mapping):
        raise RequestRejected([FieldError("body", "must be a JSON object")])
    fields = dict(document)
    fields.setdefault("task_id", new_task_id())
    if "requested_at" in fields:
        raise RequestRejected(
            [FieldError("requested_at", "is set by the producer, not the client")]
        )
    fields["requested_at"] = now or datetime.now(UTC)
    return fields


def build_request(
    document: Mapping[str, Any],
    *,
    now: datetime | None = None,
    song_sources: SongSources = DEFAULT_LIMITS.sources,
) -> ChoreographyRequested:
    """Validate a request document (``path``, ``song``, ``description``, ...) into the payload;
    an ``audio_uri`` must be in ``song_sources``."""
    fields = stamped_fields(document, now)
    try:
        payload = ChoreographyRequested.model_validate(fields)
    except ValidationError as exc:
        raise RequestRejected(field_errors(exc)) from None
    if payload.song is not None and payload.song.audio_uri is not None:
        try:
            song_sources.check(payload.song.audio_uri)
        except SongSourceRefused as exc:
            raise RequestRejected([FieldError("song.audio_uri", str(exc))]) from None
    return payload


def field_errors(
    exc: ValidationError, model_error_fields: Mapping[str, str] = _MODEL_ERROR_FIELD
) -> list[FieldError]:
    """Pydantic's errors as ``FieldError``s with dotted paths (``constraints.style``); a
    whole-model error (no location) is named by ``model_error_fields[its type]``, else body."""
    errors = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"])
        named = location or model_error_fields.get(error["type"], "body")
        errors.append(FieldError(named, error["msg"]))
    return errors


def new_task_id() -> str:
    """A fresh task id (32 hex digits, inside the task id pattern)."""
    return uuid.uuid4().hex


def song_request_document(
    *,
    song_id: str | None = None,
    audio_uri: str | None = None,
    constraints: Constraints | Mapping[str, Any] | None = None,
    task_id: str | None = None,
    client: ClientInfo | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The request document for path 1 (a song from the catalogue, or an audio URI)."""
    song = {k: v for k, v in (("song_id", song_id), ("audio_uri", audio_uri)) if v is not None}
    return _document("song", song=song, constraints=constraints, task_id=task_id, client=client)


def description_request_document(
    description: str,
    *,
    song_id: str | None = None,
    constraints: Constraints | Mapping[str, Any] | None = None,
    task_id: str | None = None,
    client: ClientInfo | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The request document for path 2 (a description; the song is optional)."""
    song = None if song_id is None else {"song_id": song_id}
    return _document(
        "describe",
        song=song,
        description=description,
        constraints=constraints,
        task_id=task_id,
        client=client,
    )


def submit_song_request(
    pool: ConnectionPool,
    *,
    song_id: str | None = None,
    audio_uri: str | None = None,
    constraints: Constraints | Mapping[str, Any] | None = None,
    task_id: str | None = None,
    publisher: Publisher | None = None,
    song_sources: SongSources = DEFAULT_LIMITS.sources,
) -> str:
    """Submit path 1 (a catalogue song or an audio URI); the task id."""
    document = song_request_document(
        song_id=song_id, audio_uri=audio_uri, constraints=constraints, task_id=task_id
    )
    return submit_request(pool, document, publisher=publisher, song_sources=song_sources).task_id


def submit_description_request(
    pool: ConnectionPool,
    description: str,
    *,
    song_id: str | None = None,
    constraints: Constraints | Mapping[str, Any] | None = None,
    task_id: str | None = None,
    publisher: Publisher | None = None,
) -> str:
    """Submit path 2 (a natural-language description, optionally with a song); the task id."""
    document = description_request_document(
        description, song_id=song_id, constraints=constraints, task_id=task_id
    )
    return submit_request(pool, document, publisher=publisher).task_id


def submit_request(
    pool: ConnectionPool,
    document: Mapping[str, Any],
    *,
    publisher: Publisher | None = None,
    song_sources: SongSources = DEFAULT_LIMITS.sources,
) -> SubmittedRequest:
    """Validate ``document``, store task + event in one transaction, then publish if asked."""
    payload = build_request(document, song_sources=song_sources)
    stored = payload.model_dump(mode="json", exclude_none=True, exclude=set(_VOLATILE_FIELDS))
    event = new_event(payload, source=SOURCE_PRODUCER)
    with pool.connection() as conn, conn.transaction():
        _check_song_exists(conn, payload)
        try:
            created = create_task(conn, payload.task_id, payload.path, stored).created
        except InvalidInput as exc:
            raise TaskConflict([FieldError("task_id", str(exc))]) from None
        if created:
            add_to_outbox(conn, event)
    if not created:
        log.info("duplicate request", extra={"task_id": payload.task_id})
        return SubmittedRequest(payload.task_id, created=False, event_id=None, published=False)
    log.info("request accepted", extra={"task_id": payload.task_id, "event_id": event.id})
    published = publisher is not None and publish_pending(pool, publisher, event.id)
    return SubmittedRequest(payload.task_id, created=True, event_id=event.id, published=published)


def publish_pending(pool: ConnectionPool, publisher: Publisher, event_id: str) -> bool:
    """One outbox relay pass; whether ``event_id`` is now published (a failure is only logged,
    the request stands: the relay publishes it later)."""
    try:
        relay_once(pool, publisher)
        with pool.connection() as conn:
            row = conn.execute(
                "SELECT published_at IS NOT NULL FROM outbox WHERE event_id = %s", (event_id,)
            ).fetchone()
    except (ChoreoError, psycopg.Error, PoolTimeout) as exc:
        log.warning("immediate publish failed; the outbox relay will retry: %s", exc)
        return False
    return bool(row and row[0])


def _document(path: str, **fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"path": path}
    for name, value in fields.items():
        if value is None:
            continue
        document[name] = (
            value.model_dump(exclude_none=True) if hasattr(value, "model_dump") else value
        )
    return document


def _check_song_exists(conn: psycopg.Connection, payload: ChoreographyRequested) -> None:
    song_id = payload.song.song_id if payload.song is not None else None
    if song_id is None:
        return
    row = conn.execute("SELECT 1 FROM songs WHERE song_id = %s", (song_id,)).fetchone()
    if row is None:
        raise RequestRejected([FieldError("song.song_id", f"no song {song_id!r} in the catalogue")])
