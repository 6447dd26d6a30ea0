"""The sync report on real FFmpeg renders: stored and announced when it passes, failing the
task with its figures when the audio is off (a tampered cache entry), printed by the CLI."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from choreo_cli.main import app
from consumers.status_recorder.timeline import load_report
from job.ffmpeg_plan import audio_key
from job.segment_cache import SegmentCache
from schemas.job_exit import ExitCode
from tests.fixtures.blueprints import (
    TEST_CLIPS,
    MovePlan,
    announced_completions,
    build_blueprint,
    insert_task,
    outbox_types,
    run_job_process,
    task_row,
)

pytestmark = pytest.mark.integration

SONG = "songs/beats.m4a"
# Noise with a decaying hit on every beat of build_blueprint's grid (120 BPM from 0.1 s) and
# an irregular accent, so the onset envelope has one best alignment.
BEATS = (
    "aevalsrc=exprs='(random(0)*2-1)*(0.03+exp(-25*mod(t-0.1\\,0.5))"
    "*(0.2+0.8*lt(mod(t*1.37\\,1.9)\\,0.7)))':s=44100:d=30"
)


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture
def storage(job_media: Path, tmp_path: Path) -> Path:
    """The job's test clips and a song with beats, in a storage root of the test's own."""
    root = tmp_path / "storage"
    shutil.copytree(job_media, root)
    _ffmpeg("-f", "lavfi", "-i", BEATS, "-c:a", "aac", "-b:a", "96k", str(root / SONG))
    return root


def _blueprint(task_id: str) -> dict[str, Any]:
    """Four 2-count moves of four colours, hard cuts at 1, 2 and 3 s, 320x180."""
    moves = [MovePlan(spec.key) for spec in TEST_CLIPS[:4]]
    return build_blueprint(moves, task_id=task_id, audio_uri=SONG, width=320, height=180)


def _env(database_url: str, storage: Path, cache: Path) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "STORAGE_ROOT": str(storage),
            "JOB_CACHE_DIR": str(cache), "JOB_PUBLISH": "outbox"}  # fmt: skip


def test_a_render_in_sync_stores_its_report_and_announces_it(
    database_url: str, storage: Path, tmp_path: Path
) -> None:
    """The report beside the video sees the three cuts on their beats and the audio on the
    song; video.completed carries its summary, the history row keeps it, status shows it."""
    insert_task(database_url, "task-sync")
    done = run_job_process(_blueprint("task-sync"), _env(database_url, storage, tmp_path / "c"))
    assert done.returncode == ExitCode.DONE, done.stderr
    report = json.loads((storage / "videos/task-sync-sync.json").read_text())
    assert report["passed"] is True and report["failures"] == []
    assert [cut["measured_s"] for cut in report["cuts"]] == [1.0, 2.0, 3.0]
    assert report["cut_error_max_ms"] == 0.0
    assert abs(report["audio_offset_ms"]) < 5
    assert report["audio_correlation"] > 0.8
    assert report["duration_error_ms"] <= 1000 / 24
    (event,) = announced_completions(database_url)
    assert event.sync is not None
    assert event.sync.report_uri == "videos/task-sync-sync.json"
    summary = {key: report[key] for key in event.sync.model_dump() if key != "report_uri"}
    assert event.sync.model_dump(exclude={"report_uri"}) == summary
    with psycopg.connect(database_url) as conn:
        recorded = load_report(conn, "task-sync").sync
    assert recorded == event.sync.model_dump(mode="json")
    shown = CliRunner().invoke(app, ["status", "task-sync"], env={"DATABASE_URL": database_url})
    assert shown.exit_code == 0, shown.output
    assert "sync: 3/3 cuts seen (max 0.0 ms off the beat), audio " in shown.output
    assert "videos/task-sync-sync.json" in shown.output


def test_audio_offset_in_the_render_fails_the_task_with_the_figures(
    database_url: str, storage: Path, tmp_path: Path
) -> None:
    """The cached audio for the window holds the song from 0.2 s earlier (a wrong cache entry):
    the report measures it ~200 ms late, the task fails naming that figure, nothing is
    uploaded, one task.failed is written, and a retry adds nothing."""
    document = _blueprint("task-late")
    window = document["song"]["window"]
    length = window["end_s"] - window["start_s"]
    song = storage / SONG
    key = audio_key(_sha256(song), window["start_s"], length, 0.0, 0.0)
    tampered = SegmentCache(tmp_path / "c").path("audio", key, ".m4a")
    tampered.parent.mkdir(parents=True)
    _ffmpeg("-ss", f"{window['start_s'] - 0.2:.6f}", "-i", str(song), "-t", f"{length:.6f}",
            "-c:a", "aac", "-b:a", "160k", "-ar", "48000", "-ac", "2", "-f", "mp4",
            str(tampered))  # fmt: skip
    insert_task(database_url, "task-late")
    done = run_job_process(document, _env(database_url, storage, tmp_path / "c"))
    assert done.returncode == ExitCode.FFMPEG_FAILED, done.stderr
    row = task_row(database_url, "task-late")
    assert (row["state"], row["error_stage"]) == ("failed", "sync")
    assert row["error"].startswith("sync report out of tolerance: audio is +")
    offset = float(row["error"].split("audio is +", 1)[1].split(" ms", 1)[0])
    assert 190 < offset < 210
    assert "tolerance 40 ms" in row["error"]
    assert not (storage / "videos").exists()
    assert outbox_types(database_url) == [("com.choreo.task.failed.v1", False)]
    # A retry of the execution meets the failed task: nothing rendered, nothing announced twice.
    again = run_job_process(document, _env(database_url, storage, tmp_path / "c"))
    assert again.returncode == ExitCode.INVALID_BLUEPRINT, again.stderr
    assert outbox_types(database_url) == [("com.choreo.task.failed.v1", False)]


def test_choreo_render_writes_and_prints_the_report(storage: Path, tmp_path: Path) -> None:
    """``choreo render`` writes ``<out>-sync.json`` beside the video and prints its figures."""
    blueprint = tmp_path / "bp.json"
    blueprint.write_text(json.dumps(_blueprint("task-cli")))
    out = tmp_path / "out" / "v.mp4"
    ran = CliRunner().invoke(
        app, ["render", str(blueprint), "--out", str(out), "--storage-root", str(storage)],
        env={"JOB_CACHE_DIR": str(tmp_path / "c")},
    )  # fmt: skip
    assert ran.exit_code == 0, ran.output
    assert f"sync report: {out.parent / 'v-sync.json'}" in ran.output
    assert "cuts: 3 of 3 hard cuts seen, off the beat by 0.0 ms median" in ran.output
    assert json.loads((out.parent / "v-sync.json").read_text())["cuts_measured"] == 3


def test_choreo_render_of_silent_audio_fails_and_keeps_the_video_and_report(
    storage: Path, tmp_path: Path
) -> None:
    """The cached audio for the window is silence (a wrong stream): the song has onsets there,
    so the report calls the audio out of step (correlation 0), ``choreo render`` exits 5 with
    the figure and keeps the video and its report to look at."""
    document = _blueprint("task-silent")
    window = document["song"]["window"]
    length = window["end_s"] - window["start_s"]
    key = audio_key(_sha256(storage / SONG), window["start_s"], length, 0.0, 0.0)
    silent = SegmentCache(tmp_path / "c").path("audio", key, ".m4a")
    silent.parent.mkdir(parents=True)
    _ffmpeg("-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo", "-t", f"{length:.6f}",
            "-c:a", "aac", "-b:a", "160k", "-f", "mp4", str(silent))  # fmt: skip
    blueprint = tmp_path / "bp.json"
    blueprint.write_text(json.dumps(document))
    out = tmp_path / "out" / "v.mp4"
    ran = CliRunner().invoke(
        app, ["render", str(blueprint), "--out", str(out), "--storage-root", str(storage)],
        env={"JOB_CACHE_DIR": str(tmp_path / "c")},
    )  # fmt: skip
    assert ran.exit_code == ExitCode.FFMPEG_FAILED, ran.output
    assert "audio does not follow the song: onset correlation 0.00" in ran.output
    assert out.exists()
    report = json.loads((out.parent / "v-sync.json").read_text())
    assert report["audio_correlation"] == 0.0
    assert report["passed"] is False


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
