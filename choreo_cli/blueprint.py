"""`choreo blueprint` commands: validate, inspect (figures and timeline picture), schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from schemas.blueprint import MAX_BLUEPRINT_BYTES, Blueprint, BlueprintInvalid, parse_blueprint
from schemas.errors import ChoreoError

app = typer.Typer(
    help="Blueprint contract: validate files, export the schema.", no_args_is_help=True
)

INVALID_EXIT_CODE = 2


@app.command()
def validate(
    path: Annotated[Path, typer.Argument(help="Blueprint JSON file.", show_default=False)],
    storage_root: Annotated[
        Path | None,
        typer.Option(
            "--storage-root",
            help="Local storage root: allows file:// URIs inside it and checks symlinks.",
            envvar="STORAGE_ROOT",
        ),
    ] = None,
    allowed_bucket: Annotated[
        list[str] | None,
        typer.Option("--allowed-bucket", help="Restrict gs:// URIs to this bucket (repeatable)."),
    ] = None,
) -> None:
    """Validate a blueprint: exit 0 with a summary, or 2 with one line per problem."""
    try:
        with path.open("rb") as file:
            # Read one byte past the limit so an oversized file is reported, not loaded whole.
            raw = file.read(MAX_BLUEPRINT_BYTES + 1)
    except OSError as exc:
        typer.echo(f"{path}: cannot read: {exc.strerror or exc}", err=True)
        raise typer.Exit(INVALID_EXIT_CODE) from exc
    buckets = frozenset(allowed_bucket) if allowed_bucket else None
    try:
        blueprint = parse_blueprint(raw, storage_root=storage_root, allowed_buckets=buckets)
    except BlueprintInvalid as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(INVALID_EXIT_CODE) from exc
    typer.echo(f"{path}: valid: {summary(blueprint)}")


@app.command()
def inspect(
    path: Annotated[Path, typer.Argument(help="Blueprint JSON file.", show_default=False)],
    png: Annotated[
        Path | None, typer.Option("--png", help="Draw the timeline to this PNG file.")
    ] = None,
    song: Annotated[
        Path | None, typer.Option("--song", help="The song file, to draw its waveform.")
    ] = None,
    library: Annotated[
        Path | None,
        typer.Option("--library", help="Move bundle folder, for the figures that need keypoints."),
    ] = None,
) -> None:
    """Print a blueprint's moves and quality figures; optionally draw its timeline."""
    # The planner pulls in numpy (and matplotlib for --png) only when this command runs.
    from choreography.planner.inspection import inspect_blueprint  # noqa: PLC0415

    try:
        raw = path.read_bytes()[: MAX_BLUEPRINT_BYTES + 1]
    except OSError as exc:
        typer.echo(f"{path}: cannot read: {exc.strerror or exc}", err=True)
        raise typer.Exit(INVALID_EXIT_CODE) from exc
    try:
        blueprint = parse_blueprint(raw)
    except BlueprintInvalid as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(INVALID_EXIT_CODE) from exc
    typer.echo(f"{path}: {summary(blueprint)}")
    try:
        for line in inspect_blueprint(blueprint, png=png, song=song, library=library):
            typer.echo(line)
    except ChoreoError as exc:
        typer.echo(f"inspect failed: {exc}", err=True)
        raise typer.Exit(INVALID_EXIT_CODE) from exc


@app.command()
def schema() -> None:
    """Print the blueprint's JSON Schema."""
    typer.echo(json.dumps(Blueprint.model_json_schema(), indent=2))


def summary(blueprint: Blueprint) -> str:
    """One line describing a valid blueprint."""
    song, output = blueprint.song, blueprint.video_output
    window = song.window
    return (
        f"task {blueprint.task_id}, {len(blueprint.moves_used)} moves, "
        f"{window.length_s:.2f} s of {song.title!r} ({window.start_s:.2f}-{window.end_s:.2f} s) "
        f"at {song.tempo_bpm:g} BPM, {output.width}x{output.height} {output.fps} fps "
        f"-> {output.uri}"
    )
