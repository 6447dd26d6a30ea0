"""Songs and their cached analysis: the ``songs`` table, keyed by the audio's SHA-256.

A catalog song (``song_id``) whose row holds an analysis of the current ``ANALYSIS_VERSION`` is
used as is: no download, no analysis. Otherwise the audio is downloaded once, hashed, looked up
by hash (the same bytes under another name are the same song), analysed when the cache is empty
or stale, and the analysis written back. Cache writes go through their own short transaction on
``write_pool`` so that a later failure of the request does not throw the analysis away.

Before anything is downloaded the audio's URI must be in ``SONG_SOURCES`` and its size at most
``MAX_SONG_BYTES``; the decoder refuses songs longer than ``MAX_SONG_SECONDS`` and files in a
format off the allow-list (``choreography.music.audio_decode``). Each refusal is permanent and names
its setting (``schemas.song_limits``).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any, Literal, Protocol

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from blobstore.storage import ObjectTooLarge, Storage, file_sha256, local_name
from choreography.music.analysis import analyse_file
from choreography.music.model import ANALYSIS_VERSION, MusicAnalysis
from choreography.planner.song_choice import CatalogSong

# One rule for content-derived song ids, shared with the upload trigger.
from producers.song_registry import song_id_for
from schemas.errors import InvalidInput, NotFound, PermanentError
from schemas.events import SongRef
from schemas.media_formats import AUDIO_DEMUXERS, UnsupportedMediaFormat
from schemas.song_limits import DEFAULT_LIMITS, SongLimits, SongTooLong

log = logging.getLogger(__name__)

_COLUMNS = sql.SQL(", ").join(
    sql.Identifier(name)
    for name in (
        "song_id", "title", "audio_uri", "content_sha256", "duration_s", "tempo_bpm", "style",
        "energy", "analysis", "analysis_version",
    )
)  # fmt: skip

Analyser = Callable[[Path], MusicAnalysis]


class UnknownSong(NotFound):
    """The request names a song the catalog does not have."""

    error_code = "unknown-song"


class UndecodableAudio(InvalidInput):
    """The audio cannot be decoded or has no steady pulse to dance to."""

    error_code = "undecodable-audio"


class SongAudioChanged(PermanentError):
    """The file behind a catalog song no longer has the bytes the song was registered with."""

    error_code = "song-audio-changed"


@dataclass(frozen=True)
class SongRow:
    """A ``songs`` row."""

    song_id: str
    title: str
    audio_uri: str
    content_sha256: str
    duration_s: float | None
    tempo_bpm: float | None
    style: str | None
    energy: float | None
    analysis: dict[str, Any] | None
    analysis_version: int | None


@dataclass(frozen=True)
class ResolvedSong:
    """The song a request is planned on, its analysis, and whether the analysis was cached."""

    row: SongRow
    analysis: MusicAnalysis
    cached: bool


class SongRows(Protocol):
    """The ``songs`` table as a request's transaction reads it (the blueprint consumer's port;
    cache writes go through the resolver's own pool, never through this)."""

    def song(self, song_id: str) -> SongRow:
        """The catalog song, or ``UnknownSong``."""
        ...

    def song_by_hash(self, content_sha256: str) -> SongRow | None:
        """The song whose audio has this SHA-256, if any."""
        ...

    def analysed(self) -> list[CatalogSong]:
        """Catalog songs with a current analysis, in song id order."""
        ...


@dataclass(frozen=True)
class PostgresSongRows:
    """:class:`SongRows` on the connection (and transaction) of one event."""

    conn: psycopg.Connection[Any]

    def song(self, song_id: str) -> SongRow:
        """See :func:`get_song`."""
        return get_song(self.conn, song_id)

    def song_by_hash(self, content_sha256: str) -> SongRow | None:
        """See :func:`song_by_hash`."""
        return song_by_hash(self.conn, content_sha256)

    def analysed(self) -> list[CatalogSong]:
        """See :func:`analysed_catalog`."""
        return analysed_catalog(self.conn)


def get_song(conn: psycopg.Connection[Any], song_id: str) -> SongRow:
    """The catalog song, or ``UnknownSong``."""
    row = _one(conn, "song_id", song_id)
    if row is None:
        raise UnknownSong(f"no song with song_id {song_id!r} in the catalog")
    return row


def song_by_hash(conn: psycopg.Connection[Any], content_sha256: str) -> SongRow | None:
    """The song whose audio has this SHA-256, if any."""
    return _one(conn, "content_sha256", content_sha256)


