"""Real CloudEvent samples from Google's repositories decode, and match their expected output.

The samples live in ``../shared/corpus/`` (see its SOURCES.md) and are read in place. Binary-mode
examples are only bodies: the headers are added here the way Eventarc documents them.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from schemas.event_codec import decode_http, decode_pubsub
from schemas.event_envelope import GenericEvent

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
GOOGLE = CORPUS / "google-cloudevents"
CONFORMANCE = CORPUS / "functions-framework-conformance" / "events" / "generate" / "data"

MESSAGE_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"
STORAGE_FINALIZED = "google.cloud.storage.object.v1.finalized"

PUBSUB_BODIES = sorted(
    [
        *(GOOGLE / "examples/binary/pubsub").glob("*.json"),
        *(GOOGLE / "testdata/google/events/cloud/pubsub/v1").glob("*.json"),
    ]
)
STORAGE_BODIES = sorted(
    [
        *(GOOGLE / "examples/binary/storage").glob("*.json"),
        *(GOOGLE / "testdata/google/events/cloud/storage/v1").glob("*.json"),
    ]
)
STRUCTURED = sorted((GOOGLE / "examples/structured").glob("*/*.json"))
CE_INPUTS = sorted(CONFORMANCE.glob("*-cloudevent-input.json"))
LEGACY_INPUTS = sorted(CONFORMANCE.glob("*-legacy-input.json"))


def _load(path: Path) -> Any:
    return json.loads(path.read_bytes())


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def _eventarc_headers(ce_type: str, source: str, **extra: str) -> dict[str, str]:
    # The headers Eventarc's event-format page lists for binary content mode.
    return {
        "ce-id": "1096434104173400",
        "ce-source": source,
        "ce-specversion": "1.0",
        "ce-type": ce_type,
        "ce-time": "2020-12-20T13:37:33.647Z",
        "Content-Type": "application/json; charset=utf-8",
        **{f"ce-{k}": v for k, v in extra.items()},
    }


def _expected_output(input_path: Path) -> dict[str, Any]:
    name = input_path.name.rsplit("-", 2)[0]
    return dict(_load(CONFORMANCE / f"{name}-cloudevent-output.json"))


def _assert_matches_output(event: GenericEvent, expected: dict[str, Any]) -> None:
    data = event.data
    if expected["type"] == MESSAGE_PUBLISHED and isinstance(data, dict):
        # The conformance inputs carry data.subscription and the outputs do not (SOURCES.md §2):
        # the codec keeps what it received, so compare without it.
        data = {k: v for k, v in data.items() if k != "subscription"}
    assert event.id == expected["id"]
    assert event.source == expected["source"]
    assert event.type == expected["type"]
    assert event.subject == expected.get("subject")
    assert event.time == datetime.fromisoformat(expected["time"])
    assert event.datacontenttype == expected["datacontenttype"]
    assert data == expected["data"]


def test_corpus_globs_find_every_sample() -> None:
    """The globs find all samples, so the parametrised tests cannot pass on zero files."""
    assert len(PUBSUB_BODIES) == 5
    assert len(STORAGE_BODIES) == 4
    assert len(STRUCTURED) == 2
    assert len(CE_INPUTS) == 17
    assert len(LEGACY_INPUTS) == 17


@pytest.mark.parametrize("path", PUBSUB_BODIES, ids=_ids(PUBSUB_BODIES))
def test_eventarc_pubsub_body_decodes_to_message_published(path: Path) -> None:
    """A binary-mode messagePublished body with a foreign message stays a generic event."""
    body = path.read_bytes()
    source = "//pubsub.googleapis.com/projects/test-project/topics/my-topic"
    delivery = decode_http(_eventarc_headers(MESSAGE_PUBLISHED, source), body)
    sample = _load(path)
    assert delivery.transport == "eventarc"
    assert delivery.event.type == MESSAGE_PUBLISHED
    assert delivery.event.data == sample
    assert delivery.message_id == sample["message"]["messageId"]
    assert delivery.ordering_key == sample["message"].get("orderingKey")
    assert delivery.subscription == sample["subscription"]
    assert delivery.attributes == sample["message"].get("attributes", {})


@pytest.mark.parametrize("path", STORAGE_BODIES, ids=_ids(STORAGE_BODIES))
def test_eventarc_storage_body_decodes_with_subject_and_bucket(path: Path) -> None:
    """A binary-mode Cloud Storage body keeps its data, subject and ``bucket`` extension."""
    sample = _load(path)
    headers = _eventarc_headers(
        STORAGE_FINALIZED,
        f"//storage.googleapis.com/projects/_/buckets/{sample['bucket']}",
        subject=f"objects/{sample['name']}",
        bucket=sample["bucket"],
    )
    event = decode_http(headers, path.read_bytes()).event
    assert event.type == STORAGE_FINALIZED
    assert event.subject == f"objects/{sample['name']}"
    assert event.extensions == {"bucket": sample["bucket"]}
    assert event.data == sample


@pytest.mark.parametrize("path", STRUCTURED, ids=_ids(STRUCTURED))
@pytest.mark.parametrize("transport", ["http", "pubsub"])
def test_structured_sample_decodes_over_http_and_pubsub(path: Path, transport: str) -> None:
    """A structured-mode sample decodes to its own attributes and data, extensions included."""
    body = path.read_bytes()
    if transport == "http":
        event = decode_http({"content-type": "application/cloudevents+json"}, body).event
    else:
        event = decode_pubsub(body, {"content-type": "application/cloudevents+json"}).event
    sample = _load(path)
    assert event.id == sample["id"]
    assert event.source == sample["source"]
    assert event.type == sample["type"]
    assert event.subject == sample.get("subject")
    assert event.time == datetime.fromisoformat(sample["time"])
    assert event.data == sample["data"]
    core = {"id", "source", "type", "specversion", "time", "subject", "datacontenttype", "data"}
    assert event.extensions == {k: v for k, v in sample.items() if k not in core}


@pytest.mark.parametrize("path", CE_INPUTS, ids=_ids(CE_INPUTS))
def test_conformance_cloudevent_binary_matches_output(path: Path) -> None:
    """A conformance CloudEvent sent in binary mode (as sdk-go sends it) matches its output."""
    sample = _load(path)
    headers = {f"ce-{k}": v for k, v in sample.items() if k not in ("data", "datacontenttype")}
    headers["Content-Type"] = sample["datacontenttype"]
    delivery = decode_http(headers, json.dumps(sample["data"]).encode())
    _assert_matches_output(delivery.event, _expected_output(path))


@pytest.mark.parametrize("path", CE_INPUTS, ids=_ids(CE_INPUTS))
def test_conformance_cloudevent_structured_matches_output(path: Path) -> None:
    """The same conformance CloudEvent in structured mode matches its output too."""
    delivery = decode_http({"Content-Type": "application/cloudevents+json"}, path.read_bytes())
    _assert_matches_output(delivery.event, _expected_output(path))


@pytest.mark.parametrize("path", LEGACY_INPUTS, ids=_ids(LEGACY_INPUTS))
def test_conformance_legacy_event_converts_to_cloudevent_output(path: Path) -> None:
    """A legacy background event converts to the CloudEvent the conformance suite expects."""
    delivery = decode_http({"Content-Type": "application/json"}, path.read_bytes())
    assert delivery.transport == "legacy-background"
    _assert_matches_output(delivery.event, _expected_output(path))
