"""Which songs may be analysed: where their audio comes from, how big and how long it may be.

``SONG_SOURCES`` is a comma-separated allow-list for ``audio_uri``; each entry is one of

- ``gs://BUCKET/`` or ``gs://BUCKET/PREFIX/``: objects in that bucket (under that prefix);
- ``BUCKET`` (a bucket name alone): ``gs://BUCKET/``;
- ``PREFIX/`` (a relative storage key prefix, ending in ``/``): relative keys under it, which
  name files under ``STORAGE_ROOT`` (local) or objects in ``SONGS_BUCKET`` (GCS);
- ``file:///DIR/``: ``file://`` URIs under that directory (which must still be inside
  ``STORAGE_ROOT``).

Prefixes match whole path segments (``songs/`` never matches ``songs-private/``). The default,
``songs/,gs://choreo-songs/``, allows the project's own songs only; an empty list allows no
``audio_uri`` at all (catalogue songs only). Matching is lexical, on a URI that has passed
:func:`schemas.storage_uri.parse_storage_uri`. The producer checks it where a request enters
(400), the blueprint consumer again before it downloads anything (a permanent failure).

``MAX_SONG_BYTES`` is checked against the object's size before it is downloaded, and
``MAX_SONG_SECONDS`` against the duration the file declares before it is decoded and against
the samples while it is decoded. Each refusal names its setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from schemas.errors import InvalidInput
from schemas.storage_uri import StorageLocation, UnsafeStorageUri, parse_storage_uri

SOURCES_SETTING = "SONG_SOURCES"
SIZE_SETTING = "MAX_SONG_BYTES"
DURATION_SETTING = "MAX_SONG_SECONDS"

DEFAULT_SONG_SOURCES = "songs/,gs://choreo-songs/"
DEFAULT_MAX_SONG_BYTES = 200_000_000
"""About 19 minutes of CD-quality WAV, or hours of MP3. Cloud Run keeps a download in memory."""
DEFAULT_MAX_SONG_SECONDS = 1200.0
"""20 minutes: the blueprint consumer's analysis then peaks near 0.6 GB (docs/MUSIC_ANALYSIS.md)."""

SourceKind = Literal["key", "gs", "file"]


class SongSourceRefused(InvalidInput):
    """An ``audio_uri`` outside every ``SONG_SOURCES`` entry."""

    error_code = "song-source-not-allowed"


class SongTooLarge(InvalidInput):
    """The song's file is larger than ``MAX_SONG_BYTES``."""

    error_code = "song-too-large"


class SongTooLong(InvalidInput):
    """The song lasts longer than ``MAX_SONG_SECONDS``."""

    error_code = "song-too-long"


@dataclass(frozen=True)
class SongSource:
    """One allow-list entry: a bucket (and key prefix), a relative key prefix, or a directory."""

    kind: SourceKind
    prefix: str
    """Key prefix (``""``: the whole bucket) or absolute directory, ending in ``/``."""
    bucket: str | None = None

    def allows(self, location: StorageLocation) -> bool:
        """Whether the checked location is inside this source."""
        return (
            location.kind == self.kind
            and location.bucket == self.bucket
            and location.key.startswith(self.prefix)
        )


@dataclass(frozen=True)
class SongSources:
    """The parsed ``SONG_SOURCES`` allow-list; ``text`` is the setting as given."""

    entries: tuple[SongSource, ...]
    text: str

    @classmethod
    def parse(cls, text: str) -> SongSources:
        """Parse the setting; ``ValueError`` naming the first entry that is not one of the forms."""
        entries = tuple(_entry(item.strip()) for item in text.split(",") if item.strip())
        return cls(entries, ",".join(item.strip() for item in text.split(",") if item.strip()))

    def check(self, uri: str) -> StorageLocation:
        """The parsed location of an allowed ``uri``; ``SongSourceRefused`` naming the setting."""
        try:
            location = parse_storage_uri(uri)
        except UnsafeStorageUri as exc:
            raise SongSourceRefused(f"{uri} is not a usable storage URI: {exc}") from exc
        if not any(entry.allows(location) for entry in self.entries):
            raise SongSourceRefused(
                f"{uri} is not in an allowed song source ({SOURCES_SETTING}={self.text!r})"
            )
        return location


@dataclass(frozen=True)
class SongLimits:
    """Every limit a song must meet before it is analysed."""

    sources: SongSources
    max_bytes: int = DEFAULT_MAX_SONG_BYTES
    max_seconds: float = DEFAULT_MAX_SONG_SECONDS

    def too_large(self, uri: str, size: int) -> SongTooLarge:
        """The error for a song of ``size`` bytes (over ``max_bytes``)."""
        return SongTooLarge(
            f"song {uri} is {size / 1e6:.1f} MB ({size} bytes), over "
            f"{SIZE_SETTING}={self.max_bytes}"
        )


def _entry(item: str) -> SongSource:
    def bad(reason: str) -> ValueError:
        return ValueError(f"{SOURCES_SETTING} entry {item!r}: {reason}")

    if "://" in item and not item.startswith(("gs://", "file://")):
        raise bad("only gs://, file://, a bucket name or a relative key prefix are allowed")
    prefix = item if item.endswith("/") else item + "/"
    try:
        if item.startswith("gs://"):
            bucket, _, key = prefix.removeprefix("gs://").partition("/")
            if key:
                parse_storage_uri(f"gs://{bucket}/{key}x")
            else:
                parse_storage_uri(f"gs://{bucket}/x")
            return SongSource("gs", key, bucket)
        if item.startswith("file://"):
            location = parse_storage_uri(prefix + "x")
            return SongSource("file", location.key[:-1])
        if "/" not in item:
            parse_storage_uri(f"gs://{item}/x")
            return SongSource("gs", "", item)
        parse_storage_uri(prefix + "x")
        return SongSource("key", prefix)
    except UnsafeStorageUri as exc:
        raise bad(str(exc)) from None


DEFAULT_LIMITS = SongLimits(SongSources.parse(DEFAULT_SONG_SOURCES))
"""The limits the settings' defaults describe (``SongSettings().limits()`` reads the env)."""
