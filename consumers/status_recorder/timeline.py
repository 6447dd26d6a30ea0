"""What ``choreo status`` shows: a task's timeline, its blueprint summary, and recent tasks.

Read-only queries over ``tasks``, ``task_history`` and ``blueprints``, returned as plain data
(and as JSON-ready dicts), so the command line only renders.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import psycopg

from lifecycle.ports import TaskRow
from lifecycle.task_store import HistoryRow, get_task, task_history


@dataclass(frozen=True)
class BlueprintSummary:
    """The blueprint in one line: song, video length, how many moves, the style asked for."""

    song_title: str
    song_id: str | None
    duration_s: float | None
    tempo_bpm: float | None
    moves_count: int
    style: str | None
    video_uri: str | None


@dataclass(frozen=True)
class TaskReport:
    """A task row, its state changes oldest first, and its blueprint (None before planning)."""

    task: TaskRow
    history: list[HistoryRow]
    blueprint: BlueprintSummary | None

    @property
    def renditions(self) -> list[dict[str, Any]]:
        """The practice renditions recorded with the task's completion (newest such row)."""
        for step in reversed(self.history):
            listed = (step.detail or {}).get("renditions")
            if step.to_state.value == "completed" and isinstance(listed, list):
                return [item for item in listed if isinstance(item, dict)]
        return []

    @property
    def sync(self) -> dict[str, Any] | None:
        """The sync report's summary recorded with the task's completion (newest such row)."""
        for step in reversed(self.history):
            summary = (step.detail or {}).get("sync")
            if step.to_state.value == "completed" and isinstance(summary, dict):
                return summary
        return None


@dataclass(frozen=True)
class TaskListing:
    """One line of the recent-tasks list."""

    task_id: str
    state: str
    path: str
    song_id: str | None
    progress: float
    created_at: datetime
    updated_at: datetime


def load_report(conn: psycopg.Connection[Any], task_id: str) -> TaskReport:
    """The task's report; ``NotFound`` for an unknown task."""
    task = get_task(conn, task_id)
    row = conn.execute("SELECT document FROM blueprints WHERE task_id = %s", (task_id,)).fetchone()
    summary = summarise_blueprint(row[0], task.song_id) if row is not None else None
    return TaskReport(task, task_history(conn, task_id), summary)


def summarise_blueprint(document: Any, song_id: str | None = None) -> BlueprintSummary:
    """The summary fields of a blueprint document; absent or odd fields become None."""
    doc = document if isinstance(document, dict) else {}
    song = _dict(doc.get("song"))
    window = _dict(song.get("window"))
    start, end = _number(window.get("start_s")), _number(window.get("end_s"))
    constraints = _dict(_dict(doc.get("request")).get("constraints"))
    moves = doc.get("moves_used")
    return BlueprintSummary(
        song_title=str(song.get("title") or ""),
        song_id=song_id,
        duration_s=round(end - start, 3) if start is not None and end is not None else None,
        tempo_bpm=_number(song.get("tempo_bpm")),
        moves_count=len(moves) if isinstance(moves, list) else 0,
        style=constraints.get("style") if isinstance(constraints.get("style"), str) else None,
        video_uri=_dict(doc.get("video_output")).get("uri"),
    )


def recent_tasks(conn: psycopg.Connection[Any], limit: int = 20) -> list[TaskListing]:
    """The most recently changed tasks, newest first."""
    rows = conn.execute(
        "SELECT task_id, state, path, song_id, progress, created_at, updated_at FROM tasks "
        "ORDER BY updated_at DESC, task_id LIMIT %s",
        (limit,),
    ).fetchall()
    return [TaskListing(*row) for row in rows]


def report_json(report: TaskReport) -> dict[str, Any]:
    """The report as a JSON-ready dict (times in ISO 8601)."""
    task = report.task
    return {
        "task_id": task.task_id,
        "state": task.state.value,
        "path": task.path,
        "song_id": task.song_id,
        "progress": task.progress,
        "execution_name": task.execution_name,
        "video_uri": task.video_uri,
        "error": task.error,
        "error_stage": task.error_stage,
        "created_at": task.created_at.isoformat(),
        "updated_at": task.updated_at.isoformat(),
        "timeline": [
            {
                "state": step.to_state.value,
                "from": step.from_state.value if step.from_state else None,
                "at": step.at.isoformat(),
                "detail": step.detail,
            }
            for step in report.history
        ],
        "blueprint": asdict(report.blueprint) if report.blueprint else None,
        "renditions": report.renditions,
        "sync": report.sync,
    }


def listing_json(listing: TaskListing) -> dict[str, Any]:
    """One recent task as a JSON-ready dict."""
    data = asdict(listing)
    data["created_at"] = listing.created_at.isoformat()
    data["updated_at"] = listing.updated_at.isoformat()
    return data


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
