"""Song limits on real files, PostgreSQL and the GCS emulator: source, size and duration.

Each refusal is permanent, names its setting, and happens before the expensive step it guards:
the source and the size before the download, the declared duration before decoding.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import ConnectionPool
from starlette.testclient import TestClient

from blobstore.gcs import GcsStorage
from blobstore.storage import LocalStorage, Storage
from choreo_cli.demo.song_synth import synthesize_song, write_wav
from consumers.blueprint_consumer.song_store import ResolvedSong, SongResolver, register_song
from producers.request_http import create_producer_app
from schemas.events import SongRef
from schemas.song_limits import (
    DEFAULT_LIMITS,
    SongLimits,
    SongSourceRefused,
    SongSources,
    SongTooLarge,
    SongTooLong,
)

pytestmark = pytest.mark.integration

TEMPO = 112.0


@pytest.fixture(scope="module")
def song_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 35-second synthesized song at 44.1 kHz (16 bars at 112 BPM and a 1 s tail)."""
    song = synthesize_song(TEMPO, structure=(("verse", 8), ("chorus", 8)), sr=44100)
    return write_wav(tmp_path_factory.mktemp("song") / "song.wav", song.y, song.sr)


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def _resolve(storage: Storage, pool: ConnectionPool, uri: str, limits: SongLimits) -> ResolvedSong:
    with pool.connection() as conn:
        return SongResolver(storage, pool, limits=limits).resolve(conn, SongRef(audio_uri=uri))


def _songs(pool: ConnectionPool) -> int:
    with pool.connection() as conn:
        row = conn.execute("SELECT count(*) FROM songs").fetchone()
    return int(row[0]) if row else 0


def test_a_normal_song_is_still_analysed_through_ffmpeg(
    pool: ConnectionPool, song_wav: Path, tmp_path: Path
) -> None:
    """An M4A (decoded by FFmpeg with the mov demuxer forced) is analysed and cached."""
    _ffmpeg("-i", str(song_wav), "-c:a", "aac", "-b:a", "128k", str(tmp_path / "songs/s.m4a"))
    resolved = _resolve(LocalStorage(tmp_path), pool, "songs/s.m4a", DEFAULT_LIMITS)
    assert not resolved.cached
    assert resolved.analysis.tempo_bpm == pytest.approx(TEMPO, rel=0.02)
    assert resolved.analysis.duration_s == pytest.approx(35.3, abs=0.1)
    assert _songs(pool) == 1


@pytest.fixture(autouse=True)
def _songs_dir(tmp_path: Path) -> None:
    (tmp_path / "songs").mkdir()


def test_audio_outside_the_sources_is_refused_before_it_is_read(
    pool: ConnectionPool, song_wav: Path, tmp_path: Path
) -> None:
    """A readable file outside SONG_SOURCES, asked for directly or through a catalogue row
    registered before the allow-list narrowed, is refused naming the setting; nothing is stored."""
    (tmp_path / "private").mkdir()
    (tmp_path / "private/s.wav").write_bytes(song_wav.read_bytes())
    storage = LocalStorage(tmp_path)
    with pytest.raises(SongSourceRefused, match=r"private/s.wav .*SONG_SOURCES='songs/,gs://"):
        _resolve(storage, pool, "private/s.wav", DEFAULT_LIMITS)
    assert _songs(pool) == 0
    with pool.connection() as conn:
        row = register_song(conn, audio_uri="private/s.wav", content_sha256="0" * 64, title="s")
        with pytest.raises(SongSourceRefused, match="SONG_SOURCES"):
            SongResolver(storage, pool).resolve(conn, SongRef(song_id=row.song_id))