def register_song(
    conn: psycopg.Connection[Any], *, audio_uri: str, content_sha256: str, title: str
) -> SongRow:
    """Insert the song for this audio unless its content is known; the stored row either way."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO songs (song_id, title, audio_uri, content_sha256) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            (song_id_for(content_sha256), title, audio_uri, content_sha256),
        )
        row = song_by_hash(conn, content_sha256)
    if row is None:
        raise NotFound(f"song with SHA-256 {content_sha256} vanished while registering it")
    return row


def save_analysis(conn: psycopg.Connection[Any], song_id: str, analysis: MusicAnalysis) -> None:
    """Store the analysis with its version, and the summary columns the catalog filters on."""
    with conn.transaction():
        conn.execute(
            "UPDATE songs SET analysis = %s, analysis_version = %s, duration_s = %s, "
            "tempo_bpm = %s WHERE song_id = %s",
            (
                Jsonb(analysis.model_dump(mode="json")),
                analysis.analysis_version,
                analysis.duration_s,
                analysis.tempo_bpm,
                song_id,
            ),
        )


def cached_analysis(row: SongRow) -> MusicAnalysis | None:
    """The row's analysis when it is of the current version and still valid, else None."""
    if row.analysis is None or row.analysis_version != ANALYSIS_VERSION:
        return None
    try:
        return MusicAnalysis.model_validate(row.analysis)
    except ValidationError as error:
        log.warning("cached analysis of %s is invalid, recomputing: %s", row.song_id, error)
        return None


def analysed_catalog(conn: psycopg.Connection[Any]) -> list[CatalogSong]:
    """Catalog songs with a current analysis, in song id order (for Path 2 song choice)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT song_id, title, audio_uri, duration_s, tempo_bpm, style, energy FROM songs "
            "WHERE analysis IS NOT NULL AND analysis_version = %s "
            "AND duration_s IS NOT NULL AND tempo_bpm IS NOT NULL ORDER BY song_id",
            (ANALYSIS_VERSION,),
        )
        return [CatalogSong(**row) for row in cur.fetchall()]


class SongResolver:
    """Resolve a ``SongRef`` to a stored song and its analysis, analysing only on a cache miss."""

    def __init__(
        self,
        storage: Storage,
        write_pool: Any,
        analyse: Analyser | None = None,
        limits: SongLimits = DEFAULT_LIMITS,
    ) -> None:
        """``analyse`` defaults to ``analyse_file`` with the limits' ``max_seconds``."""
        self._storage, self._write_pool, self._limits = storage, write_pool, limits
        self._analyse = analyse or partial(analyse_file, max_seconds=limits.max_seconds)

    def resolve(self, songs: SongRows | psycopg.Connection[Any], ref: SongRef) -> ResolvedSong:
        """The song and its analysis, read through ``songs`` (or a connection's ``songs``
        table); ``UnknownSong``/``UndecodableAudio`` and the limits' refusals
        (``SongSourceRefused``, ``SongTooLarge``, ``SongTooLong``, ``UnsupportedMediaFormat``)
        are permanent."""
        rows = PostgresSongRows(songs) if isinstance(songs, psycopg.Connection) else songs
        row = rows.song(ref.song_id) if ref.song_id is not None else None
        if row is not None:
            analysis = cached_analysis(row)
            if analysis is not None:
                return ResolvedSong(row, analysis, cached=True)
        uri = row.audio_uri if row is not None else str(ref.audio_uri)
        self._limits.sources.check(uri)
        with tempfile.TemporaryDirectory(prefix="choreo-song-") as scratch:
            path = Path(scratch) / local_name(uri, "songs")
            try:
                self._storage.download(uri, "songs", path, max_bytes=self._limits.max_bytes)
            except ObjectTooLarge as exc:
                raise self._limits.too_large(uri, exc.size) from exc
            sha256 = file_sha256(path)
            if row is not None and sha256 != row.content_sha256:
                raise SongAudioChanged(
                    f"song {row.song_id}: the audio at {uri} has SHA-256 {sha256}, not the "
                    f"{row.content_sha256} it was registered with"
                )
            row = row or rows.song_by_hash(sha256)
            if row is not None:
                analysis = cached_analysis(row)
                if analysis is not None:
                    return ResolvedSong(row, analysis, cached=True)
            analysis = self._analysed(path, uri)
        with self._write_pool.connection() as writer:
            if row is None:
                row = register_song(writer, audio_uri=uri, content_sha256=sha256, title=_title(uri))
            save_analysis(writer, row.song_id, analysis)
        log.info("song analysed and cached", extra={"song_id": row.song_id, "audio_uri": uri})
        return ResolvedSong(row, analysis, cached=False)

    def _analysed(self, path: Path, uri: str) -> MusicAnalysis:
        try:
            return self._analyse(path)
        except SongTooLong as error:
            raise SongTooLong(f"song {uri}: {error}") from error
        except UnsupportedMediaFormat as error:
            what = f"song {uri} (downloaded as {path.name})"
            raise UnsupportedMediaFormat(what, error.detected, AUDIO_DEMUXERS) from error
        except InvalidInput as error:
            raise UndecodableAudio(f"audio {uri} cannot be used: {error}") from error


def _title(uri: str) -> str:
    stem = PurePosixPath(uri.split("://", 1)[-1]).stem
    return stem[:200] or "Untitled"


def _one(
    conn: psycopg.Connection[Any], column: Literal["song_id", "content_sha256"], value: str
) -> SongRow | None:
    query = sql.SQL("SELECT {} FROM songs WHERE {} = %s").format(_COLUMNS, sql.Identifier(column))
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, (value,))
        row = cur.fetchone()
    return None if row is None else SongRow(**row)
