"""Malformed events are rejected with an ``InvalidInput`` whose message names the problem."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.errors import InvalidInput
from schemas.event_codec import (
    EventDecodeError,
    decode_http,
    from_http,
    from_pubsub,
    new_event,
    to_pubsub,
)
from schemas.events import SOURCE_PRODUCER, ChoreographyRequested

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MESSAGE_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"


def _valid_payload() -> dict[str, Any]:
    return {
        "task_id": "task-1",
        "path": "song",
        "song": {"song_id": "vibe-ace"},
        "requested_at": "2026-03-01T12:00:00Z",
    }


def _valid_message() -> tuple[bytes, dict[str, str]]:
    payload = ChoreographyRequested.model_validate(_valid_payload())
    return to_pubsub(new_event(payload, source=SOURCE_PRODUCER))


def _with_payload(**changes: Any) -> bytes:
    payload = _valid_payload() | changes
    return json.dumps({k: v for k, v in payload.items() if v is not None}).encode()


def _push_body(message: Any) -> bytes:
    return json.dumps({"message": message, "subscription": "projects/p/subscriptions/s"}).encode()


def _message_json(data: bytes, attributes: dict[str, str]) -> dict[str, Any]:
    return {
        "data": base64.b64encode(data).decode(),
        "attributes": attributes,
        "messageId": "m-1",
        "publishTime": "2026-03-01T12:00:01Z",
    }


def _raises(fragment: str) -> pytest.RaisesExc[EventDecodeError]:
    return pytest.raises(EventDecodeError, match=re.escape(fragment))


def test_decode_errors_are_invalid_input() -> None:
    """EventDecodeError is a permanent InvalidInput, so the runtime acks and records it."""
    assert issubclass(EventDecodeError, InvalidInput)


@pytest.mark.parametrize(
    ("drop", "fragment"),
    [
        ("ce-type", "missing ce-type attribute"),
        ("ce-id", "missing ce-id attribute"),
        ("ce-source", "missing ce-source attribute"),
        ("ce-specversion", "missing ce-specversion attribute"),
        ("ce-time", "missing time attribute"),
    ],
)
def test_pubsub_message_missing_an_attribute_is_rejected(drop: str, fragment: str) -> None:
    """A binary message without a required attribute names that attribute."""
    data, attributes = _valid_message()
    del attributes[drop]
    with _raises(fragment):
        from_pubsub(data, attributes)


def test_pubsub_message_without_any_cloudevent_attribute_is_rejected() -> None:
    """A plain Pub/Sub message (no ``ce-*``, no structured content-type) is not an event."""
    with _raises("missing ce-type attribute"):
        from_pubsub(_with_payload(), {"origin": "somewhere"})


@pytest.mark.parametrize(
    ("attribute", "value", "fragment"),
    [
        ("ce-type", "com.x", "unknown event type com.x"),
        ("ce-specversion", "0.3", "unsupported ce-specversion '0.3'"),
        ("ce-time", "yesterday", "ce-time attribute is not an RFC 3339 timestamp: 'yesterday'"),
        ("ce-time", "2026-03-01T12:00:00", "ce-time attribute has no UTC offset"),
        ("content-type", "text/plain", "datacontenttype 'text/plain' is not JSON"),
        ("ce-bad_name", "x", "invalid CloudEvent attributes"),
    ],
)
def test_pubsub_message_with_a_bad_attribute_is_rejected(
    attribute: str, value: str, fragment: str
) -> None:
    """A wrong attribute value (unknown type, bad time, non-JSON data) is named."""
    data, attributes = _valid_message()
    attributes[attribute] = value
    with _raises(fragment):
        from_pubsub(data, attributes)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b'{"task_id": ', "data is not valid JSON: Expecting value"),
        (b'{"task_id": NaN}', "data.task_id: nan is not a finite number"),
        (b"\xff\xfe", "data is not valid JSON"),
        (b"[1, 2]", "data must be a JSON object, got an array"),
        (b"", "data must be a JSON object, got no data"),
    ],
)
def test_pubsub_message_with_bad_data_is_rejected(data: bytes, fragment: str) -> None:
    """Data that is not a JSON object says why."""
    _, attributes = _valid_message()
    with _raises(fragment):
        from_pubsub(data, attributes)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        (
            {"song": {"song_id": "a", "audio_uri": "gs://bkt/a.ogg"}},
            "data.song: exactly one of song_id and audio_uri",
        ),
        ({"song": {}}, "data.song: exactly one of song_id and audio_uri"),
        ({"song": None}, "path 'song' needs song"),
        ({"path": "describe", "song": None}, "path 'describe' needs description"),
        ({"path": "describe", "description": "   "}, "data.description: String should match"),
        ({"path": "dance"}, "data.path: Input should be 'song' or 'describe'"),
        ({"task_id": "-leading-dash"}, "data.task_id: String should match pattern"),
        ({"task_id": "t" * 65}, "data.task_id: String should match pattern"),
        ({"colour": "red"}, "data.colour: Extra inputs are not permitted"),
        ({"requested_at": "2026-03-01T12:00:00"}, "data.requested_at: Input should have timezone"),
        ({"constraints": {"difficulty": 3}}, "data.constraints.difficulty: Input should be"),
        (
            {"constraints": {"duration_s": 5}},
            "data.constraints.duration_s: Input should be greater",
        ),
        ({"constraints": {"duration_s": 1e309}}, "data.constraints.duration_s: inf is not"),
        ({"constraints": {"style": "Hip Hop"}}, "data.constraints.style: String should match"),
        (
            {"constraints": {"output": {"width": 1081, "height": 1920, "fps": 30}}},
            "data.constraints.output.width: Input should be a multiple of 2",
        ),
        ({"song": {"audio_uri": "https://x/a.ogg"}}, "data.song.audio_uri: String should match"),
        ({"song": {"audio_uri": "/etc/passwd"}}, "data.song.audio_uri: String should match"),
        ({"song": {"audio_uri": "songs/a b.ogg"}}, "data.song.audio_uri: String should match"),
    ],
)
def test_payload_violating_the_model_names_the_field(
    changes: dict[str, Any], fragment: str
) -> None:
    """Each payload rule broken is reported with its dotted field path."""
    _, attributes = _valid_message()
    with _raises(fragment):
        from_pubsub(_with_payload(**changes), attributes)


def test_model_rejects_non_finite_numbers_given_directly() -> None:
    """A NaN built in Python (not parsed from JSON) is still refused by the payload model."""
    with pytest.raises(ValidationError, match="finite number"):
        ChoreographyRequested.model_validate(
            _valid_payload() | {"constraints": {"duration_s": float("nan")}}
        )


def test_structured_pubsub_message_with_bad_json_is_rejected() -> None:
    """Structured mode with a body that is not JSON names the message data."""
    with _raises("message data is not valid JSON"):
        from_pubsub(b"{nope", {"content-type": "application/cloudevents+json"})


def test_structured_pubsub_message_in_another_format_is_rejected() -> None:
    """Only the JSON event format is understood."""
    with _raises("unsupported CloudEvents format 'application/cloudevents+avro'"):
        from_pubsub(b"\x00", {"Content-Type": "application/cloudevents+avro"})


@pytest.mark.parametrize(
    ("headers", "body", "fragment"),
    [
        ({"content-type": "application/json"}, b"not json", "body is not valid JSON"),
        ({"content-type": "application/json"}, b"[]", "body must be a JSON object"),
        ({"content-type": "application/json"}, b'{"hello": 1}', "not a CloudEvent: no ce-*"),
        (
            {"content-type": "application/cloudevents+json"},
            b'"just a string"',
            "body must be a JSON object (a structured CloudEvent)",
        ),
        (
            {"content-type": "application/cloudevents+json"},
            b'{"specversion": "1.0", "source": "//x", "type": "com.x"}',
            "missing id attribute",
        ),
        (
            {"content-type": "application/cloudevents-batch+json"},
            b"[]",
            "unsupported CloudEvents format 'application/cloudevents-batch+json'",
        ),
        ({"ce-id": "1", "ce-source": "//x", "ce-specversion": "1.0"}, b"{}", "missing ce-type"),
    ],
)
def test_http_request_that_is_no_event_is_rejected(
    headers: dict[str, str], body: bytes, fragment: str
) -> None:
    """HTTP bodies and headers that form no CloudEvent say what is missing."""
    with _raises(fragment):
        decode_http(headers, body)


def test_foreign_cloudevent_is_not_a_choreo_event() -> None:
    """A valid CloudEvent of someone else's type decodes generically but not as ours."""
    headers = {
        "ce-id": "1",
        "ce-source": "//storage.googleapis.com/projects/_/buckets/b",
        "ce-specversion": "1.0",
        "ce-type": "google.cloud.storage.object.v1.finalized",
        "ce-time": "2026-03-01T12:00:00Z",
        "content-type": "application/json",
    }
    assert decode_http(headers, b'{"name": "a.ogg"}').event.data == {"name": "a.ogg"}
    with _raises("unknown event type google.cloud.storage.object.v1.finalized"):
        from_http(headers, b'{"name": "a.ogg"}')


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"subscription": "projects/p/subscriptions/s"}', "push body has no message"),
        (_push_body("text"), "message must be a JSON object"),
        (
            _push_body({"data": "%%%not-base64", "messageId": "1"}),
            "message.data is not valid base64",
        ),
        (_push_body({"data": 12, "messageId": "1"}), "message.data must be a base64 string"),
        (
            _push_body({"data": "", "attributes": {"ce-id": 1}, "messageId": "1"}),
            "message.attributes must be an object of strings",
        ),
        (
            _push_body({"data": "", "messageId": "1", "message_id": "2"}),
            "message: messageId and message_id disagree",
        ),
        (_push_body({"data": ""}), "push body message has no messageId"),
        (
            _push_body({"data": "", "messageId": "1", "publishTime": "soon"}),
            "message.publishTime is not an RFC 3339 timestamp",
        ),
    ],
)
def test_malformed_push_body_is_rejected(body: bytes, fragment: str) -> None:
    """A push wrapper with a missing or malformed message names the broken field."""
    with _raises(fragment):
        from_http({"content-type": "application/json"}, body)


