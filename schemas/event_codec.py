"""Encode choreo events for Pub/Sub and HTTP, and decode every form they may arrive in.

Decoding accepts, and turns into the same typed :class:`ChoreoEvent`:

- Pub/Sub messages in binary (``ce-*`` attributes) or structured mode (:func:`from_pubsub`);
- HTTP binary or structured CloudEvents, the Pub/Sub push wrapper, and Eventarc's
  ``google.cloud.pubsub.topic.v1.messagePublished`` CloudEvent wrapping one of our messages
  (:func:`from_http`).

The ``decode_*`` functions stop one step earlier, at a :class:`GenericEvent`: they accept any
CloudEvent (Cloud Storage, Firestore, Firebase) and legacy background events, converted the way
functions-framework-python does. Every failure is an :class:`EventDecodeError` (an
``InvalidInput``) whose message names the attribute or field.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from schemas.event_binding import (
    CLOUDEVENTS_JSON,
    decode_http_binary,
    decode_structured_json,
    encode_http_binary,
    encode_structured,
)
from schemas.event_envelope import (
    ChoreoEvent,
    Delivery,
    EventDecodeError,
    GenericEvent,
    Transport,
    new_event,
    parse_json,
    to_choreo_event,
)
from schemas.event_legacy import MESSAGE_PUBLISHED, is_legacy_event, legacy_to_cloudevent
from schemas.event_pubsub import (
    PubSubMessage,
    carries_cloudevent,
    decode_pubsub_message,
    encode_pubsub_binary,
    encode_pubsub_structured,
    format_attribute,
    parse_pubsub_message,
)

__all__ = [
    "ChoreoEvent",
    "Delivery",
    "EventDecodeError",
    "GenericEvent",
    "decode_http",
    "decode_pubsub",
    "from_http",
    "from_pubsub",
    "new_event",
    "to_eventarc_http",
    "to_http_binary",
    "to_http_structured",
    "to_pubsub",
    "to_pubsub_structured",
    "to_push_body",
]

Headers = Mapping[str, str] | Iterable[tuple[str, str]]
PUBSUB_SOURCE_PREFIX = "//pubsub.googleapis.com/"
_PUBSUB_MESSAGE_TYPE = "type.googleapis.com/google.pubsub.v1.PubsubMessage"

to_pubsub = encode_pubsub_binary
to_pubsub_structured = encode_pubsub_structured
to_http_binary = encode_http_binary


def to_http_structured(event: ChoreoEvent) -> tuple[dict[str, str], bytes]:
    """HTTP structured mode: ``content-type: application/cloudevents+json``, body = the event."""
    return {"content-type": CLOUDEVENTS_JSON}, encode_structured(event)


def to_push_body(
    event: ChoreoEvent,
    *,
    message_id: str,
    subscription: str,
    publish_time: datetime,
    structured: bool = False,
) -> tuple[dict[str, str], bytes]:
    """What a Pub/Sub push subscription POSTs for ``event`` (binary mode unless ``structured``)."""
    message = _message_json(event, message_id, publish_time, structured=structured)
    body = {"message": message, "subscription": subscription}
    return {"content-type": "application/json"}, json.dumps(body).encode()


def to_eventarc_http(
    event: ChoreoEvent,
    *,
    message_id: str,
    topic: str,
    subscription: str,
    publish_time: datetime,
) -> tuple[dict[str, str], bytes]:
    """What Eventarc POSTs for ``event`` published on ``topic``: a binary messagePublished."""
    message = _message_json(event, message_id, publish_time, structured=False)
    headers = {
        "ce-id": message_id,
        "ce-source": f"{PUBSUB_SOURCE_PREFIX}{topic}",
        "ce-specversion": "1.0",
        "ce-type": MESSAGE_PUBLISHED,
        "ce-time": format_attribute(publish_time),
        "content-type": "application/json; charset=utf-8",
    }
    body = {"message": message, "subscription": subscription}
    return headers, json.dumps(body).encode()


def from_pubsub(
    data: bytes,
    attributes: Mapping[str, str],
    *,
    message_id: str | None = None,
    ordering_key: str | None = None,
    delivery_attempt: int | None = None,
    publish_time: datetime | None = None,
    subscription: str | None = None,
) -> Delivery[ChoreoEvent]:
    """A choreo event from a pulled Pub/Sub message (binary or structured mode)."""
    generic = decode_pubsub(
        data,
        attributes,
        message_id=message_id,
        ordering_key=ordering_key,
        delivery_attempt=delivery_attempt,
        publish_time=publish_time,
        subscription=subscription,
    )
    return _typed(generic)


def decode_pubsub(
    data: bytes,
    attributes: Mapping[str, str],
    *,
    message_id: str | None = None,
    ordering_key: str | None = None,
    delivery_attempt: int | None = None,
    publish_time: datetime | None = None,
    subscription: str | None = None,
) -> Delivery[GenericEvent]:
    """Any CloudEvent from a pulled Pub/Sub message; the message facts go on the Delivery."""
    if not carries_cloudevent(attributes):
        raise EventDecodeError(
            "missing ce-type attribute: the message has no ce-* attributes and no "
            "application/cloudevents content-type"
        )
    event, others = decode_pubsub_message(data, attributes)
    return Delivery(
        event=event,
        transport="pubsub",
        message_id=message_id,
        ordering_key=ordering_key or None,
        delivery_attempt=delivery_attempt,
        publish_time=publish_time,
        subscription=subscription,
        attributes=others,
    )


def from_http(headers: Headers, body: bytes) -> Delivery[ChoreoEvent]:
    """A choreo event from any accepted HTTP form (binary, structured, push, Eventarc)."""
    return _typed(decode_http(headers, body))


def decode_http(headers: Headers, body: bytes) -> Delivery[GenericEvent]:
    """Any CloudEvent from an HTTP request; wrapped Pub/Sub messages are unwrapped."""
    lowered: dict[str, str] = {}
    for key, value in _header_items(headers):
        name = key.lower()
        if name in lowered and name.startswith("ce-"):
            # Core spec: each attribute MUST appear at most once.
            raise EventDecodeError(f"{name} header appears more than once")
        lowered[name] = value
    media_type = lowered.get("content-type", "").split(";", 1)[0].strip().lower()
    # HTTP binding §3: the Content-Type decides the mode; a structured message MAY also carry
    # ce-* headers (§3.2.3), which are then ignored.
    if media_type.startswith("application/cloudevents"):
        if media_type != CLOUDEVENTS_JSON:
            raise EventDecodeError(f"unsupported CloudEvents format {media_type!r} (only +json)")
        return _unwrap(decode_structured_json(body, what="body"), "http-structured")
    if any(name.startswith("ce-") for name in lowered):
        return _unwrap(decode_http_binary(lowered, body), "http-binary")
    document = parse_json(body, what="body")
    if not isinstance(document, dict):
        raise EventDecodeError("body must be a JSON object")
    if "message" in document or "subscription" in document:
        return _from_push(document)
    if is_legacy_event(document):
        return _unwrap(legacy_to_cloudevent(document), "legacy-background")
    raise EventDecodeError(
        "not a CloudEvent: no ce-* headers, content-type is not application/cloudevents+json, "
        "and the body is neither a Pub/Sub push body (message) nor a legacy event (context)"
    )


def _typed(delivery: Delivery[GenericEvent]) -> Delivery[ChoreoEvent]:
    return Delivery(
        event=to_choreo_event(delivery.event),
        transport=delivery.transport,
        message_id=delivery.message_id,
        ordering_key=delivery.ordering_key,
        delivery_attempt=delivery.delivery_attempt,
        publish_time=delivery.publish_time,
        subscription=delivery.subscription,
        attributes=delivery.attributes,
    )


def _from_push(document: dict[str, Any]) -> Delivery[GenericEvent]:
    if "message" not in document:
        raise EventDecodeError("push body has no message")
    message = parse_pubsub_message(document["message"], where="message")
    subscription = _subscription(document)
    attempt = document.get("deliveryAttempt", message.delivery_attempt)
    if attempt is not None and not isinstance(attempt, int):
        raise EventDecodeError("deliveryAttempt must be an integer")
    if carries_cloudevent(message.attributes):
        return _inner_delivery(message, "pubsub-push", subscription, attempt)
    # A plain message: turned into messagePublished, as functions-framework does for raw pushes.
    if not message.message_id:
        raise EventDecodeError("push body message has no messageId")
    wrapper = legacy_to_cloudevent(
        {
            "context": {
                "eventId": message.message_id,
                "timestamp": format_attribute(message.publish_time) if message.publish_time else "",
                "eventType": "google.pubsub.topic.publish",
                "resource": {"service": "pubsub.googleapis.com", "name": ""},
            },
            "data": {
                "@type": _PUBSUB_MESSAGE_TYPE,
                "data": document["message"].get("data", ""),
                "attributes": message.attributes,
            },
        }
    )
    return _outer_delivery(wrapper, message, "pubsub-push", subscription, attempt)


def _unwrap(event: GenericEvent, transport: Transport) -> Delivery[GenericEvent]:
    """A messagePublished event carrying one of ours yields the inner event; others pass."""
    if event.type != MESSAGE_PUBLISHED:
        return Delivery(event=event, transport=transport)
    if not isinstance(event.data, dict) or "message" not in event.data:
        raise EventDecodeError(f"{MESSAGE_PUBLISHED} data has no message")
    message = parse_pubsub_message(event.data["message"], where="data.message")
    subscription = _subscription(event.data)
    wrapped: Transport = "eventarc" if transport == "http-binary" else transport
    if carries_cloudevent(message.attributes):
        return _inner_delivery(message, wrapped, subscription, message.delivery_attempt)
    return _outer_delivery(event, message, wrapped, subscription, message.delivery_attempt)


def _inner_delivery(
    message: PubSubMessage, transport: Transport, subscription: str | None, attempt: int | None
) -> Delivery[GenericEvent]:
    inner, others = decode_pubsub_message(message.data, message.attributes)
    return Delivery(
        event=inner,
        transport=transport,
        message_id=message.message_id,
        ordering_key=message.ordering_key,
        delivery_attempt=attempt,
        publish_time=message.publish_time,
        subscription=subscription,
        attributes=others,
    )


def _outer_delivery(
    event: GenericEvent,
    message: PubSubMessage,
    transport: Transport,
    subscription: str | None,
    attempt: int | None,
) -> Delivery[GenericEvent]:
    return Delivery(
        event=event,
        transport=transport,
        message_id=message.message_id,
        ordering_key=message.ordering_key,
        delivery_attempt=attempt,
        publish_time=message.publish_time,
        subscription=subscription,
        attributes=dict(message.attributes),
    )


def _message_json(
    event: ChoreoEvent, message_id: str, publish_time: datetime, *, structured: bool
) -> dict[str, Any]:
    data, attributes = (to_pubsub_structured if structured else to_pubsub)(event)
    stamp = format_attribute(publish_time)
    # Real push bodies carry both spellings of the id and time; so does this one.
    return {
        "data": base64.b64encode(data).decode("ascii"),
        "attributes": attributes,
        "messageId": message_id,
        "message_id": message_id,
        "publishTime": stamp,
        "publish_time": stamp,
        "orderingKey": event.ordering_key,
    }


def _subscription(document: Mapping[str, Any]) -> str | None:
    subscription = document.get("subscription")
    if subscription is not None and not isinstance(subscription, str):
        raise EventDecodeError("subscription must be a string")
    return subscription


def _header_items(headers: Headers) -> Iterable[tuple[str, str]]:
    if isinstance(headers, Mapping):
        return headers.items()
    return headers
