"""The decoded forms of a CloudEvent: generic (any producer) and typed (one of choreo's four).

Decoding happens in two steps. Every transport form (Pub/Sub, HTTP binary or structured, push
wrapper, Eventarc, legacy background events) becomes a :class:`GenericEvent`; then
:func:`to_choreo_event` checks the type against the registry and validates ``data`` against its
payload model. Transport facts (Pub/Sub message id, ordering key, delivery attempt) travel next
to the event in a :class:`Delivery`, never inside it: the CloudEvent ``id`` is the idempotency
key, and a replay gets a new message id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from schemas.errors import InvalidInput
from schemas.events import EventPayload, spec_for_payload, spec_for_type
from schemas.strict_json import JsonRejected, loads_strict

JSON_CONTENT_TYPE = "application/json"
# Distributed Tracing extension attributes, carried as first-class fields so logs can use them.
TRACE_EXTENSIONS = ("traceparent", "tracestate")


class EventDecodeError(InvalidInput):
    """An incoming message is not a valid event; the message names the attribute or field."""


Transport = Literal[
    "pubsub", "http-binary", "http-structured", "pubsub-push", "eventarc", "legacy-background"
]


@dataclass(frozen=True)
class GenericEvent:
    """Any CloudEvent 1.0: context attributes plus ``data`` (parsed JSON, text or bytes)."""

    id: str
    source: str
    type: str
    specversion: str = "1.0"
    time: datetime | None = None
    subject: str | None = None
    datacontenttype: str | None = None
    dataschema: str | None = None
    extensions: dict[str, Any] = field(default_factory=dict)
    data: Any = None


class ChoreoEvent(BaseModel):
    """A choreo event: CloudEvent attributes plus a validated payload (which sets ``type``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=256)
    source: str = Field(min_length=1, max_length=256)
    time: AwareDatetime
    subject: str | None = Field(default=None, min_length=1)
    data: EventPayload
    traceparent: str | None = None
    tracestate: str | None = None
    extensions: dict[str, str] = Field(default_factory=dict)
    """Other extension attributes, kept so that forwarding an event loses nothing."""

    @property
    def type(self) -> str:
        """The CloudEvent type, derived from the payload model so the two cannot disagree."""
        return spec_for_payload(self.data).type

    @property
    def topic(self) -> str:
        """The Pub/Sub topic this event is published on."""
        return spec_for_payload(self.data).topic

    @property
    def ordering_key(self) -> str:
        """The Pub/Sub ordering key: the task id."""
        return self.data.task_id

    @property
    def datacontenttype(self) -> str:
        """Always JSON: choreo payloads are JSON objects."""
        return JSON_CONTENT_TYPE

    def attributes(self) -> dict[str, Any]:
        """The CloudEvent context attributes (``time`` as a datetime), ``None`` values left out."""
        attributes: dict[str, Any] = {
            "specversion": "1.0",
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": self.time,
            "datacontenttype": JSON_CONTENT_TYPE,
            **self.extensions,
        }
        for name, value in (
            ("subject", self.subject),
            ("traceparent", self.traceparent),
            ("tracestate", self.tracestate),
        ):
            if value is not None:
                attributes[name] = value
        return attributes

    def data_json(self) -> bytes:
        """The payload as compact UTF-8 JSON, the bytes that go on the wire."""
        return self.data.model_dump_json(exclude_none=True).encode()


E = TypeVar("E", GenericEvent, ChoreoEvent)


@dataclass(frozen=True)
class Delivery(Generic[E]):
    """A decoded event and how it arrived; transport facts stay out of the event itself."""

    event: E
    transport: Transport
    message_id: str | None = None
    ordering_key: str | None = None
    delivery_attempt: int | None = None
    publish_time: datetime | None = None
    subscription: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    """Pub/Sub attributes that are not CloudEvent attributes (e.g. dead-letter source info)."""


def new_event(
    data: EventPayload,
    *,
    source: str,
    traceparent: str | None = None,
    tracestate: str | None = None,
) -> ChoreoEvent:
    """A fresh event for ``data``: new UUID id, time now, subject = the task id."""
    return ChoreoEvent(
        id=str(uuid.uuid4()),
        source=source,
        time=datetime.now(UTC),
        subject=data.task_id,
        data=data,
        traceparent=traceparent,
        tracestate=tracestate,
    )


def to_choreo_event(event: GenericEvent) -> ChoreoEvent:
    """Type a generic event: known type, JSON object data valid for that type's payload model."""
    try:
        spec = spec_for_type(event.type)
    except InvalidInput as exc:
        raise EventDecodeError(str(exc)) from None
    if event.datacontenttype is not None and not is_json_content_type(event.datacontenttype):
        raise EventDecodeError(
            f"datacontenttype {event.datacontenttype!r} is not JSON (type {event.type})"
        )
    data = event.data
    if isinstance(data, bytes):
        data = parse_json(data, what="data")
    if not isinstance(data, dict):
        raise EventDecodeError(f"data must be a JSON object, got {_json_kind(data)}")
    if event.time is None:
        raise EventDecodeError("missing time attribute (required on choreo events)")
    try:
        payload = spec.payload.model_validate(data)
    except ValidationError as exc:
        raise EventDecodeError(describe_validation_error(exc, prefix="data")) from None
    extensions = {k: str(v) for k, v in event.extensions.items() if k not in TRACE_EXTENSIONS}
    try:
        return ChoreoEvent(
            id=event.id,
            source=event.source,
            time=event.time,
            subject=event.subject,
            data=payload,
            traceparent=_optional_str(event.extensions.get("traceparent")),
            tracestate=_optional_str(event.extensions.get("tracestate")),
            extensions=extensions,
        )
    except ValidationError as exc:
        raise EventDecodeError(describe_validation_error(exc, prefix="event")) from None


def describe_validation_error(exc: ValidationError, *, prefix: str) -> str:
    """``data.song: exactly one of song_id and audio_uri; data.task_id: ...`` from pydantic."""
    parts = []
    for error in exc.errors(include_url=False):
        location = ".".join([prefix, *(str(part) for part in error["loc"])])
        parts.append(f"{location}: {error['msg']}")
    return "; ".join(parts)


def is_json_content_type(content_type: str) -> bool:
    """True for ``application/json``, ``text/json``, ``application/x+json`` and parameters."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type in ("application/json", "text/json") or media_type.endswith("+json")


def parse_json(raw: bytes | str, *, what: str) -> Any:
    """Parse JSON within :mod:`schemas.strict_json`'s limits; errors name ``what`` and the path."""
    try:
        return loads_strict(raw)
    except JsonRejected as exc:
        if exc.path:
            raise EventDecodeError(f"{what}.{exc.path}: {exc.problem}") from None
        raise EventDecodeError(f"{what} is not valid JSON: {exc.problem}") from None


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _json_kind(value: Any) -> str:
    if value is None:
        return "no data"
    return {list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a number")
