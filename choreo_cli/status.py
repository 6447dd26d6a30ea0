"""``choreo status [TASK_ID]``: a task's timeline, blueprint and outcome, or the recent tasks.

Reads PostgreSQL (``DATABASE_URL``) only. ``--watch`` polls and redraws until the task reaches
``completed`` or ``failed`` (exit 0 or 3) or until Ctrl-C (exit 130). Exit 1: no such task, or
the database cannot be reached.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from schemas.errors import ChoreoError

if TYPE_CHECKING:
    import psycopg
    from rich.console import RenderableType

    from consumers.status_recorder.timeline import TaskListing, TaskReport

EXIT_ERROR = 1
EXIT_TASK_FAILED = 3
EXIT_INTERRUPTED = 130
STATE_STYLE = {"completed": "bold green", "failed": "bold red", "rendering": "cyan"}

TaskIdArg = Annotated[str | None, typer.Argument(help="The task; omit to list recent tasks.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
Watch = Annotated[bool, typer.Option("--watch", help="Follow the task until it finishes.")]
Interval = Annotated[float, typer.Option(min=0.1, help="Seconds between polls with --watch.")]
Limit = Annotated[int, typer.Option(min=1, max=1000, help="How many recent tasks to list.")]


def status(
    task_id: TaskIdArg = None,
    *,
    as_json: AsJson = False,
    watch: Watch = False,
    interval: Interval = 1.0,
    limit: Limit = 20,
) -> None:
    """Show a task's timeline, blueprint summary and video or error (or list recent tasks)."""
    from rich.console import Console  # noqa: PLC0415 - keep `choreo --help` fast

    from consumers.status_recorder.timeline import (  # noqa: PLC0415
        listing_json,
        load_report,
        recent_tasks,
        report_json,
    )

    console = Console()
    if watch and task_id is None:
        _fail("--watch needs a TASK_ID")
    if watch and as_json:
        _fail("--watch draws a live view; use --json without --watch")
    with _connection() as conn:
        try:
            if task_id is None:
                listings = recent_tasks(conn, limit)
                if as_json:
                    typer.echo(json.dumps([listing_json(item) for item in listings], indent=2))
                else:
                    console.print(render_listing(listings))
                return
            if watch:
                raise typer.Exit(_watch(conn, task_id, interval, console))
            report = load_report(conn, task_id)
        except ChoreoError as error:
            _fail(str(error))
    if as_json:
        typer.echo(json.dumps(report_json(report), indent=2))
    else:
        console.print(render_report(report))


def render_report(report: TaskReport) -> RenderableType:
    """The task as rich text: header, timeline table, blueprint line, video or error."""
    from rich.console import Group  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    task = report.task
    state = task.state.value
    header = Text.assemble(
        ("task ", "bold"), (task.task_id, "bold"), "  ", (state, STATE_STYLE.get(state, "yellow"))
    )
    if state == "rendering":
        header.append(f"  {task.progress:.0f}%")
    timeline = Table(box=None, show_header=True, pad_edge=False)
    for column in ("state", "at", "after", "detail"):
        timeline.add_column(column)
    previous: datetime | None = None
    for step in report.history:
        after = "" if previous is None else _duration((step.at - previous).total_seconds())
        # A row from a state to itself is a recovery (an event republished, a job restarted).
        label = step.to_state.value
        if step.from_state is step.to_state:
            label = f"{label} (recovery)"
        timeline.add_row(label, _clock(step.at), after, _detail(step.detail))
        previous = step.at
    lines: list[RenderableType] = [header, timeline]
    revision = revision_line(task.path, task.request)
    if revision:
        lines.insert(1, Text(revision))
    if report.blueprint is not None:
        plan = report.blueprint
        song = plan.song_title or plan.song_id or "?"
        length = "?" if plan.duration_s is None else f"{plan.duration_s:.1f} s"
        tempo = "" if plan.tempo_bpm is None else f", {plan.tempo_bpm:.0f} bpm"
        lines.append(
            Text(
                f"blueprint: {song} ({length}{tempo}), {plan.moves_count} moves, "
                f"style {plan.style or 'any'}"
            )
        )
    if task.execution_name:
        lines.append(Text(f"execution: {task.execution_name}"))
    if task.video_uri:
        lines.append(Text(f"video: {task.video_uri}", style="green"))
    lines += [Text(line, style="green") for line in rendition_lines(report.renditions)]
    if report.sync is not None:
        lines.append(Text(sync_line(report.sync), style="green"))
    if task.error:
        lines.append(Text(f"error ({task.error_stage or '?'}): {task.error}", style="red"))
    return Group(*lines)


