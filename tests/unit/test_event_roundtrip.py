"""Each choreo event type survives every encoding it can travel in, unchanged."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from schemas.event_codec import (
    ChoreoEvent,
    Delivery,
    from_http,
    from_pubsub,
    new_event,
    to_eventarc_http,
    to_http_binary,
    to_http_structured,
    to_pubsub,
    to_pubsub_structured,
    to_push_body,
)
from schemas.events import (
    SOURCE_BLUEPRINT_CONSUMER,
    SOURCE_JOB,
    SOURCE_PRODUCER,
    TOPIC_BY_TYPE,
    BlueprintReady,
    ChoreographyRequested,
    RevisionRequested,
    TaskFailed,
    VideoCompleted,
)
from schemas.topology import build_topology

AT = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
PUBLISHED = AT + timedelta(milliseconds=40)
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _events() -> dict[str, ChoreoEvent]:
    requested = ChoreographyRequested.model_validate(
        {
            "task_id": "task-001",
            "path": "describe",
            "song": {"song_id": "vibe-ace"},
            "description": "energetic hip-hop for beginners, about 2 minutes — «ça va»",
            "constraints": {
                "difficulty": "beginner",
                "energy": "high",
                "style": "hip-hop",
                "duration_s": 120.5,
                "output": {"width": 1080, "height": 1920, "fps": 30},
            },
            "requested_at": AT,
            "client": {"name": "dance-app", "version": "4.2.0", "request_id": "r-9"},
        }
    )
    revision = RevisionRequested.model_validate(
        {
            "task_id": "task-002",
            "parent_task_id": "task-001",
            "keep": [{"first": 1, "last": 8}],
            "redo": [{"first": 9, "last": 16}, {"first": 25, "last": 25}],
            "constraints": {"style": "pop", "difficulty": "advanced"},
            "requested_at": AT,
            "client": {"name": "choreo-cli"},
        }
    )
    ready = BlueprintReady(
        task_id="task-001",
        schema_version="1.0",
        song_id="vibe-ace",
        audio_uri="gs://choreo-songs/vibe-ace.ogg",
        duration_s=61.46,
        moves_count=24,
        blueprint_uri="gs://choreo-blueprints/task-001.json",
    )
    completed = VideoCompleted(
        task_id="task-001",
        video_uri="videos/task-001.mp4",
        duration_s=61.5,
        width=1080,
        height=1920,
        fps=29.97,
        size_bytes=12_345_678,
        completed_at=AT.astimezone(timezone(timedelta(hours=2))),
    )
    failed = TaskFailed(
        task_id="task-001",
        stage="render",
        reason="ffmpeg exited with status 1: clip moves/spin.mp4 is truncated",
        error_code="ffmpeg-failed",
        failed_at=AT,
    )
    return {
        "requested": new_event(requested, source=SOURCE_PRODUCER, traceparent=TRACEPARENT),
        "revision": new_event(revision, source=SOURCE_PRODUCER),
        "ready": new_event(ready, source=SOURCE_BLUEPRINT_CONSUMER),
        "completed": new_event(completed, source=SOURCE_JOB, tracestate="vendor=1"),
        "failed": new_event(failed, source=SOURCE_JOB),
    }


def _pubsub_binary(event: ChoreoEvent) -> Delivery[ChoreoEvent]:
    return from_pubsub(*to_pubsub(event), message_id="m-1", ordering_key=event.ordering_key)


def _pubsub_structured(event: ChoreoEvent) -> Delivery[ChoreoEvent]:
    return from_pubsub(*to_pubsub_structured(event), message_id="m-1")


def _http_binary(event: ChoreoEvent) -> Delivery[ChoreoEvent]:
    return from_http(*to_http_binary(event))


def _http_structured(event: ChoreoEvent) -> Delivery[ChoreoEvent]:
    return from_http(*to_http_structured(event))


def _push(event: ChoreoEvent) -> Delivery[ChoreoEvent]:
    headers, body = to_push_body(
        event, message_id="m-1", subscription="projects/p/subscriptions/s", publish_time=PUBLISHED
    )
    return from_http(headers, body)


def _push_structured(event: ChoreoEvent) -> Delivery[ChoreoEvent]:
    headers, body = to_push_body(
        event,
        message_id="m-1",
        subscription="projects/p/subscriptions/s",
        publish_time=PUBLISHED,
        structured=True,
    )
    return from_http(headers, body)


def _eventarc(event: ChoreoEvent) -> Delivery[ChoreoEvent]:
    headers, body = to_eventarc_http(
        event,
        message_id="m-1",
        topic=f"projects/p/topics/{event.topic}",
        subscription="projects/p/subscriptions/eventarc-sub",
        publish_time=PUBLISHED,
    )
    return from_http(headers, body)


ENCODINGS: dict[str, Callable[[ChoreoEvent], Delivery[ChoreoEvent]]] = {
    "pubsub-binary": _pubsub_binary,
    "pubsub-structured": _pubsub_structured,
    "http-binary": _http_binary,
    "http-structured": _http_structured,
    "push-binary": _push,
    "push-structured": _push_structured,
    "eventarc": _eventarc,
}


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("kind", ["requested", "revision", "ready", "completed", "failed"])
def test_event_roundtrips_to_an_equal_typed_event(kind: str, encoding: str) -> None:
    """Encoding then decoding gives back an event equal to the original, payload and all."""
    event = _events()[kind]
    decoded = ENCODINGS[encoding](event).event
    assert decoded == event
    assert decoded.type == event.type


@pytest.mark.parametrize("encoding", ["push-binary", "push-structured", "eventarc"])
def test_wrapped_delivery_keeps_transport_facts_outside_the_event(encoding: str) -> None:
    """Message id, ordering key and publish time land on the Delivery, the CloudEvent id is kept."""
    event = _events()["ready"]
    delivery = ENCODINGS[encoding](event)
    assert delivery.message_id == "m-1"
    assert delivery.ordering_key == "task-001"
    assert delivery.publish_time == PUBLISHED
    assert delivery.event.id == event.id != delivery.message_id


def test_pubsub_binary_puts_attributes_in_ce_headers_and_payload_in_data() -> None:
    """Binary Pub/Sub mode: ``ce-*`` attributes, ``content-type`` JSON, data is the payload."""
    event = _events()["requested"]
    data, attributes = to_pubsub(event)
    assert json.loads(data) == event.data.model_dump(mode="json", exclude_none=True)
    assert attributes["ce-type"] == "com.choreo.choreography.requested.v1"
    assert attributes["ce-id"] == event.id
    assert attributes["ce-specversion"] == "1.0"
    assert attributes["ce-subject"] == "task-001"
    assert attributes["ce-traceparent"] == TRACEPARENT
    assert attributes["content-type"] == "application/json"


def test_pubsub_attribute_names_are_case_insensitive() -> None:
    """Upper-case ``CE-TYPE`` style attribute names decode like lower-case ones."""
    event = _events()["failed"]
    data, attributes = to_pubsub(event)
    shouting = {name.upper(): value for name, value in attributes.items()}
    assert from_pubsub(data, shouting).event == event


def test_unknown_extensions_and_other_attributes_are_preserved() -> None:
    """A foreign ``ce-`` extension stays on the event; a plain attribute goes to the Delivery."""
    event = _events()["completed"]
    data, attributes = to_pubsub(event)
    attributes |= {"ce-partitionkey": "p7", "CloudPubSubDeadLetterSourceDeliveryCount": "5"}
    delivery = from_pubsub(data, attributes)
    assert delivery.event.extensions == {"partitionkey": "p7"}
    assert delivery.attributes == {"CloudPubSubDeadLetterSourceDeliveryCount": "5"}


def test_every_event_type_has_a_topic() -> None:
    """video.completed and task.failed share ``video-done``, requests and revisions share
    ``choreography-requests`` (one consumer plans both); blueprint.ready has its own."""
    assert TOPIC_BY_TYPE == {
        "com.choreo.choreography.requested.v1": "choreography-requests",
        "com.choreo.choreography.revision.requested.v1": "choreography-requests",
        "com.choreo.blueprint.ready.v1": "blueprint-ready",
        "com.choreo.video.completed.v1": "video-done",
        "com.choreo.task.failed.v1": "video-done",
    }


def test_registry_agrees_with_the_topology() -> None:
    """The codec's type-to-topic map is the one the topology (emulator, infra) is built from."""
    topology = build_topology()
    for event_type, topic in TOPIC_BY_TYPE.items():
        assert topology.topic_for_event_type(event_type).name == topic


def test_http_header_names_are_case_insensitive() -> None:
    """``CE-Id``/``Content-Type`` style header names decode like lower-case ones."""
    event = _events()["ready"]
    headers, body = to_http_binary(event)
    titled = {name.title(): value for name, value in headers.items()}
    assert from_http(titled, body).event == event


def test_http_headers_may_be_given_as_pairs() -> None:
    """Headers as (name, value) pairs, as Werkzeug's Headers iterate, are accepted."""
    event = _events()["failed"]
    headers, body = to_http_binary(event)
    assert from_http(list(headers.items()), body).event == event
