"""`choreo render`: render a blueprint file locally with the job's code (no database, no bus)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(help="Render a blueprint into a video locally.", no_args_is_help=True)


@app.command()
def render(
    blueprint_path: Annotated[
        Path, typer.Argument(metavar="BLUEPRINT", help="Blueprint JSON file.", show_default=False)
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the MP4.")] = Path(
        "video.mp4"
    ),
    storage_root: Annotated[
        Path | None,
        typer.Option(
            "--storage-root", help="Local storage root (default: STORAGE_ROOT).", show_default=False
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Replace OUT (and its renditions and sync report) if they exist."
        ),
    ] = False,
    practice: Annotated[
        bool,
        typer.Option(
            "--practice",
            help="Also render every practice rendition beside OUT: mirrored, 0.75x and 0.5x, "
            "section and 8-count loops, and the practice page (OUT with .html).",
        ),
    ] = False,
) -> None:
    """Render BLUEPRINT to OUT with a progress bar; exit codes as in job/README.md."""
    # The job's modules (psycopg, google clients) load only when this command runs.
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeElapsedColumn  # noqa: PLC0415

    from blobstore.configured import build_storage, storage_rules  # noqa: PLC0415
    from job.blueprint_source import read_blueprint_text, validate_blueprint  # noqa: PLC0415
    from job.errors import AssetUnavailable, JobFailure, SyncOutOfTolerance  # noqa: PLC0415
    from job.main import render_options, work_directory  # noqa: PLC0415
    from job.renditions import (  # noqa: PLC0415
        ALL_PRACTICE,
        rendition_uri,
        with_practice,
    )
    from job.run import SYNC_SUFFIX, JobContext, render_with_practice  # noqa: PLC0415
    from job.task_status import NoTaskStatus  # noqa: PLC0415
    from schemas.settings import JobSettings, PubSubSettings, StorageSettings  # noqa: PLC0415

    settings, pubsub = JobSettings(), PubSubSettings()
    storage_settings = StorageSettings()
    if storage_root is not None:
        storage_settings = storage_settings.model_copy(
            update={"backend": "local", "local_root": storage_root}
        )
    try:
        raw = read_blueprint_text("", str(blueprint_path.resolve()), None)
        root, buckets = storage_rules(storage_settings)
        blueprint = validate_blueprint(raw, storage_root=root, allowed_buckets=buckets)
        if practice:
            blueprint = with_practice(blueprint, ALL_PRACTICE)
        if not overwrite:
            _refuse_existing(blueprint, out)
        storage = build_storage(storage_settings, pubsub.project_id)
        with (
            work_directory(settings.work_dir) as work_dir,
            Progress(
                "[progress.description]{task.description}", BarColumn(), TaskProgressColumn(),
                TimeElapsedColumn(), transient=False,
            ) as bar,
        ):  # fmt: skip
            task = bar.add_task(f"rendering {blueprint.task_id}", total=100)
            context = JobContext(
                storage=storage,
                status=NoTaskStatus(),
                publisher=None,
                render=render_options(settings, work_dir),
                download_workers=settings.download_workers,
                storage_retries=settings.storage_retries,
            )
            steps = _StepLines(bar, task)
            try:
                rendered = render_with_practice(
                    blueprint,
                    context,
                    work_dir / "video.mp4",
                    lambda percent: bar.update(task, completed=percent),
                    video_name=out.name,
                    on_step=steps.start,
                )
            except SyncOutOfTolerance as failure:
                _keep_missed(failure, out)
                raise
            steps.finish()
            result = rendered.assembled
            _move_outputs(out, result.path, rendered.sync_file, rendered.renditions)
    except JobFailure as failure:
        hint = (
            _missing_asset_hint(storage_settings) if isinstance(failure, AssetUnavailable) else ""
        )
        typer.echo(f"error ({failure.error_code}): {failure}{hint}", err=True)
        raise typer.Exit(failure.exit_code) from failure
    cached = f"{result.pieces_cached}/{result.pieces} pieces cached"
    typer.echo(f"{out}: {result.duration_s:.2f} s, {result.frames} frames, {cached}")
    for item in rendered.renditions:
        what = item.label or (f"{item.speed:g}x" if item.speed else item.kind)
        typer.echo(f"  {item.kind}: {out.parent / rendition_uri(out.name, item.suffix)} ({what})")
    typer.echo(f"sync report: {out.parent / rendition_uri(out.name, SYNC_SUFFIX)}")
    for line in rendered.sync.lines():
        typer.echo(f"  {line}")


def _move_outputs(out: Path, video: Path, report: Path, renditions: Sequence[Any] = ()) -> None:
    """The video to ``out``, its renditions and sync report beside it, under their names."""
    from job.renditions import rendition_uri  # noqa: PLC0415
    from job.run import SYNC_SUFFIX  # noqa: PLC0415

    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(video, out)
    for item in renditions:
        shutil.move(item.path, out.parent / rendition_uri(out.name, item.suffix))
    shutil.move(report, out.parent / rendition_uri(out.name, SYNC_SUFFIX))


def _refuse_existing(blueprint: Any, out: Path) -> None:
    """Exit 2 naming OUT and the renditions and report beside it that already exist."""
    from job.renditions import rendition_suffixes, rendition_uri  # noqa: PLC0415
    from job.run import SYNC_SUFFIX  # noqa: PLC0415
    from schemas.job_exit import ExitCode  # noqa: PLC0415

    asked = blueprint.video_output.practice
    suffixes = rendition_suffixes(blueprint, asked) if asked is not None else []
    suffixes.append(SYNC_SUFFIX)
    targets = [out, *(out.parent / rendition_uri(out.name, suffix) for suffix in suffixes)]
    existing = [str(target) for target in targets if target.exists()]
    if existing:
        shown = ", ".join(existing[:3]) + (
            f" and {len(existing) - 3} more" if len(existing) > 3 else ""
        )
        typer.echo(
            f"{shown} exist{'s' if len(existing) == 1 else ''}; pass --overwrite to replace",
            err=True,
        )
        raise typer.Exit(ExitCode.INVALID_BLUEPRINT)


def _keep_missed(failure: Any, out: Path) -> None:
    """A render that missed its sync tolerances: keep the video and its report at their usual
    names, for a look (the job uploads neither)."""
    if failure.video is None or failure.report is None:
        return
    _move_outputs(out, failure.video, failure.report)
    typer.echo(f"kept for inspection: {out} and its sync report beside it", err=True)


class _StepLines:
    """After the main render, one progress line per later step (sync report, each rendition),
    with its elapsed time; starting one completes the line before it."""

    def __init__(self, bar: Any, main: Any) -> None:
        self.bar = bar
        self.current = main

    def start(self, what: str) -> None:
        self.finish()
        self.current = self.bar.add_task(what, total=None)

    def finish(self) -> None:
        self.bar.update(self.current, total=1, completed=1)


def _missing_asset_hint(settings: Any) -> str:
    """What to do when a song or clip is not in storage (``choreo plan`` stores them)."""
    where = f"storage root {settings.local_root}" if settings.backend == "local" else "the buckets"
    return (
        f" (looked in {where}: `choreo plan --song FILE` stores the song and a --library's "
        f"clips there, `choreo moves import DIR` a library's clips; or pass --storage-root)"
    )
