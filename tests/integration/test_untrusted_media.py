"""Downloaded songs and clips that are playlists or lists are refused before FFmpeg follows them.

Real files made at test time: an HLS playlist and an ``ffconcat`` list naming a local file,
stored as a clip or a song, read by the video job and by the blueprint consumer's song analysis.
The named file is a FIFO, so the test sees whether anything opened it: a demuxer following the
playlist would.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg_pool import ConnectionPool

from blobstore.storage import LocalStorage
from consumers.blueprint_consumer.song_store import SongResolver
from job.assemble import RenderOptions
from job.errors import AssetUnavailable
from job.run import JobContext, render_blueprint
from job.segment_cache import SegmentCache
from job.task_status import NoTaskStatus
from schemas.blueprint import parse_blueprint
from schemas.events import SongRef
from schemas.media_formats import UnsupportedMediaFormat
from tests.fixtures.blueprints import SONG_KEY, TEST_CLIPS, MovePlan, build_blueprint

pytestmark = pytest.mark.integration


class FifoWatch:
    """A FIFO that notes whether a reader ever opened it (a writer thread waits for one)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._write, daemon=True)
        self._thread.start()

    def _write(self) -> None:
        descriptor = os.open(self.path, os.O_WRONLY)  # blocks until someone opens it to read
        self._opened.set()
        os.close(descriptor)

    def was_opened(self) -> bool:
        """Whether anyone opened the FIFO; releases the writer thread either way."""
        opened = self._opened.is_set()
        release = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        self._thread.join(timeout=5)
        os.close(release)
        return opened


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[FifoWatch]:
    """A FIFO named like a media segment (``.ts``), outside any storage root."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    watch = FifoWatch(outside / "secret.ts")
    yield watch
    watch.was_opened()


def hls_playlist(path: Path, segment: Path) -> None:
    """An HLS media playlist whose one segment is ``segment`` (an absolute local path)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:5\n#EXTINF:5.0,\n{segment}\n"
        "#EXT-X-ENDLIST\n"
    )


def concat_list(path: Path, target: Path) -> None:
    """An ``ffconcat`` list naming ``target``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"ffconcat version 1.0\nfile '{target}'\n")


def _render(root: Path, work: Path, *, clip: str, song: str = SONG_KEY) -> None:
    moves = [MovePlan(TEST_CLIPS[0].key), MovePlan(clip)]
    blueprint = parse_blueprint(build_blueprint(moves, audio_uri=song), storage_root=root)
    work.mkdir()
    context = JobContext(
        storage=LocalStorage(root),
        status=NoTaskStatus(),
        publisher=None,
        render=RenderOptions(cache=SegmentCache(work / "cache"), work_dir=work),
    )
    render_blueprint(blueprint, context, work / "out.mp4", lambda _: None)


@pytest.mark.parametrize("key", ["moves/evil.m3u8", "moves/evil.mp4"])
def test_a_clip_that_is_an_hls_playlist_is_refused_and_nothing_it_names_is_read(
    job_media: Path, tmp_path: Path, watched: FifoWatch, key: str
) -> None:
    """An HLS playlist stored as a clip (with a playlist or a video name) fails the job with an
    error naming the clip and the format; the file it names is never opened."""
    hls_playlist(job_media / key, watched.path)
    try:
        with pytest.raises(
            AssetUnavailable,
            match=rf"clip {key} \(downloaded as .*\) is in format 'hls', which is not allowed",
        ):
            _render(job_media, tmp_path / "work", clip=key)
    finally:
        (job_media / key).unlink()
    assert not watched.was_opened()


def test_a_song_that_is_a_concat_list_is_refused_and_nothing_it_names_is_read(
    job_media: Path, tmp_path: Path, watched: FifoWatch
) -> None:
    """An ``ffconcat`` list stored as the song fails the job naming the song and 'concat'."""
    key = "songs/evil.wav"
    concat_list(job_media / key, watched.path)
    try:
        with pytest.raises(AssetUnavailable, match=rf"song {key} \(.*\) is in format 'concat'"):
            _render(job_media, tmp_path / "work", clip=TEST_CLIPS[1].key, song=key)
    finally:
        (job_media / key).unlink()
    assert not watched.was_opened()


def test_clips_and_songs_in_other_allowed_formats_still_render(
    job_media: Path, tmp_path: Path
) -> None:
    """A Matroska clip with a misleading name and an Ogg song render: the probe, not the name,
    picks the demuxer."""
    clip, song = job_media / "moves/green-mkv.mp4", job_media / "songs/tone-ogg.mp3"
    for source, target, codec in ((job_media / TEST_CLIPS[1].key, clip, "copy"),
                                  (job_media / SONG_KEY, song, "libvorbis")):  # fmt: skip
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-i", str(source), "-c", codec, "-f",
             "matroska" if codec == "copy" else "ogg", str(target)],
            check=True,
        )  # fmt: skip
    try:
        _render(job_media, tmp_path / "work", clip="moves/green-mkv.mp4", song="songs/tone-ogg.mp3")
    finally:
        clip.unlink()
        song.unlink()
    assert (tmp_path / "work" / "out.mp4").stat().st_size > 0


@pytest.mark.parametrize("key", ["songs/evil.m3u8", "songs/evil.wav"])
def test_song_analysis_refuses_a_playlist_and_reads_nothing_it_names(
    pool: ConnectionPool, tmp_path: Path, watched: FifoWatch, key: str
) -> None:
    """The blueprint consumer's decoder (libsndfile, then FFmpeg with the allow-list) refuses an
    HLS playlist stored as a song, naming the song and 'hls'; nothing is registered."""
    root = tmp_path / "storage"
    hls_playlist(root / key, watched.path)
    with (
        pool.connection() as conn,
        pytest.raises(UnsupportedMediaFormat, match=rf"song {key} \(downloaded as songs-.*\) "
                      r"is in format 'hls', which is not allowed"),
    ):  # fmt: skip
        SongResolver(LocalStorage(root), pool).resolve(conn, SongRef(audio_uri=key))
    assert not watched.was_opened()
    with pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM songs").fetchone() == (0,)
