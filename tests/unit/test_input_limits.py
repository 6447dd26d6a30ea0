"""Song limits: the ``SONG_SOURCES`` allow-list, size and duration checks, each naming its
setting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from blobstore.storage import LocalStorage, ObjectTooLarge
from choreography.music.audio_decode import _collect
from producers.requests import RequestRejected, build_request, song_request_document
from schemas.settings import SongSettings
from schemas.song_limits import (
    DEFAULT_LIMITS,
    SongLimits,
    SongSourceRefused,
    SongSources,
    SongTooLong,
)


@pytest.mark.parametrize(
    "uri",
    ["songs/a.wav", "songs/sub/b.mp3", "gs://choreo-songs/a.wav", "gs://choreo-songs/x/y.ogg"],
)
def test_the_default_allows_the_projects_own_songs(uri: str) -> None:
    """Relative keys under songs/ and anything in the choreo-songs bucket pass by default."""
    DEFAULT_LIMITS.sources.check(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "gs://other-bucket/a.wav",
        "gs://choreo-songs-private/a.wav",
        "moves/hiphop/a.mp4",
        "songs-private/a.wav",
        "a.wav",
        "file:///etc/passwd",
    ],
)
def test_the_default_refuses_every_other_source_naming_the_setting(uri: str) -> None:
    """Another bucket, another prefix or a file:// path is refused; the message names
    SONG_SOURCES and its value."""
    with pytest.raises(SongSourceRefused) as refused:
        DEFAULT_LIMITS.sources.check(uri)
    assert f"{uri} is not in an allowed song source" in str(refused.value)
    assert "SONG_SOURCES='songs/,gs://choreo-songs/'" in str(refused.value)
    assert refused.value.error_code == "song-source-not-allowed"


def test_each_entry_form_allows_what_it_names_and_no_more() -> None:
    """Bucket names, gs:// prefixes, relative prefixes and file:// directories, by whole segment."""
    sources = SongSources.parse(" uploads , gs://shared/team/songs, library/, file:///srv/music/ ")
    assert sources.text == "uploads,gs://shared/team/songs,library/,file:///srv/music/"
    for allowed in ("gs://uploads/a.wav", "gs://shared/team/songs/a.wav", "library/a.ogg",
                    "library/x/y.ogg", "file:///srv/music/a.flac"):  # fmt: skip
        sources.check(allowed)
    refused_uris = (
        "gs://shared/team/songs-old/a.wav",
        "gs://shared/a.wav",
        "libraryx/a.ogg",
        "file:///srv/musicx/a.flac",
        "gs://uploads2/a.wav",
        "uploads/a.wav",
    )
    for refused in refused_uris:
        with pytest.raises(SongSourceRefused):
            sources.check(refused)


def test_an_empty_allow_list_allows_no_audio_uri() -> None:
    """SONG_SOURCES empty means catalogue songs only."""
    with pytest.raises(SongSourceRefused):
        SongSources.parse("").check("songs/a.wav")


@pytest.mark.parametrize(
    "entry",
    ["https://example.com/songs/", "gs://B/", "gs://ok-bucket/../", "/srv/music/", "songs/../x/",
     "s3://bucket/"],
)  # fmt: skip
def test_a_malformed_entry_is_a_configuration_error_naming_the_setting(entry: str) -> None:
    """The setting does not load when an entry is not one of the forms."""
    with pytest.raises(ValueError, match=f"SONG_SOURCES entry {entry!r}"):
        SongSources.parse(entry)
    with pytest.raises(ValidationError, match="SONG_SOURCES"):
        SongSettings(SONG_SOURCES=entry)


def test_settings_build_the_limits_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """SONG_SOURCES, MAX_SONG_BYTES and MAX_SONG_SECONDS become one SongLimits; the duration is
    capped at the blueprint contract's MAX_SONG_DURATION_S."""
    monkeypatch.setenv("SONG_SOURCES", "gs://mine/")
    monkeypatch.setenv("MAX_SONG_BYTES", "1000")
    monkeypatch.setenv("MAX_SONG_SECONDS", "90")
    limits = SongSettings().limits()
    assert (limits.max_bytes, limits.max_seconds) == (1000, 90.0)
    limits.sources.check("gs://mine/a.wav")
    monkeypatch.setenv("MAX_SONG_SECONDS", "3601")
    with pytest.raises(ValidationError, match="MAX_SONG_SECONDS"):
        SongSettings()


def test_the_size_error_names_the_setting() -> None:
    """812 MB against a 100 MB limit reads as such, with MAX_SONG_BYTES and its value."""
    limits = SongLimits(DEFAULT_LIMITS.sources, max_bytes=100_000_000)
    error = limits.too_large("songs/a.wav", 812_000_000)
    assert str(error) == (
        "song songs/a.wav is 812.0 MB (812000000 bytes), over MAX_SONG_BYTES=100000000"
    )
    assert error.error_code == "song-too-large"


def test_a_local_file_over_the_size_limit_is_refused_before_anything_is_copied(
    tmp_path: Path,
) -> None:
    """LocalStorage checks the size first: no destination file is created."""
    (tmp_path / "songs").mkdir()
    (tmp_path / "songs/big.wav").write_bytes(b"\0" * 2000)
    dest = tmp_path / "copy"
    with pytest.raises(ObjectTooLarge) as refused:
        LocalStorage(tmp_path).download("songs/big.wav", "songs", dest, max_bytes=1999)
    assert (refused.value.size, refused.value.limit) == (2000, 1999)
    assert not dest.exists()
    assert LocalStorage(tmp_path).download("songs/big.wav", "songs", dest, max_bytes=2000) == 2000


def test_decoding_stops_at_the_duration_limit_whatever_the_header_said() -> None:
    """Samples past MAX_SONG_SECONDS stop the decode with an error naming the setting, even when
    the header promised a short file; up to the limit, everything is kept."""
    second = np.zeros(1000, dtype=np.float32)
    kept = _collect(iter([second] * 5), Path("x"), 1000, 1000, 5.0, expected_s=1.0)
    assert kept.size == 5000 and kept.dtype == np.float32
    with pytest.raises(SongTooLong, match=r"longer than MAX_SONG_SECONDS=5 s .*said 1\.0 s"):
        _collect(iter([second] * 6), Path("x"), 1000, 1000, 5.0, expected_s=1.0)


def test_resampling_in_blocks_gives_the_length_librosa_would() -> None:
    """Blocks at 44.1 kHz come out at 22050 Hz, ceil(n / 2) samples, float32."""
    blocks = [np.ones(44100, dtype=np.float32)] * 3
    out = _collect(iter(blocks), Path("x"), 44100, 22050, 60.0, expected_s=3.0)
    assert out.size == 66150 and out.dtype == np.float32


def test_a_request_for_audio_outside_the_sources_is_rejected_naming_the_field_and_setting() -> None:
    """The producer refuses before anything is stored: song.audio_uri, SONG_SOURCES."""
    document = song_request_document(audio_uri="gs://someone-elses-bucket/a.mp3")
    with pytest.raises(RequestRejected) as rejected:
        build_request(document)
    [error] = rejected.value.errors
    assert error.field == "song.audio_uri"
    assert "SONG_SOURCES=" in error.message
    build_request(song_request_document(audio_uri="gs://choreo-songs/a.mp3"))
    build_request(document, song_sources=SongSources.parse("someone-elses-bucket"))
