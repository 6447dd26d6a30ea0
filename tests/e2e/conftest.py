"""E2E fixtures: a demo move library and a short song once per session, a pipeline per test."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from producers.topology_apply import apply_topology
from schemas.topology import build_topology
from tests.e2e.stack_driver import CHOREO, WATCH_SUBSCRIPTION, PipelineRun, subprocess_env
from tests.fixtures.pubsub import PubSubProject
from tests.fixtures.stack import require_env

SONG_KEY = "songs/e2e-song.wav"
SONG_TEMPO = 120.0
# 12 bars at 120 BPM: 24 s, a chorus that repeats.
SONG_STRUCTURE = (("intro", 2), ("verse", 3), ("chorus", 2), ("verse", 3), ("chorus", 2))


@pytest.fixture(scope="session")
def demo_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The procedural demo move bundle, rendered once per session.

    At 320x180: the pipeline is under test here, not the figure, and 720p clips made every render
    of the burst and chaos tests several times slower (the job scales clips to the output).
    """
    out = tmp_path_factory.mktemp("e2e-library") / "library"
    done = subprocess.run(
        [CHOREO, "moves", "demo-library", str(out), "--size", "320x180"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.fixture(scope="session")
def e2e_song(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24-second synthesized song, written once per session."""
    from choreo_cli.demo.song_synth import synthesize_song, write_wav  # noqa: PLC0415 - numpy

    song = synthesize_song(SONG_TEMPO, "syncopated", SONG_STRUCTURE, seed=5)
    return write_wav(tmp_path_factory.mktemp("e2e-song") / "e2e-song.wav", song.y, song.sr)


@pytest.fixture
def pipeline_run(
    database_url: str,
    pubsub_project: PubSubProject,
    demo_library: Path,
    e2e_song: Path,
    tmp_path: Path,
) -> Iterator[PipelineRun]:
    """A fresh database with the library imported, a project with the topology, a storage root."""
    storage_root = tmp_path / "storage"
    (storage_root / "songs").mkdir(parents=True)
    shutil.copyfile(e2e_song, storage_root / SONG_KEY)
    logs = tmp_path / "logs"
    logs.mkdir()
    env = subprocess_env(
        DATABASE_URL=database_url,
        PUBSUB_EMULATOR_HOST=require_env("PUBSUB_EMULATOR_HOST"),
        PUBSUB_PROJECT_ID=pubsub_project.project_id,
        STORAGE_BACKEND="local",
        STORAGE_ROOT=str(storage_root),
        JOB_CACHE_DIR=str(tmp_path / "job-cache"),
        LOCAL_JOB_LOG_DIR=str(logs / "jobs"),
        # The job's default: it publishes its own outbox row under the relays' row lock, so the
        # burst test's "one video.completed per task" also proves the job and relays never both
        # publish a row (they did, 7 times in 20 tasks, before the lock).
        JOB_PUBLISH="direct",
        DISPATCHER_LAUNCHER="local",
        LOCAL_JOB_CONCURRENCY="2",
        WORKER_HEALTH_PORT="0",  # three workers on one machine: let each pick a free port
        OUTBOX_POLL_INTERVAL="0.2",
        LOG_LEVEL="INFO",
        LOG_JSON="true",
    )
    imported = subprocess.run(
        [CHOREO, "moves", "import", str(demo_library)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr[-2000:]
    topology = build_topology()
    apply_topology(
        topology,
        pubsub_project.project_id,
        publisher=pubsub_project.publisher,
        subscriber=pubsub_project.subscriber,
    )
    pubsub_project.subscriber.create_subscription(
        request={
            "name": pubsub_project.subscription_path(WATCH_SUBSCRIPTION),
            "topic": pubsub_project.topic_path("video-done"),
            "ack_deadline_seconds": 30,
        }
    )
    run = PipelineRun(env, database_url, storage_root, logs, pubsub_project)
    try:
        yield run
    finally:
        run.stop_all()
