"""The songs-bucket upload trigger: the real Cloud Storage event samples from the corpus, POSTed
to the producer app on a real server, register songs from objects on the GCS emulator."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from psycopg_pool import ConnectionPool

from lifecycle.rejections import list_rejections
from producers.request_http import create_producer_app
from producers.song_registry import GcsObjectReader, song_id_for
from tests.integration.test_requests import Server

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "google-cloudevents"
FINALIZED = "google.cloud.storage.object.v1.finalized"
# StorageObjectData alone (for binary mode), and one whole structured CloudEvent.
DATA_SAMPLES = [
    "examples/binary/storage/StorageObjectData-simple.json",
    "examples/binary/storage/StorageObjectData-complex.json",
    "testdata/google/events/cloud/storage/v1/StorageObjectData-simple.json",
    "testdata/google/events/cloud/storage/v1/StorageObjectData-complex.json",
]
STRUCTURED_SAMPLE = "examples/structured/storage/StorageObjectDataWorkflows.json"


def binary(data: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    """Eventarc's binary-mode request for ``data``."""
    headers = {
        "ce-id": f"evt-{data['name']}-{data['generation']}",
        "ce-source": f"//storage.googleapis.com/projects/_/buckets/{data['bucket']}",
        "ce-specversion": "1.0",
        "ce-type": FINALIZED,
        "ce-subject": f"objects/{data['name']}",
        "ce-time": "2024-05-01T10:00:00Z",
        "content-type": "application/json",
    }
    return headers, json.dumps(data).encode()


def structured(event: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    """A structured-mode request carrying the whole event."""
    return {"content-type": "application/cloudevents+json"}, json.dumps(event).encode()


@pytest.fixture
def songs_bucket(gcs_client: Any, bucket_prefix: str) -> Any:
    """A songs bucket on the GCS emulator for this test."""
    return gcs_client.create_bucket(f"{bucket_prefix}-songs")


@pytest.fixture
def producer_http(
    pool: ConnectionPool, gcs_client: Any, songs_bucket: Any
) -> Iterator[httpx.Client]:
    """The producer app on a real server, watching this test's songs bucket."""
    producer = create_producer_app(
        pool, publisher=None, reader=GcsObjectReader(gcs_client), songs_bucket=songs_bucket.name
    )
    with Server(producer) as client:
        yield client


def as_upload(sample: dict[str, Any], bucket: Any, name: str, audio: bytes) -> dict[str, Any]:
    """The sample describing a real upload of ``audio`` to ``bucket``: same shape, including
    whether ``generation`` and ``size`` are strings or numbers."""
    blob = bucket.blob(name)
    blob.upload_from_string(audio, content_type="audio/mpeg")
    blob.reload()
    data = copy.deepcopy(sample)
    as_text = isinstance(sample.get("generation"), str)
    data.update(bucket=bucket.name, name=name, contentType="audio/mpeg")
    data["generation"] = str(blob.generation) if as_text else blob.generation
    data["size"] = str(len(audio)) if isinstance(sample.get("size"), str) else len(audio)
    return data


def song_rows(pool: ConnectionPool) -> list[tuple[str, str, str]]:
    """(song_id, audio_uri, content_sha256) of every song."""
    with pool.connection() as conn:
        rows = conn.execute("SELECT song_id, audio_uri, content_sha256 FROM songs ORDER BY 1")
        return [tuple(r) for r in rows.fetchall()]


@pytest.mark.parametrize("sample_path", DATA_SAMPLES)
def test_binary_samples_register_the_uploaded_song(
    sample_path: str, producer_http: httpx.Client, songs_bucket: Any, pool: ConnectionPool
) -> None:
    """A binary-mode finalized event shaped like the sample registers the song once."""
    sample = json.loads((CORPUS / sample_path).read_text())
    audio = f"fake mp3 bytes for {sample_path}".encode() * 100
    data = as_upload(sample, songs_bucket, "uploads/My Song.mp3", audio)
    response = producer_http.post(
        "/events/storage", headers=binary(data)[0], content=binary(data)[1]
    )
    assert response.status_code == 200, response.text
    sha = hashlib.sha256(audio).hexdigest()
    assert response.json()["outcome"] == "registered"
    expected = (song_id_for(sha), f"gs://{songs_bucket.name}/uploads/My Song.mp3", sha)
    assert song_rows(pool) == [expected]
    again = producer_http.post("/events/storage", headers=binary(data)[0], content=binary(data)[1])
    assert (again.status_code, again.json()["outcome"]) == (200, "existing")
    assert song_rows(pool) == [expected]


def test_the_structured_sample_registers_the_uploaded_song(
    producer_http: httpx.Client, songs_bucket: Any, pool: ConnectionPool
) -> None:
    """The structured-mode sample, pointed at a real upload, registers it by content hash."""
    event = json.loads((CORPUS / STRUCTURED_SAMPLE).read_text())
    audio = b"RIFF....WAVEfmt " * 64
    event["data"] = as_upload(event["data"], songs_bucket, "take1.wav", audio)
    response = producer_http.post(
        "/events/storage", headers=structured(event)[0], content=structured(event)[1]
    )
    assert response.status_code == 200, response.text
    [(song_id, uri, _sha)] = song_rows(pool)
    assert (song_id, uri) == (
        song_id_for(hashlib.sha256(audio).hexdigest()),
        f"gs://{songs_bucket.name}/take1.wav",
    )


@pytest.mark.parametrize("sample_path", [*DATA_SAMPLES, STRUCTURED_SAMPLE])
def test_unmodified_samples_are_accepted_and_ignored(
    sample_path: str, producer_http: httpx.Client, pool: ConnectionPool
) -> None:
    """The samples as published (text/plain, another bucket) get a 2xx and register nothing."""
    sample = json.loads((CORPUS / sample_path).read_text())
    headers, body = structured(sample) if sample_path == STRUCTURED_SAMPLE else binary(sample)
    response = producer_http.post("/events/storage", headers=headers, content=body)
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "ignored"
    assert "not the songs bucket" in response.json()["reason"]
    assert song_rows(pool) == []


def test_non_audio_in_the_songs_bucket_is_ignored(
    producer_http: httpx.Client, songs_bucket: Any, pool: ConnectionPool
) -> None:
    """A text file uploaded to the songs bucket is acknowledged and not registered."""
    sample = json.loads((CORPUS / DATA_SAMPLES[0]).read_text())
    data = {**sample, "bucket": songs_bucket.name}
    response = producer_http.post(
        "/events/storage", headers=binary(data)[0], content=binary(data)[1]
    )
    assert (response.status_code, response.json()["outcome"]) == (200, "ignored")
    assert "not audio" in response.json()["reason"]
    assert song_rows(pool) == []


def test_a_malformed_storage_event_is_acked_and_recorded_naming_the_field(
    producer_http: httpx.Client, pool: ConnectionPool
) -> None:
    """A finalized event whose data has a non-numeric generation is poison: 200, recorded."""
    sample = json.loads((CORPUS / DATA_SAMPLES[0]).read_text())
    data = {**sample, "generation": "12abc"}
    response = producer_http.post(
        "/events/storage", headers=binary(data)[0], content=binary(data)[1]
    )
    assert (response.status_code, response.json()["outcome"]) == (200, "undecodable")
    assert "data.generation" in response.json()["reason"]
    with pool.connection() as conn:
        [row] = list_rejections(conn)
    assert (row.receiver, row.transport) == ("producer", "http /events/storage")
    assert "data.generation" in row.reason
