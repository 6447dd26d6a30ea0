"""Request validation and the upload trigger's pure parts: no database, no network."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from producers.requests import (
    RequestRejected,
    build_request,
    description_request_document,
    song_request_document,
)
from producers.song_registry import (
    OBJECT_FINALIZED,
    SongRegistration,
    StorageObject,
    is_audio,
    parse_storage_object,
    register_upload,
    song_id_for,
)
from schemas.errors import InvalidInput
from schemas.event_envelope import GenericEvent

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "google-cloudevents"
NOW = datetime(2024, 5, 1, tzinfo=UTC)


def fields(document: Any) -> set[str]:
    """The field names a rejected document is blamed on."""
    with pytest.raises(RequestRejected) as rejected:
        build_request(document, now=NOW)
    return {e.field for e in rejected.value.errors}


def test_a_valid_song_request_becomes_the_payload() -> None:
    """A song document validates, gets a generated task id and the producer's timestamp."""
    payload = build_request(
        song_request_document(song_id="s1", constraints={"energy": "low"}), now=NOW
    )
    assert payload.path == "song" and payload.song is not None and payload.song.song_id == "s1"
    assert payload.requested_at == NOW
    assert len(payload.task_id) == 32


def test_errors_name_every_offending_field() -> None:
    """Unknown, out-of-range and malformed fields are each reported by dotted path."""
    document = song_request_document(
        song_id="s1",
        constraints={
            "duration_s": 5,
            "tempo": 120,
            "output": {"width": 145, "height": 720, "practice": {"slow": [0.6], "zoom": True}},
        },
    )
    assert fields(document) == {
        "constraints.duration_s",
        "constraints.tempo",
        "constraints.output.width",
        "constraints.output.practice.slow",
        "constraints.output.practice.zoom",
    }


def test_a_request_may_ask_for_practice_renditions_alone() -> None:
    """``constraints.output`` may hold only ``practice`` (size and rate default); a width
    without a height is refused by name."""
    practice = {"mirror": True, "slow": [0.75, 0.5], "page": True}
    payload = build_request(
        song_request_document(song_id="s1", constraints={"output": {"practice": practice}}),
        now=NOW,
    )
    assert payload.constraints is not None and payload.constraints.output is not None
    asked = payload.constraints.output.practice
    assert asked is not None
    assert (asked.mirror, asked.slow, asked.loops) == (True, [0.75, 0.5], False)
    with pytest.raises(RequestRejected, match="width and height are given together"):
        build_request(
            song_request_document(song_id="s1", constraints={"output": {"width": 640}}), now=NOW
        )


def test_whole_model_errors_name_the_missing_part() -> None:
    """A describe request without description, or a song with both refs, names that field."""
    assert fields({"path": "describe"}) == {"description"}
    assert fields(song_request_document(song_id="s", audio_uri="gs://bkt/a.mp3")) == {"song"}
    assert fields(song_request_document()) == {"song"}


def test_the_client_cannot_set_requested_at_or_send_a_non_object() -> None:
    """requested_at belongs to the producer; a body that is not an object is refused."""
    assert fields(
        {**description_request_document("x"), "requested_at": "2020-01-01T00:00:00Z"}
    ) == {"requested_at"}
    assert fields(["not", "an", "object"]) == {"body"}


def test_a_bad_task_id_is_refused() -> None:
    """A task id outside the pattern is reported as task_id."""
    assert fields(description_request_document("salsa", task_id="../etc")) == {"task_id"}


def load(path: str) -> dict[str, Any]:
    """A corpus sample."""
    sample: dict[str, Any] = json.loads((CORPUS / path).read_text())
    return sample


