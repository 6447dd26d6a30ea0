"""End-to-end benchmark on the local stack: one 3-minute Path 1 request, then 50 more.

    eval "$(.venv/bin/choreo stack env)" && .venv/bin/python bench/e2e.py [--requests 50]

Sets up its own database, Pub/Sub project (topology + a watch subscription on ``video-done``)
and storage root, imports the demo move library (rendered once into ``.choreo/bench/library``),
synthesizes a 3-minute song, and runs the three pull workers (``choreo worker ...``) as
subprocesses. (1) Latency: request published → ``video.completed`` pulled, split by stage from
``task_history`` and the outbox. (2) Throughput: ``--requests`` requests for the now-analysed
song, sent at once. Prints a table and writes JSON to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from lifecycle.database import open_pool  # noqa: E402
from lifecycle.migrations import migrate  # noqa: E402
from producers.pubsub_publisher import build_pubsub_publisher  # noqa: E402
from producers.requests import song_request_document, submit_request  # noqa: E402
from producers.topology_apply import apply_topology, pubsub_admin_clients  # noqa: E402
from schemas.settings import DatabaseSettings, PubSubSettings  # noqa: E402
from schemas.topology import build_topology  # noqa: E402
from tests.e2e.stack_driver import WATCH_SUBSCRIPTION, PipelineRun, subprocess_env  # noqa: E402
from tests.fixtures.database import with_dbname  # noqa: E402
from tests.fixtures.pubsub import PubSubProject  # noqa: E402

CHOREO = str(ROOT / ".venv" / "bin" / "choreo")
LIBRARY = ROOT / ".choreo" / "bench" / "library"
SONG_KEY = "songs/bench-3min.wav"
# 90 bars at 120 BPM: 180 s.
STRUCTURE = (("intro", 4), ("verse", 16), ("chorus", 16), ("verse", 16), ("chorus", 16),
             ("bridge", 8), ("chorus", 14))  # fmt: skip


def main() -> int:
    """Run both scenarios once and report."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    admin = DatabaseSettings().database_url
    if not admin or not PubSubSettings().emulator_host:
        sys.exit('start the local stack and eval "$(.venv/bin/choreo stack env)" first')
    if not (LIBRARY / "manifest.json").exists():
        subprocess.run([CHOREO, "moves", "demo-library", str(LIBRARY)], check=True)
    name = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = with_dbname(admin, name)
    try:
        with tempfile.TemporaryDirectory(prefix="choreo-bench-") as scratch:
            result = run(url, Path(scratch), args.requests)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "results" / f"e2e-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0


def run(url: str, scratch: Path, requests: int) -> dict[str, Any]:
    """Set up, start the workers, measure."""
    from choreo_cli.demo.song_synth import synthesize_song, write_wav  # noqa: PLC0415

    migrate(url)
    storage = scratch / "storage"
    song = synthesize_song(120.0, "syncopated", STRUCTURE, seed=11)
    (storage / SONG_KEY).parent.mkdir(parents=True)
    write_wav(storage / SONG_KEY, song.y, song.sr)
    project_id = f"bench-{uuid.uuid4().hex[:10]}"
    env = subprocess_env(
        DATABASE_URL=url, PUBSUB_PROJECT_ID=project_id, STORAGE_BACKEND="local",
        STORAGE_ROOT=str(storage), JOB_CACHE_DIR=str(scratch / "job-cache"),
        WORKER_HEALTH_PORT="0", JOB_PUBLISH="outbox", OUTBOX_POLL_INTERVAL="0.2",
        LOCAL_JOB_CONCURRENCY="2",
        # The whole burst fits the local runner's queue: above the limit a launch is refused and
        # left to redelivery, which measures the emulator's redelivery, not the pipeline.
        LOG_LEVEL="INFO",
    )  # fmt: skip
    subprocess.run([CHOREO, "moves", "import", str(LIBRARY)], env=env, check=True,
                   capture_output=True)  # fmt: skip
    publisher_admin, subscriber_admin = pubsub_admin_clients(PubSubSettings().emulator_host)
    project = PubSubProject(project_id, publisher_admin, subscriber_admin)
    apply_topology(build_topology(), project_id, publisher=publisher_admin,
                   subscriber=subscriber_admin)  # fmt: skip
    subscriber_admin.create_subscription(request={
        "name": project.subscription_path(WATCH_SUBSCRIPTION),
        "topic": project.topic_path("video-done"),
    })  # fmt: skip
    logs = scratch / "logs"
    logs.mkdir()
    pipeline = PipelineRun(env, url, storage, logs, project)
    for name in ("blueprint", "dispatcher", "status"):
        pipeline.start("worker", name)
    time.sleep(8)  # let the workers load their libraries before the clock starts
    settings = PubSubSettings(PUBSUB_PROJECT_ID=project_id)  # type: ignore[call-arg]
    publisher = build_pubsub_publisher(settings)
    pool = open_pool(DatabaseSettings(DATABASE_URL=url))  # type: ignore[call-arg]
    try:
        latency = one_request(pipeline, pool, publisher)
        print(json.dumps({"latency": latency}), flush=True)
        throughput = burst(pipeline, pool, publisher, requests)
    finally:
        codes = pipeline.stop_all()
        publisher.close()
        pool.close()
    return {"latency": latency, "throughput": throughput, "worker_exit_codes": codes,
            "song_s": round(float(len(song.y) / song.sr), 1)}  # fmt: skip


