"""The job's storage: local root and GCS emulator adapters, retries on transient errors only."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from blobstore.gcs import GcsStorage
from blobstore.storage import (
    LocalStorage,
    PermanentStorageError,
    StorageKind,
    TransientStorageError,
    file_sha256,
)
from job.errors import AssetUnavailable, StorageFailed
from job.fetch import fetch_inputs
from schemas.blueprint import Blueprint, parse_blueprint
from schemas.job_exit import ExitCode
from tests.fixtures.blueprints import (
    SONG_KEY,
    TEST_CLIPS,
    MovePlan,
    build_blueprint,
    insert_task,
    run_job_process,
    task_row,
)

pytestmark = pytest.mark.integration


class FlakyStorage:
    """Wraps a real adapter; the first ``failures`` calls per URI raise ``error``; counts calls."""

    def __init__(self, inner: Any, failures: int, error: Exception) -> None:
        self.inner, self.failures, self.error = inner, failures, error
        self.calls: Counter[str] = Counter()

    def download(self, uri: str, kind: StorageKind, dest: Path) -> int:
        self.calls[uri] += 1
        if self.calls[uri] <= self.failures:
            raise self.error
        return int(self.inner.download(uri, kind, dest))

    def upload_new(self, source: Path, uri: str, kind: StorageKind) -> bool:
        return bool(self.inner.upload_new(source, uri, kind))


def _blueprint(prefix: str = "") -> Blueprint:
    moves = [MovePlan(prefix + spec.key) for spec in TEST_CLIPS[:3]]
    return parse_blueprint(build_blueprint(moves, audio_uri=prefix + SONG_KEY))


def test_local_fetch_copies_every_distinct_input_with_its_hash(
    job_media: Path, tmp_path: Path
) -> None:
    """The song and three clips land in the download directory with their SHA-256."""
    song, clips = fetch_inputs(LocalStorage(job_media), _blueprint(), tmp_path / "in")
    assert song.sha256 == file_sha256(job_media / SONG_KEY)
    assert {uri: clip.sha256 for uri, clip in clips.items()} == {
        spec.key: file_sha256(job_media / spec.key) for spec in TEST_CLIPS[:3]
    }
    assert all(clip.path.parent == (tmp_path / "in").resolve() for clip in clips.values())


def test_local_upload_never_replaces_a_finished_video(tmp_path: Path) -> None:
    """The first upload creates the file; a second returns False and keeps the first bytes."""
    storage = LocalStorage(tmp_path / "root")
    (tmp_path / "root").mkdir()
    (tmp_path / "one.mp4").write_bytes(b"first")
    (tmp_path / "two.mp4").write_bytes(b"second")
    assert storage.upload_new(tmp_path / "one.mp4", "videos/t.mp4", "videos") is True
    assert storage.upload_new(tmp_path / "two.mp4", "videos/t.mp4", "videos") is False
    assert (tmp_path / "root/videos/t.mp4").read_bytes() == b"first"
    assert sorted(p.name for p in (tmp_path / "root/videos").iterdir()) == ["t.mp4"]


def test_local_symlink_swapped_in_after_validation_is_refused(
    job_media: Path, tmp_path: Path
) -> None:
    """A file replaced by a link out of the root after validation is caught when opened."""
    root = tmp_path / "root"
    shutil.copytree(job_media, root)
    blueprint = parse_blueprint(build_blueprint([MovePlan(TEST_CLIPS[0].key)]), storage_root=root)
    (root / TEST_CLIPS[0].key).unlink()
    (root / TEST_CLIPS[0].key).symlink_to(job_media / TEST_CLIPS[0].key)
    with pytest.raises(AssetUnavailable, match="escapes the storage root"):
        fetch_inputs(LocalStorage(root), blueprint, tmp_path / "in")


def test_transient_errors_are_retried_until_the_download_succeeds(
    job_media: Path, tmp_path: Path
) -> None:
    """Two transient failures per object, three retries allowed: every object takes 3 calls."""
    flaky = FlakyStorage(LocalStorage(job_media), 2, TransientStorageError("503 try later"))
    song, _ = fetch_inputs(flaky, _blueprint(), tmp_path / "in", retries=3, base_delay_s=0.001)
    assert song.path.is_file()
    assert set(flaky.calls.values()) == {3}
    assert len(flaky.calls) == 4


def test_retries_running_out_is_a_storage_failure(job_media: Path, tmp_path: Path) -> None:
    """Always transient: 1 + 3 attempts per object, then StorageFailed (exit code 4)."""
    flaky = FlakyStorage(LocalStorage(job_media), 99, TransientStorageError("503 try later"))
    with pytest.raises(StorageFailed, match="after 3 retries") as caught:
        fetch_inputs(flaky, _blueprint(), tmp_path / "in", retries=3, base_delay_s=0.001)
    assert caught.value.exit_code == ExitCode.STORAGE_FAILED
    assert max(flaky.calls.values()) == 4


def test_permanent_errors_fail_at_once(job_media: Path, tmp_path: Path) -> None:
    """A 403 is not retried: one call per object, AssetUnavailable (exit code 3)."""
    flaky = FlakyStorage(LocalStorage(job_media), 99, PermanentStorageError("403 forbidden"))
    with pytest.raises(AssetUnavailable, match="403 forbidden") as caught:
        fetch_inputs(flaky, _blueprint(), tmp_path / "in", retries=3, base_delay_s=0.001)
    assert caught.value.exit_code == ExitCode.ASSET_UNAVAILABLE
    assert set(flaky.calls.values()) == {1}


@pytest.fixture
def gcs_buckets(gcs_client: Any, bucket_prefix: str, job_media: Path) -> dict[StorageKind, str]:
    """Songs, moves and videos buckets on the emulator, holding the test media."""
    names: dict[StorageKind, str] = {
        "songs": f"{bucket_prefix}-songs",
        "moves": f"{bucket_prefix}-moves",
        "videos": f"{bucket_prefix}-videos",
        "blueprints": f"{bucket_prefix}-blueprints",
    }
    for name in names.values():
        gcs_client.create_bucket(name)
    gcs_client.bucket(names["songs"]).blob(SONG_KEY).upload_from_filename(job_media / SONG_KEY)
    for spec in TEST_CLIPS[:3]:
        gcs_client.bucket(names["moves"]).blob(spec.key).upload_from_filename(job_media / spec.key)
    return names


def test_gcs_fetch_downloads_and_verifies_every_input(
    gcs_client: Any, gcs_buckets: dict[StorageKind, str], job_media: Path, tmp_path: Path
) -> None:
    """Relative keys resolve to the bucket of their kind; the bytes match the originals."""
    storage = GcsStorage(gcs_client, gcs_buckets)
    song, clips = fetch_inputs(storage, _blueprint(), tmp_path / "in")
    assert song.sha256 == file_sha256(job_media / SONG_KEY)
    assert clips[TEST_CLIPS[2].key].sha256 == file_sha256(job_media / TEST_CLIPS[2].key)


def test_gcs_missing_object_is_permanent_and_not_retried(
    gcs_client: Any, gcs_buckets: dict[StorageKind, str], tmp_path: Path
) -> None:
    """A 404 from the emulator is reported after one call, naming the object."""
    flaky = FlakyStorage(GcsStorage(gcs_client, gcs_buckets), 0, RuntimeError("unused"))
    blueprint = parse_blueprint(build_blueprint([MovePlan("moves/absent.mp4")]))
    with pytest.raises(AssetUnavailable, match=r"moves/absent\.mp4"):
        fetch_inputs(flaky, blueprint, tmp_path / "in", retries=3, base_delay_s=0.001)
    assert flaky.calls["moves/absent.mp4"] == 1


def test_gcs_job_with_a_missing_clip_exits_3_and_fails_the_task(
    database_url: str, gcs_buckets: dict[StorageKind, str], tmp_path: Path
) -> None:
    """``python -m job`` on the emulator: exit 3, task failed at the fetch step."""
    insert_task(database_url, "task-gcs-missing")
    document = build_blueprint(
        [MovePlan(TEST_CLIPS[0].key), MovePlan("moves/absent.mp4")], task_id="task-gcs-missing"
    )
    env = {
        "DATABASE_URL": database_url,
        "STORAGE_BACKEND": "gcs",
        "STORAGE_EMULATOR_HOST": os.environ["STORAGE_EMULATOR_HOST"],
        "SONGS_BUCKET": gcs_buckets["songs"],
        "MOVES_BUCKET": gcs_buckets["moves"],
        "VIDEOS_BUCKET": gcs_buckets["videos"],
        "JOB_CACHE_DIR": str(tmp_path / "cache"),
        "JOB_PUBLISH": "outbox",
    }
    done = run_job_process(document, env)
    assert done.returncode == ExitCode.ASSET_UNAVAILABLE, done.stderr
    row = task_row(database_url, "task-gcs-missing")
    assert row["state"] == "failed" and row["error_stage"] == "fetch"
    assert "moves/absent.mp4" in row["error"]


def test_gcs_job_renders_and_uploads_the_video(
    database_url: str, gcs_client: Any, gcs_buckets: dict[StorageKind, str], tmp_path: Path
) -> None:
    """On the emulator the finished video is uploaded to the videos bucket under its fixed name."""
    insert_task(database_url, "task-gcs")
    document = build_blueprint([MovePlan(s.key) for s in TEST_CLIPS[:3]], task_id="task-gcs")
    env = {
        "DATABASE_URL": database_url,
        "STORAGE_BACKEND": "gcs",
        "STORAGE_EMULATOR_HOST": os.environ["STORAGE_EMULATOR_HOST"],
        "SONGS_BUCKET": gcs_buckets["songs"],
        "MOVES_BUCKET": gcs_buckets["moves"],
        "VIDEOS_BUCKET": gcs_buckets["videos"],
        "JOB_CACHE_DIR": str(tmp_path / "cache"),
        "JOB_PUBLISH": "outbox",
    }
    done = run_job_process(document, env)
    assert done.returncode == ExitCode.DONE, done.stderr
    blobs = {blob.name: blob.content_type for blob in gcs_client.list_blobs(gcs_buckets["videos"])}
    assert blobs == {
        "videos/task-gcs-sync.json": "application/json",
        "videos/task-gcs.mp4": "video/mp4",
    }
    assert task_row(database_url, "task-gcs")["state"] == "completed"