def test_storage_samples_parse_with_string_or_number_int64s() -> None:
    """generation and size arrive as strings in one sample and numbers in another."""
    simple = parse_storage_object(load("examples/binary/storage/StorageObjectData-simple.json"))
    complex_ = parse_storage_object(load("examples/binary/storage/StorageObjectData-complex.json"))
    assert (simple.generation, simple.size) == (1587627537231057, 352)
    assert (complex_.generation, complex_.size) == (96883251, 0)
    assert simple.uri == "gs://sample-bucket/folder/Test.cs"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "a.mp3"}, "data.bucket"),
        ({"bucket": "b"}, "data.name"),
        ({"bucket": "b", "name": "a", "generation": True}, "data.generation"),
        ({"bucket": "b", "name": "a", "size": "-1"}, "data.size"),
        ({"bucket": "b", "name": "a", "contentType": 3}, "data.contentType"),
        ("a string", "StorageObjectData"),
    ],
)
def test_malformed_storage_data_names_the_field(data: Any, field: str) -> None:
    """Each malformed StorageObjectData is refused with the offending field in the message."""
    with pytest.raises(InvalidInput, match=field):
        parse_storage_object(data)


@pytest.mark.parametrize(
    ("content_type", "name", "audio"),
    [
        ("audio/mpeg", "x.bin", True),
        ("audio/wav; codecs=1", "x", True),
        ("", "song.MP3", True),
        ("application/octet-stream", "a/b.flac", True),
        ("text/plain", "song.mp3", False),
        ("", "notes.txt", False),
        ("video/mp4", "clip.mp4", False),
    ],
)
def test_audio_is_recognised_by_content_type_then_extension(
    content_type: str, name: str, audio: bool
) -> None:
    """audio/* is audio; a generic content type defers to the extension; others are not."""
    assert is_audio(StorageObject("b", name, 1, 10, content_type)) is audio


def test_song_ids_are_derived_from_the_content_hash() -> None:
    """The song id is 'song-' and the first 32 hex digits of the SHA-256."""
    assert song_id_for("ab" * 32) == "song-" + "ab" * 16


class NoPool:
    """A pool that fails the test if the registry touches the database."""

    def connection(self) -> Any:
        """Never expected."""
        raise AssertionError("the database must not be used for an ignored upload")


class Reader:
    """An object reader serving fixed bytes and recording what it was asked."""

    def __init__(self, content: bytes) -> None:
        self.content = content
        self.asked: list[tuple[str, str, int | None]] = []

    def read_chunks(self, bucket: str, name: str, generation: int | None) -> Any:
        """The content in two chunks."""
        self.asked.append((bucket, name, generation))
        yield from (self.content[:3], self.content[3:])


def finalized(**data: Any) -> GenericEvent:
    """A finalized event carrying ``data``."""
    return GenericEvent(id="1", source="//storage", type=OBJECT_FINALIZED, data=data)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"bucket": "other", "name": "a.mp3"}, "not the songs bucket"),
        ({"bucket": "songs", "name": "a.txt", "contentType": "text/plain"}, "not audio"),
        ({"bucket": "songs", "name": "dir/", "contentType": "audio/mpeg"}, "folder"),
        ({"bucket": "songs", "name": "a.mp3", "size": "0"}, "empty"),
    ],
)
def test_uploads_that_are_not_songs_are_ignored_without_reading(
    data: dict[str, Any], reason: str
) -> None:
    """Other buckets, non-audio, folders and empty objects are ignored before any I/O."""
    reader = Reader(b"x")
    result = register_upload(NoPool(), finalized(**data), reader, songs_bucket="songs")  # type: ignore[arg-type]
    assert result.outcome == "ignored" and reason in result.reason
    assert reader.asked == []


def test_another_event_type_is_refused() -> None:
    """Only object.v1.finalized is handled; a deletion event is a clear error."""
    event = GenericEvent(id="1", source="s", type="google.cloud.storage.object.v1.deleted", data={})
    with pytest.raises(InvalidInput, match="finalized"):
        register_upload(NoPool(), event, Reader(b""), songs_bucket="songs")  # type: ignore[arg-type]


def test_the_read_is_pinned_to_the_event_generation() -> None:
    """The registry reads the exact generation the event announced (and ignores no bytes)."""
    reader = Reader(b"")
    event = finalized(bucket="songs", name="a.mp3", generation="42", contentType="audio/mpeg")
    result = register_upload(NoPool(), event, reader, songs_bucket="songs")  # type: ignore[arg-type]
    assert reader.asked == [("songs", "a.mp3", 42)]
    assert result == SongRegistration("ignored", "gs://songs/a.mp3", reason=result.reason)
    assert result.reason == "empty object"
