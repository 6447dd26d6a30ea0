"""Register songs uploaded to the songs bucket (Cloud Storage ``object.v1.finalized`` events).

The song id is derived from the audio's content: ``song-`` + the first 32 hex digits of its
SHA-256. The ``songs`` table is keyed by content (``content_sha256`` is unique: the analysis cache
must not analyse the same audio twice), so the same audio uploaded under two names, or one event
delivered twice, registers one song. Computing the hash means reading the object once, pinned to
the event's generation so a later overwrite cannot be hashed under this event's name.

Objects outside the songs bucket, empty objects and objects that are not audio (by content type,
or by extension when the content type says nothing) are ignored with a log line, never an error:
Eventarc delivers every upload in the bucket and retries any non-2xx answer.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal, Protocol

import psycopg
from psycopg_pool import ConnectionPool

from schemas.errors import InvalidInput, NotFound, PermanentError
from schemas.event_envelope import GenericEvent

log = logging.getLogger(__name__)

OBJECT_FINALIZED = "google.cloud.storage.object.v1.finalized"
SONG_ID_PREFIX = "song-"
SONG_ID_HEX_DIGITS = 32
AUDIO_EXTENSIONS = frozenset(
    {".mp3", ".wav", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".aif", ".aiff", ".webm"}
)
# Content types that say nothing about the bytes; the extension decides for these.
GENERIC_CONTENT_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
READ_CHUNK_BYTES = 1 << 20


class ObjectReader(Protocol):
    """Reads one stored object, pinned to a generation when one is given."""

    def read_chunks(self, bucket: str, name: str, generation: int | None) -> Iterator[bytes]:
        """The object's bytes in chunks; ``NotFound`` when it (or that generation) is gone."""
        ...


@dataclass(frozen=True)
class StorageObject:
    """The fields of a Cloud Storage ``StorageObjectData`` the registry uses."""

    bucket: str
    name: str
    generation: int | None
    size: int | None
    content_type: str

    @property
    def uri(self) -> str:
        """``gs://bucket/name``."""
        return f"gs://{self.bucket}/{self.name}"


@dataclass(frozen=True)
class SongRegistration:
    """What an upload event did: ``registered``, ``existing`` (same audio known) or ``ignored``."""

    outcome: Literal["registered", "existing", "ignored"]
    audio_uri: str
    song_id: str | None = None
    reason: str = ""


def parse_storage_object(data: Any) -> StorageObject:
    """``StorageObjectData`` JSON (``generation``/``size`` as numbers or strings) as an object."""
    if not isinstance(data, Mapping):
        raise InvalidInput("data must be a StorageObjectData JSON object")
    bucket, name = data.get("bucket"), data.get("name")
    if not isinstance(bucket, str) or not bucket:
        raise InvalidInput("data.bucket must be a non-empty string")
    if not isinstance(name, str) or not name:
        raise InvalidInput("data.name must be a non-empty string")
    content_type = data.get("contentType") or ""
    if not isinstance(content_type, str):
        raise InvalidInput("data.contentType must be a string")
    return StorageObject(
        bucket=bucket,
        name=name,
        generation=_int64(data, "generation"),
        size=_int64(data, "size"),
        content_type=content_type,
    )


def is_audio(obj: StorageObject) -> bool:
    """True for ``audio/*`` content, or a generic content type with an audio file extension."""
    media_type = obj.content_type.split(";", 1)[0].strip().lower()
    if media_type.startswith("audio/"):
        return True
    return media_type in GENERIC_CONTENT_TYPES and (
        PurePosixPath(obj.name).suffix.lower() in AUDIO_EXTENSIONS
    )


def song_id_for(content_sha256: str) -> str:
    """The song id of audio with this SHA-256 (hex)."""
    return SONG_ID_PREFIX + content_sha256[:SONG_ID_HEX_DIGITS]


def register_upload(
    pool: ConnectionPool, event: GenericEvent, reader: ObjectReader, *, songs_bucket: str
) -> SongRegistration:
    """Register the audio a ``finalized`` event announces, or say why it was ignored."""
    if event.type != OBJECT_FINALIZED:
        raise InvalidInput(f"expected a {OBJECT_FINALIZED} event, got type {event.type!r}")
    obj = parse_storage_object(event.data)
    reason = _ignore_reason(obj, songs_bucket)
    sha256 = None
    if reason is None:
        try:
            sha256 = _content_sha256(reader, obj)
        except NotFound as exc:
            # Deleted or overwritten since: the newer generation has its own event.
            reason = f"object is gone: {exc}"
    if sha256 is None:
        reason = reason or "empty object"
        log.info("upload ignored: %s", reason, extra={"audio_uri": obj.uri})
        return SongRegistration("ignored", obj.uri, reason=reason)
    # A connection only for the insert: hashing a large upload must not hold one.
    with pool.connection() as conn:
        registration = _insert_song(conn, obj, sha256)
    log.info(
        "upload %s as song %s",
        registration.outcome,
        registration.song_id,
        extra={"audio_uri": obj.uri, "song_id": registration.song_id},
    )
    return registration


class GcsObjectReader:
    """``ObjectReader`` over a ``google.cloud.storage.Client`` (Cloud Storage or its emulator)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def read_chunks(self, bucket: str, name: str, generation: int | None) -> Iterator[bytes]:
        """The object's bytes, 1 MiB at a time."""
        from google.api_core.exceptions import NotFound as GcsNotFound  # noqa: PLC0415

        blob = self._client.bucket(bucket).blob(name, generation=generation)
        try:
            with blob.open("rb", chunk_size=READ_CHUNK_BYTES) as stream:
                while chunk := stream.read(READ_CHUNK_BYTES):
                    yield chunk
        except GcsNotFound as exc:
            raise NotFound(f"gs://{bucket}/{name} (generation {generation}) not found") from exc


def _ignore_reason(obj: StorageObject, songs_bucket: str) -> str | None:
    if obj.bucket != songs_bucket:
        return f"bucket {obj.bucket!r} is not the songs bucket {songs_bucket!r}"
    if obj.name.endswith("/"):
        return "a folder placeholder, not a file"
    if not is_audio(obj):
        return f"not audio (content type {obj.content_type!r}, name {obj.name!r})"
    if obj.size == 0:
        return "empty object"
    return None


def _content_sha256(reader: ObjectReader, obj: StorageObject) -> str | None:
    digest = hashlib.sha256()
    size = 0
    for chunk in reader.read_chunks(obj.bucket, obj.name, obj.generation):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest() if size else None


def _insert_song(conn: psycopg.Connection, obj: StorageObject, sha256: str) -> SongRegistration:
    song_id = song_id_for(sha256)
    title = PurePosixPath(obj.name).stem
    with conn.transaction():
        inserted = conn.execute(
            "INSERT INTO songs (song_id, title, audio_uri, content_sha256) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING RETURNING song_id",
            (song_id, title, obj.uri, sha256),
        ).fetchone()
        if inserted is not None:
            return SongRegistration("registered", obj.uri, song_id)
        existing = conn.execute(
            "SELECT song_id FROM songs WHERE content_sha256 = %s", (sha256,)
        ).fetchone()
    if existing is None:
        raise PermanentError(f"song id {song_id} is taken by a song with different audio")
    return SongRegistration("existing", obj.uri, str(existing[0]))


def _int64(data: Mapping[str, Any], name: str) -> int | None:
    # The JSON mapping of protobuf int64 is a string; some producers send a number.
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"data.{name} must be an integer or a decimal string, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise InvalidInput(f"data.{name} must be an integer or a decimal string, got {value!r}")