def revision_line(path: str, request: dict[str, Any]) -> str | None:
    """``revision of T: keep 1-8, redo 9-16`` for a revision task (path ``revise``), else None."""
    if path != "revise":
        return None

    def bars(spans: Any) -> str:
        listed = spans if isinstance(spans, list) else []
        return ",".join(
            str(s["first"]) if s["first"] == s["last"] else f"{s['first']}-{s['last']}"
            for s in listed
        )

    line = f"revision of {request.get('parent_task_id', '?')}: redo {bars(request.get('redo'))}"
    if request.get("keep"):
        line += f", keep {bars(request.get('keep'))}"
    overrides = request.get("constraints") or {}
    if overrides:
        line += ", " + ", ".join(f"{name} {value}" for name, value in sorted(overrides.items()))
    return line


def render_listing(listings: list[TaskListing]) -> RenderableType:
    """The recent tasks as a rich table."""
    from rich.table import Table  # noqa: PLC0415

    table = Table(box=None, pad_edge=False)
    for column in ("task", "state", "progress", "song", "updated"):
        table.add_column(column)
    for item in listings:
        style = STATE_STYLE.get(item.state, "")
        table.add_row(
            item.task_id,
            f"[{style}]{item.state}[/]" if style else item.state,
            f"{item.progress:.0f}%",
            item.song_id or "",
            _clock(item.updated_at),
        )
    if not listings:
        table.caption = "no tasks yet"
    return table


def _watch(conn: psycopg.Connection[Any], task_id: str, interval: float, console: Any) -> int:
    from rich.live import Live  # noqa: PLC0415

    from consumers.status_recorder.timeline import load_report  # noqa: PLC0415

    report = load_report(conn, task_id)
    try:
        with Live(render_report(report), console=console, auto_refresh=False) as live:
            while report.task.state.value not in ("completed", "failed"):
                time.sleep(interval)
                report = load_report(conn, task_id)
                live.update(render_report(report), refresh=True)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return 0 if report.task.state.value == "completed" else EXIT_TASK_FAILED


@contextmanager
def _connection() -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection from ``DATABASE_URL`` (each poll sees the latest commit)."""
    from lifecycle.database import connect  # noqa: PLC0415
    from schemas.settings import DatabaseSettings  # noqa: PLC0415

    settings = DatabaseSettings()
    if not settings.database_url:
        _fail("DATABASE_URL is not set: point it at the choreo PostgreSQL database")
    try:
        conn = connect(settings.database_url, timeout_s=settings.connect_timeout_s, autocommit=True)
    except ChoreoError as error:
        _fail(str(error))
    with conn:
        yield conn


def _clock(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _duration(seconds: float) -> str:
    return f"+{seconds:.1f} s" if seconds < 120 else f"+{seconds / 60:.1f} min"


def _detail(detail: dict[str, Any] | None) -> str:
    if not detail:
        return ""
    # Renditions and the sync report get lines of their own, not a run-on detail.
    shown = {k: v for k, v in detail.items() if k not in ("event_id", "renditions", "sync")}
    return ", ".join(f"{key}={value}" for key, value in shown.items())


def rendition_lines(renditions: list[dict[str, Any]]) -> list[str]:
    """One line per mirror, slow copy and page; the loops as a count and their first URI."""
    lines = []
    loops = [item for item in renditions if item.get("kind") == "loop"]
    for item in renditions:
        kind = item.get("kind")
        if kind == "loop":
            continue
        what = f"slow {item.get('speed')}x" if kind == "slow" else kind
        lines.append(f"{what}: {item.get('uri')}")
    if loops:
        lines.append(
            f"loops: {len(loops)} clips ({loops[0].get('label')}: {loops[0].get('uri')}, ...)"
        )
    return lines


def sync_line(sync: dict[str, Any]) -> str:
    """The sync report in one line: cuts seen and their error, audio offset, duration."""
    cuts = f"{sync.get('cuts_measured')}/{sync.get('cuts_planned')} cuts seen"
    if sync.get("cut_error_max_ms") is not None:
        cuts += f" (max {sync['cut_error_max_ms']} ms off the beat)"
    offset = sync.get("audio_offset_ms")
    audio = ("audio not measured" if offset is None
             else f"audio {offset:+} ms (r {sync.get('audio_correlation')})")  # fmt: skip
    duration = f"duration {sync.get('duration_error_ms')} ms off"
    return f"sync: {cuts}, {audio}, {duration}: {sync.get('report_uri')}"


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_ERROR)
