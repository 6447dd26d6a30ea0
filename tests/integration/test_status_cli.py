"""``choreo status`` on real PostgreSQL: timeline, blueprint summary, outcome, list and watch."""

from __future__ import annotations

import itertools
import json
import threading
import time

import psycopg
import pytest
import typer
from psycopg.types.json import Jsonb
from typer.testing import CliRunner

from choreo_cli.status import EXIT_TASK_FAILED, status
from lifecycle.task_store import create_task, transition
from schemas.task_state import HAPPY_PATH, State
from tests.fixtures.blueprints import TEST_CLIPS, MovePlan, build_blueprint

pytestmark = pytest.mark.integration


def cli() -> typer.Typer:
    """The status command on its own (the same function ``choreo`` registers)."""
    app = typer.Typer()
    app.command()(status)
    return app


def walk(database_url: str, task_id: str, to: State, *, blueprint: bool = True) -> None:
    """Create the task and move it along the happy path to ``to``, storing its blueprint."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        create_task(conn, task_id, "song", {"path": "song"})
        for here, there in itertools.pairwise(HAPPY_PATH[: HAPPY_PATH.index(to) + 1]):
            fields = {"video_uri": f"videos/{task_id}.mp4"} if there is State.COMPLETED else {}
            if there is State.DISPATCHED:
                fields = {"execution_name": f"local-{task_id}-abcd"}
            transition(conn, task_id, here, there, **fields)
            if there is State.PLANNED and blueprint:
                document = build_blueprint(
                    [MovePlan(TEST_CLIPS[0].key), MovePlan(TEST_CLIPS[1].key)], task_id=task_id
                )
                conn.execute(
                    "INSERT INTO blueprints (task_id, schema_version, document) "
                    "VALUES (%s, '1', %s)",
                    (task_id, Jsonb(document)),
                )


def move(database_url: str, task_id: str, here: State, to: State, **fields: str) -> None:
    """One CAS step on the task."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        transition(conn, task_id, here, to, **fields)


@pytest.fixture(autouse=True)
def _database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)


def test_json_report_has_timeline_blueprint_and_video(database_url: str) -> None:
    """--json gives every state in order with times, the blueprint summary and the video."""
    walk(database_url, "task-st-done", State.COMPLETED)
    result = CliRunner().invoke(cli(), ["task-st-done", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [step["state"] for step in report["timeline"]] == [s.value for s in HAPPY_PATH]
    assert all(step["at"] for step in report["timeline"])
    assert report["blueprint"]["moves_count"] == 2
    assert report["blueprint"]["style"] == "hiphop"
    assert report["blueprint"]["song_title"] == "Test Tone"
    assert report["blueprint"]["duration_s"] == pytest.approx(2.0)
    assert report["video_uri"] == "videos/task-st-done.mp4"
    assert report["execution_name"] == "local-task-st-done-abcd"


def test_text_report_shows_states_and_the_error(database_url: str) -> None:
    """The text view lists the states and, for a failed task, the stage and the error."""
    walk(database_url, "task-st-fail", State.RENDERING)
    move(database_url, "task-st-fail", State.RENDERING, State.FAILED, error="ffmpeg exited 1",
         error_stage="render")  # fmt: skip
    result = CliRunner().invoke(cli(), ["task-st-fail"])
    assert result.exit_code == 0, result.output
    for state in ("queued", "analyzing", "planned", "dispatched", "rendering", "failed"):
        assert state in result.output
    assert "error (render): ffmpeg exited 1" in result.output
    assert "blueprint: Test Tone (2.0 s, 120 bpm), 2 moves, style hiphop" in result.output


def test_unknown_task_exits_1_naming_it(database_url: str) -> None:
    """A task id that does not exist is an error that names it."""
    result = CliRunner().invoke(cli(), ["task-nowhere"])
    assert result.exit_code == 1
    assert "no task with task_id 'task-nowhere'" in result.output


def test_no_task_id_lists_recent_tasks_newest_first(database_url: str) -> None:
    """Without a task id, the most recently changed tasks are listed, newest first."""
    walk(database_url, "task-st-old", State.PLANNED, blueprint=False)
    walk(database_url, "task-st-new", State.QUEUED, blueprint=False)
    result = CliRunner().invoke(cli(), ["--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [item["task_id"] for item in listed] == ["task-st-new", "task-st-old"]
    assert [item["state"] for item in listed] == ["queued", "planned"]


def test_watch_follows_the_task_until_it_completes(database_url: str) -> None:
    """--watch redraws while the task moves and exits 0 once it is completed."""
    walk(database_url, "task-st-watch", State.DISPATCHED)

    def finish() -> None:
        time.sleep(0.4)
        move(database_url, "task-st-watch", State.DISPATCHED, State.RENDERING)
        time.sleep(0.4)
        move(database_url, "task-st-watch", State.RENDERING, State.COMPLETED,
             video_uri="videos/task-st-watch.mp4")  # fmt: skip

    mover = threading.Thread(target=finish)
    mover.start()
    result = CliRunner().invoke(cli(), ["task-st-watch", "--watch", "--interval", "0.1"])
    mover.join()
    assert result.exit_code == 0, result.output
    assert "video: videos/task-st-watch.mp4" in result.output


def test_watch_exits_3_when_the_task_fails(database_url: str) -> None:
    """--watch on a task that ends failed exits with code 3."""
    walk(database_url, "task-st-wfail", State.RENDERING)
    move(database_url, "task-st-wfail", State.RENDERING, State.FAILED, error="boom")
    result = CliRunner().invoke(cli(), ["task-st-wfail", "--watch", "--interval", "0.1"])
    assert result.exit_code == EXIT_TASK_FAILED, result.output


def test_text_report_marks_each_recovery(database_url: str) -> None:
    """A recovery (a history row from a state to itself) shows as one, with its action."""
    walk(database_url, "task-st-rec", State.PLANNED)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO task_history (task_id, from_state, to_state, detail) "
            "VALUES ('task-st-rec', 'planned', 'planned', %s)",
            (Jsonb({"by": "recoverer", "recovery": 1, "action": "republished it"}),),
        )
    result = CliRunner().invoke(cli(), ["task-st-rec"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "planned (recovery)" in result.output
    assert "republished it" in result.output