def test_a_song_over_the_size_limit_is_refused_before_download(
    pool: ConnectionPool,
    song_wav: Path,
    gcs_client: Any,
    bucket_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The object's size from its metadata decides: no byte is downloaded, and the error names
    MAX_SONG_BYTES; under the limit the same song is analysed."""
    from google.cloud.storage import Blob  # noqa: PLC0415

    bucket = gcs_client.create_bucket(f"{bucket_prefix}-songs")
    bucket.blob("big.wav").upload_from_filename(str(song_wav))
    size = song_wav.stat().st_size
    downloads: list[str] = []
    original = Blob.download_to_filename

    def spy(self: Blob, *args: Any, **kwargs: Any) -> None:
        downloads.append(self.name)
        original(self, *args, **kwargs)

    monkeypatch.setattr(Blob, "download_to_filename", spy)
    storage = GcsStorage(gcs_client, {"songs": bucket.name})
    sources = SongSources.parse(f"gs://{bucket.name}/")
    uri = f"gs://{bucket.name}/big.wav"
    with pytest.raises(SongTooLarge) as refused:
        _resolve(storage, pool, uri, SongLimits(sources, max_bytes=size - 1))
    assert str(refused.value) == (
        f"song {uri} is {size / 1e6:.1f} MB ({size} bytes), over MAX_SONG_BYTES={size - 1}"
    )
    assert downloads == [] and _songs(pool) == 0
    resolved = _resolve(storage, pool, uri, SongLimits(sources, max_bytes=size))
    assert downloads == ["big.wav"]
    assert resolved.analysis.tempo_bpm == pytest.approx(TEMPO, rel=0.02)


def test_a_song_over_the_duration_limit_is_refused_from_its_header(
    pool: ConnectionPool, song_wav: Path, tmp_path: Path
) -> None:
    """A 35 s WAV against MAX_SONG_SECONDS=30 is refused from the duration its header declares."""
    (tmp_path / "songs/s.wav").write_bytes(song_wav.read_bytes())
    limits = SongLimits(DEFAULT_LIMITS.sources, max_seconds=30)
    with pytest.raises(SongTooLong) as refused:
        _resolve(LocalStorage(tmp_path), pool, "songs/s.wav", limits)
    message = str(refused.value)
    assert message.startswith("song songs/s.wav: ")
    assert "35.3 s long (its header says), over MAX_SONG_SECONDS=30" in message
    assert refused.value.error_code == "song-too-long"
    assert _songs(pool) == 0


def test_a_song_whose_header_understates_its_length_stops_at_the_limit(
    pool: ConnectionPool, song_wav: Path, tmp_path: Path
) -> None:
    """Raw AAC has no length field: ffprobe guesses the length from the first frames' bitrate,
    well under the 35 s there are. Decoding stops at MAX_SONG_SECONDS=25 and says so."""
    first, rest = tmp_path / "first.aac", tmp_path / "rest.aac"
    _ffmpeg("-i", str(song_wav), "-t", "3", "-b:a", "192k", "-f", "adts", str(first))
    _ffmpeg("-i", str(song_wav), "-ss", "3", "-b:a", "24k", "-f", "adts", str(rest))
    liar = tmp_path / "songs/s.aac"
    liar.write_bytes(first.read_bytes() + rest.read_bytes())
    declared = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
         str(liar)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert float(declared) < 25
    limits = SongLimits(DEFAULT_LIMITS.sources, max_seconds=25)
    with pytest.raises(SongTooLong, match=r"longer than MAX_SONG_SECONDS=25 s \(decoding stopped"):
        _resolve(LocalStorage(tmp_path), pool, "songs/s.aac", limits)


def test_the_producer_answers_400_naming_the_field_and_the_setting(pool: ConnectionPool) -> None:
    """POST /requests for audio in another bucket is a 400 on song.audio_uri naming SONG_SOURCES,
    and no task is created; the project's own bucket is accepted."""
    app = create_producer_app(pool, publisher=None, reader=object(), songs_bucket="choreo-songs")  # type: ignore[arg-type]
    with TestClient(app) as client:
        refused = client.post(
            "/requests", json={"path": "song", "song": {"audio_uri": "gs://other/a.mp3"}}
        )
        accepted = client.post(
            "/requests", json={"path": "song", "song": {"audio_uri": "gs://choreo-songs/a.mp3"}}
        )
    assert refused.status_code == 400, refused.text
    [error] = refused.json()["errors"]
    assert error["field"] == "song.audio_uri"
    assert "gs://other/a.mp3 is not in an allowed song source (SONG_SOURCES=" in error["message"]
    assert accepted.status_code == 202, accepted.text
    with pool.connection() as conn:
        row = conn.execute("SELECT count(*) FROM tasks").fetchone()
    assert row == (1,)