def submit(pool: Any, publisher: Any) -> str:
    """One Path 1 request for the benchmark song, published at once."""
    document = song_request_document(audio_uri=SONG_KEY)
    return submit_request(pool, document, publisher=publisher).task_id


def one_request(pipeline: PipelineRun, pool: Any, publisher: Any) -> dict[str, Any]:
    """Latency of one request on a cold song (analysis included), split by stage."""
    started = time.monotonic()
    task_id = submit(pool, publisher)
    pipeline.wait_for_events({task_id}, 900)
    total = time.monotonic() - started
    return {
        "task_id": task_id,
        "total_s": round(total, 2),
        **stages(pipeline.database_url, task_id),
    }


def stages(url: str, task_id: str) -> dict[str, float]:
    """Seconds between the recorded moments of one task (see docs/PIPELINE.md for meanings)."""
    with psycopg.connect(url) as conn:
        at = dict(conn.execute(
            "SELECT to_state, min(at) FROM task_history WHERE task_id = %s GROUP BY to_state",
            (task_id,),
        ).fetchall())  # fmt: skip
        ready = conn.execute(
            "SELECT published_at FROM outbox WHERE ordering_key = %s AND topic = %s",
            (task_id, "blueprint-ready"),
        ).fetchone()
        done = conn.execute(
            "SELECT published_at FROM outbox WHERE ordering_key = %s AND topic = %s",
            (task_id, "video-done"),
        ).fetchone()
    moments = {
        "queue_wait_blueprint_s": (at["queued"], at["analyzing"]),
        "analyse_plan_store_and_relay_s": (at["analyzing"], ready[0] if ready else None),
        "queue_wait_dispatcher_s": (ready[0] if ready else None, at["dispatched"]),
        "dispatch_to_job_start_s": (at["dispatched"], at["rendering"]),
        "render_and_upload_s": (at["rendering"], at["completed"]),
        "announce_s": (at["completed"], done[0] if done else None),
    }
    return {k: round((b - a).total_seconds(), 2) for k, (a, b) in moments.items() if a and b}


def burst(pipeline: PipelineRun, pool: Any, publisher: Any, requests: int) -> dict[str, Any]:
    """Send ``requests`` requests at once for the analysed song; time to the last video."""
    started = time.monotonic()
    task_ids = {submit(pool, publisher) for _ in range(requests)}
    submitted = time.monotonic() - started
    pipeline.wait_for_events(task_ids, 1800)
    total = time.monotonic() - started
    states = pipeline.states(task_ids)
    completed = sum(1 for state, _e, _v in states.values() if state == "completed")
    return {
        "requests": requests, "completed": completed, "submit_s": round(submitted, 2),
        "total_s": round(total, 2), "per_minute": round(requests / total * 60, 1),
        "mean_s_per_video": round(total / requests, 2),
    }  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
