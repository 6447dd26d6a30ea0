"""`choreo demo`: the whole pipeline on this machine, no cloud and nothing to start by hand.

Embedded PostgreSQL (unless ``DATABASE_URL``), the in-process bus (unless
``PUBSUB_EMULATOR_HOST``), local storage and the local job runner, all under
``CHOREO_DATA_DIR``. Shows each stage as it happens and ends with where the video, the blueprint
and its timeline are. Exit 0 when the video is done, 1 on an error or a failed task.
"""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from schemas.errors import ChoreoError

if TYPE_CHECKING:
    from choreo_cli.demo.progress import TaskSnapshot
    from choreo_cli.demo.run import DemoReport

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
# Share of the bar each state stands for; rendering fills the rest with the job's own progress.
STAGE_PERCENT = {"queued": 0, "analyzing": 5, "planned": 30, "dispatched": 35, "rendering": 35}
STAGE_LABEL = {
    "queued": "queued: analysing song, searching moves, planning",
    "analyzing": "analysing",
    "planned": "planned: blueprint stored",
    "dispatched": "dispatched: video job starting",
    "rendering": "rendering video",
    "completed": "completed",
    "failed": "failed",
}


def demo(
    song: Annotated[
        Path | None, typer.Option("--song", help="Dance to this audio file (else a demo song).")
    ] = None,
    describe: Annotated[
        str | None, typer.Option("--describe", help="Describe the dance, e.g. 'energetic hip-hop'.")
    ] = None,
    style: Annotated[str | None, typer.Option(help="Dance style slug, e.g. hip-hop.")] = None,
    difficulty: Annotated[
        str | None, typer.Option(help="beginner, intermediate or advanced.")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="Show the services' logs.")] = False,
) -> None:
    """Make a dance video end to end on this machine (first run builds, later runs reuse)."""
    from rich.console import Console  # noqa: PLC0415 - keep `choreo --help` fast
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: PLC0415

    from choreo_cli.demo.run import DemoRequest, run_demo  # noqa: PLC0415
    from schemas.logs import configure_logging  # noqa: PLC0415

    level = "INFO" if verbose else "WARNING"
    configure_logging(level, json_lines=verbose)
    console = Console(stderr=False, highlight=False)
    request = DemoRequest(
        song=song, describe=describe, style=style, difficulty=difficulty, log_level=level
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task("preparing", total=100)

        def say(line: str) -> None:
            progress.console.print(f"[dim]·[/dim] {line}")

        shown: list[tuple[str, float]] = []

        def on_change(now: TaskSnapshot) -> None:
            for state, offset in now.history[len(shown) :]:
                progress.console.print(f"[cyan]▸[/cyan] {state:<11} at {offset:6.1f} s")
            shown[:] = now.history
            _show(progress, bar, now)

        # SIGTERM unwinds like Ctrl-C, so the workers, the pools and embedded PostgreSQL stop.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            report = run_demo(request, say=say, on_change=on_change)
        except ChoreoError as error:
            progress.stop()
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(EXIT_FAILED) from None
        except KeyboardInterrupt:
            progress.stop()
            console.print("interrupted: services stopped; `choreo status` shows where tasks were")
            raise typer.Exit(EXIT_INTERRUPTED) from None
    _summarise(console, report)


def _library_line(report: DemoReport) -> str:
    """Which library the moves came from: salsa is real motion capture, the rest procedural."""
    wanted = {library.name: library for library in report.libraries}
    if "salsa" in wanted:
        return f"{wanted['salsa'].what} for salsa; {wanted['procedural'].what} for other styles"
    return f"{wanted['procedural'].what} (salsa comes from real motion: --style salsa)"


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _show(progress: Any, bar: Any, now: TaskSnapshot) -> None:
    label = STAGE_LABEL.get(now.state, now.state)
    if now.state == "rendering":
        percent = STAGE_PERCENT["rendering"] + now.progress * 0.65
        label = f"rendering video {now.progress:.0f}%"
    elif now.state == "completed":
        percent = 100.0
    else:
        percent = STAGE_PERCENT.get(now.state, 0)
    progress.update(bar, description=label, completed=percent)


def _summarise(console: Any, report: DemoReport) -> None:
    final = report.final
    if final is None or final.state != "completed":
        where = f" at {final.error_stage}" if final and final.error_stage else ""
        reason = final.error if final else "no outcome"
        console.print(f"[bold red]task {report.task_id} failed{where}:[/bold red] {reason}")
        console.print(f"details: choreo status {report.task_id}")
        raise typer.Exit(EXIT_FAILED)
    outputs = report.outputs
    if outputs is None:  # completed rows always carry a video; say so if one did not
        console.print(f"[bold red]task {report.task_id} completed without outputs[/bold red]")
        raise typer.Exit(EXIT_FAILED)
    console.print(
        f"[bold green]done[/bold green] in {report.seconds:.1f} s (task {report.task_id})"
    )
    console.print(f"  video      {outputs.video}")
    console.print(f"  moves      {_library_line(report)}")
    console.print(f"  blueprint  {outputs.blueprint}")
    if outputs.timeline is not None:
        console.print(f"  timeline   {outputs.timeline}")
    else:
        console.print(f"  timeline   not drawn: {outputs.timeline_error}")
    reused = sum(1 for step in report.prepared if step.reused)
    console.print(f"  reused {reused} of {len(report.prepared)} prepared assets")
    console.print(f"  database   {report.database}")