def test_push_body_with_bad_inner_event_names_the_inner_problem() -> None:
    """The event inside a push message is checked like any Pub/Sub message."""
    data, attributes = _valid_message()
    del attributes["ce-source"]
    with _raises("missing ce-source attribute"):
        from_http({}, _push_body(_message_json(data, attributes)))


def _eventarc_headers() -> dict[str, str]:
    return {
        "ce-id": "1096434104173400",
        "ce-source": "//pubsub.googleapis.com/projects/p/topics/blueprint-ready",
        "ce-specversion": "1.0",
        "ce-type": MESSAGE_PUBLISHED,
        "ce-time": "2026-03-01T12:00:01Z",
        "content-type": "application/json; charset=utf-8",
    }


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"subscription": "s"}', f"{MESSAGE_PUBLISHED} data has no message"),
        (b'"message"', f"{MESSAGE_PUBLISHED} data has no message"),
        (
            json.dumps({"message": {"data": "@@", "attributes": {"ce-id": "x"}}}).encode(),
            "data.message.data is not valid base64",
        ),
    ],
)
def test_malformed_eventarc_body_is_rejected(body: bytes, fragment: str) -> None:
    """An Eventarc messagePublished wrapper without a decodable message names the problem."""
    with _raises(fragment):
        from_http(_eventarc_headers(), body)


