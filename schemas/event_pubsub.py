"""The CloudEvents Pub/Sub protocol binding, and Pub/Sub messages as they appear inside JSON.

Binary mode: every CloudEvent attribute ``x`` becomes the message attribute ``ce-x`` (values in
their canonical string form, no percent-encoding: Pub/Sub attributes are UTF-8 strings),
``datacontenttype`` becomes ``content-type``, and the message data is the payload JSON.
Structured mode: ``content-type: application/cloudevents+json`` and the data is the whole event.
Attribute names are case-insensitive. The ``cloudevents`` SDK has no Pub/Sub binding, so the
mapping is here; attribute validation and the JSON event format are in
:mod:`schemas.event_binding` (the same rules as HTTP, without HTTP's percent-encoding).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.event_binding import (
    CLOUDEVENTS_JSON,
    build_generic,
    decode_structured_json,
    encode_structured,
    parse_time,
    pubsub_label,
    read_data,
    require_attributes,
    validate_attributes,
)
from schemas.event_envelope import ChoreoEvent, EventDecodeError, GenericEvent

CE_PREFIX = "ce-"
CONTENT_TYPE = "content-type"


def encode_pubsub_binary(event: ChoreoEvent) -> tuple[bytes, dict[str, str]]:
    """Binary mode: ``(payload JSON, {"ce-id": ..., "content-type": "application/json"})``."""
    attributes: dict[str, str] = {}
    for name, value in event.attributes().items():
        key = CONTENT_TYPE if name == "datacontenttype" else CE_PREFIX + name
        attributes[key] = format_attribute(value)
    return event.data_json(), attributes


def encode_pubsub_structured(event: ChoreoEvent) -> tuple[bytes, dict[str, str]]:
    """Structured mode: ``(whole event JSON, {"content-type": "application/cloudevents+json"})``."""
    return encode_structured(event), {CONTENT_TYPE: CLOUDEVENTS_JSON}


def format_attribute(value: Any) -> str:
    """The canonical string form of an attribute value (RFC 3339 with ``Z`` for UTC times)."""
    if isinstance(value, datetime):
        text = value.isoformat()
        return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text
    return str(value)


def carries_cloudevent(attributes: Mapping[str, str]) -> bool:
    """True when a Pub/Sub message is a CloudEvent in either content mode."""
    lowered = {k.lower(): v for k, v in attributes.items()}
    return any(k.startswith(CE_PREFIX) for k in lowered) or _is_structured(lowered)


def decode_pubsub_message(
    data: bytes, attributes: Mapping[str, str]
) -> tuple[GenericEvent, dict[str, str]]:
    """The CloudEvent in a Pub/Sub message, and the attributes that are not part of it."""
    lowered: dict[str, str] = {}
    for key, value in attributes.items():
        name = key.lower()
        if name in lowered and (name.startswith(CE_PREFIX) or name == CONTENT_TYPE):
            # Names are case-insensitive (binding §3.1.3.1), so ce-id and CE-ID are one attribute
            # given twice; core spec: each attribute MUST appear at most once.
            raise EventDecodeError(
                f"{name} attribute appears more than once (names differ in case)"
            )
        lowered[name] = value
    if _is_structured(lowered):
        others = {k: v for k, v in attributes.items() if k.lower() != CONTENT_TYPE}
        return _decode_structured(data, lowered[CONTENT_TYPE]), others
    present: dict[str, Any] = {
        k.removeprefix(CE_PREFIX): v for k, v in lowered.items() if k.startswith(CE_PREFIX)
    }
    require_attributes(present, prefix=CE_PREFIX)
    # Binding §3.1.1: the content-type attribute is datacontenttype; its own example uses
    # ce-datacontenttype instead, so either is accepted, but not two different values.
    declared = present.pop("datacontenttype", None)
    content_type = lowered.get(CONTENT_TYPE) or declared
    if declared is not None and content_type != declared:
        raise EventDecodeError(
            f"datacontenttype: the content-type attribute {content_type!r} and the "
            f"ce-datacontenttype attribute {declared!r} disagree"
        )
    if content_type is not None:
        present["datacontenttype"] = content_type
    checked = validate_attributes(present, label=pubsub_label)
    others = {
        k: v
        for k, v in attributes.items()
        if not k.lower().startswith(CE_PREFIX) and k.lower() != CONTENT_TYPE
    }
    return build_generic(checked, read_data(data, content_type)), others


def _is_structured(lowered: Mapping[str, str]) -> bool:
    return lowered.get(CONTENT_TYPE, "").lower().startswith("application/cloudevents")


def _decode_structured(data: bytes, content_type: str) -> GenericEvent:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != CLOUDEVENTS_JSON:
        raise EventDecodeError(f"unsupported CloudEvents format {media_type!r} (only +json)")
    return decode_structured_json(data, what="message data")


@dataclass(frozen=True)
class PubSubMessage:
    """A ``PubsubMessage`` as found in a push body or ``MessagePublishedData``, data decoded."""

    data: bytes
    attributes: dict[str, str] = field(default_factory=dict)
    message_id: str | None = None
    publish_time: datetime | None = None
    ordering_key: str | None = None
    delivery_attempt: int | None = None


def parse_pubsub_message(message: Any, *, where: str) -> PubSubMessage:
    """Check and decode a JSON ``PubsubMessage``; both camelCase and snake_case names count."""
    if not isinstance(message, dict):
        raise EventDecodeError(f"{where} must be a JSON object")
    raw_data = message.get("data", "")
    if not isinstance(raw_data, str):
        raise EventDecodeError(f"{where}.data must be a base64 string")
    try:
        data = base64.b64decode(raw_data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EventDecodeError(f"{where}.data is not valid base64: {exc}") from None
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()
    ):
        raise EventDecodeError(f"{where}.attributes must be an object of strings")
    publish_time = _either(message, "publishTime", "publish_time", where)
    attempt = _either(message, "deliveryAttempt", "delivery_attempt", where)
    if attempt is not None and not isinstance(attempt, int):
        raise EventDecodeError(f"{where}.deliveryAttempt must be an integer")
    return PubSubMessage(
        data=data,
        attributes=attributes,
        message_id=_optional_text(_either(message, "messageId", "message_id", where)),
        publish_time=None
        if publish_time is None
        else parse_time(publish_time, name=f"{where}.publishTime"),
        ordering_key=_optional_text(_either(message, "orderingKey", "ordering_key", where)) or None,
        delivery_attempt=attempt,
    )


def _either(message: Mapping[str, Any], camel: str, snake: str, where: str) -> Any:
    # Real push bodies carry both spellings; they must agree when both are present.
    if camel in message and snake in message and message[camel] != message[snake]:
        raise EventDecodeError(f"{where}: {camel} and {snake} disagree")
    return message.get(camel, message.get(snake))


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)
