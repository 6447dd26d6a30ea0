"""Follow one task through its states, and write what a finished task leaves behind.

The demo polls the task row (state, render progress) the way ``choreo status --watch`` does; the
database is the one place every process (consumers, the job subprocess) reports to.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from choreo_cli.demo.environment import DemoPaths
from lifecycle.database import connect
from schemas.errors import TransientError

POLL_S = 0.25
TERMINAL = frozenset({"completed", "failed"})


@dataclass(frozen=True)
class TaskSnapshot:
    """What the task row says now."""

    state: str
    progress: float
    error: str | None
    error_stage: str | None
    video_uri: str | None
    # Every state the task has passed through, with seconds since it was created: states a
    # consumer enters and leaves in one transaction (analyzing) only show up here.
    history: tuple[tuple[str, float], ...] = ()


class DemoTimeout(TransientError):
    """The task did not finish in the time the demo allows (``DEMO_TIMEOUT``)."""


def follow_task(
    database_url: str,
    task_id: str,
    on_change: Callable[[TaskSnapshot], None],
    *,
    timeout_s: float,
) -> TaskSnapshot:
    """Poll until the task is completed or failed, calling ``on_change`` on every change."""
    deadline = time.monotonic() + timeout_s
    last: TaskSnapshot | None = None
    with connect(database_url, autocommit=True) as conn:
        while True:
            now = snapshot(conn, task_id)
            if now != last:
                on_change(now)
                last = now
            if now.state in TERMINAL:
                return now
            if time.monotonic() > deadline:
                raise DemoTimeout(
                    f"task {task_id} still {now.state} after {timeout_s:.0f} s "
                    f"(DEMO_TIMEOUT); see `choreo status {task_id}`"
                )
            time.sleep(POLL_S)


def snapshot(conn: psycopg.Connection[Any], task_id: str) -> TaskSnapshot:
    """The task's state, progress, error and video."""
    row = conn.execute(
        "SELECT state, progress, error, error_stage, video_uri FROM tasks WHERE task_id = %s",
        (task_id,),
    ).fetchone()
    if row is None:
        raise LookupError(f"task {task_id} vanished from the database")
    history = conn.execute(
        "SELECT to_state, extract(epoch FROM at - min(at) OVER ()) FROM task_history "
        "WHERE task_id = %s ORDER BY id",
        (task_id,),
    ).fetchall()
    passed = tuple((state, float(offset)) for state, offset in history)
    return TaskSnapshot(row[0], float(row[1]), row[2], row[3], row[4], passed)


@dataclass(frozen=True)
class DemoOutputs:
    """Where a finished demo run's results are."""

    video: Path
    blueprint: Path
    timeline: Path | None
    timeline_error: str | None


def write_outputs(paths: DemoPaths, database_url: str, task_id: str, video_uri: str) -> DemoOutputs:
    """Save the blueprint JSON and draw its timeline PNG next to it; where everything is."""
    from choreography.planner.timeline_figure import draw_timeline  # noqa: PLC0415 - matplotlib
    from schemas.blueprint import parse_blueprint  # noqa: PLC0415

    out = paths.outputs(task_id)
    out.mkdir(parents=True, exist_ok=True)
    with connect(database_url) as conn:
        row = conn.execute(
            "SELECT document FROM blueprints WHERE task_id = %s", (task_id,)
        ).fetchone()
    if row is None:
        raise LookupError(f"task {task_id} completed without a stored blueprint")
    blueprint_file = out / "blueprint.json"
    raw = json.dumps(row[0], indent=2).encode()
    blueprint_file.write_bytes(raw)
    png = out / "timeline.png"
    timeline: Path | None = png
    problem: str | None = None
    try:
        blueprint = parse_blueprint(raw)
        samples, rate = _song_samples(local_video(paths, str(blueprint.song.audio_uri)))
        draw_timeline(blueprint, png, samples=samples, sample_rate=rate)
    except Exception as error:  # the video is done; a figure that fails must not hide it
        timeline, problem = None, f"{type(error).__name__}: {error}"
    return DemoOutputs(local_video(paths, video_uri), blueprint_file, timeline, problem)


def local_video(paths: DemoPaths, uri: str) -> Path:
    """The file behind a local storage URI (``file://`` or a key under the storage root)."""
    if uri.startswith("file://"):
        return Path(uri.removeprefix("file://"))
    return paths.storage_root / uri


def _song_samples(song: Path) -> tuple[Any, int | None]:
    if not song.is_file():  # a song in a bucket: the figure goes without its waveform
        return None, None
    import librosa  # noqa: PLC0415 - only for the waveform

    samples, rate = librosa.load(song, sr=11025, mono=True)
    return samples, int(rate)