def test_eventarc_wrapping_a_foreign_message_is_not_a_choreo_event() -> None:
    """Eventarc around a plain Pub/Sub message is a messagePublished event, not one of ours."""
    body = json.dumps({"message": {"data": "", "messageId": "1"}, "subscription": "s"}).encode()
    assert decode_http(_eventarc_headers(), body).event.type == MESSAGE_PUBLISHED
    with _raises(f"unknown event type {MESSAGE_PUBLISHED}"):
        from_http(_eventarc_headers(), body)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (
            {"context": {"eventId": "1", "eventType": "providers/x/eventTypes/y", "resource": ""}},
            "legacy event type 'providers/x/eventTypes/y' has no CloudEvent equivalent",
        ),
        (
            {"eventType": "google.pubsub.topic.publish", "resource": "projects/p/topics/t"},
            "legacy event has no context.eventId",
        ),
        (
            {
                "eventId": "1",
                "eventType": "providers/google.firebase.database/eventTypes/ref.write",
                "resource": "projects/_/instances/i/refs/a",
            },
            "legacy Firebase Realtime Database event has no domain",
        ),
        (
            {
                "eventId": "1",
                "eventType": "google.storage.object.finalize",
                "resource": "buckets/b/objects/o",
            },
            "legacy resource 'buckets/b/objects/o' does not match storage.googleapis.com naming",
        ),
        (
            {"context": "nope", "data": {}},
            "legacy event context must be a JSON object",
        ),
    ],
)
def test_malformed_legacy_event_is_rejected(body: dict[str, Any], fragment: str) -> None:
    """A legacy background event that cannot be mapped to a CloudEvent says why."""
    with _raises(fragment):
        decode_http({"content-type": "application/json"}, json.dumps(body).encode())
