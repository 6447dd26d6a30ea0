"""`choreo moves` commands: build move bundles (procedural demo, BVH capture) and import them.

Add a command with ``@app.command()`` below; heavy imports (numpy, psycopg) stay inside the
commands so ``choreo --help`` stays fast. Exit status 1 means something was skipped or failed.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer

from schemas.errors import ChoreoError
from schemas.settings import DatabaseSettings, StorageSettings

if TYPE_CHECKING:
    from choreography.moves.bundle import MoveDraft
    from choreography.moves.ingest import ImportReport
    from choreography.moves.video_import_run import VideoImport

app = typer.Typer(help="The move library: demo moves, imports of BVH, bundles and clips.",
                  no_args_is_help=True)  # fmt: skip
log = logging.getLogger(__name__)
T = TypeVar("T")


@app.callback()
def _configure_logging() -> None:
    """The move library: build demo moves, import BVH captures, bundles and clips."""
    from schemas.logs import configure_logging  # noqa: PLC0415 - see module doc
    from schemas.settings import CoreSettings  # noqa: PLC0415

    core = CoreSettings()
    configure_logging(core.log_level, json_lines=core.log_json)


@app.command("import")
def import_moves(
    path: Annotated[Path, typer.Argument(help="A bundle folder with manifest.json, or a manifest")],
) -> None:
    """Import the moves a manifest lists; re-importing a move id updates it."""
    report = _import(path)
    raise typer.Exit(0 if report.all_imported else 1)


@app.command("import-bvh")
def import_bvh(
    file: Annotated[Path, typer.Argument(help="A BVH motion-capture file (read in place)")],
    *,
    bpm: Annotated[float, typer.Option(help="Tempo the capture was danced at (beats/minute)")],
    split_counts: Annotated[int, typer.Option(help="Counts (beats) per move")] = 8,
    style: Annotated[str, typer.Option(help="Style of the resulting moves")] = "salsa",
    difficulty: Annotated[
        str, typer.Option(help="beginner|intermediate|advanced")
    ] = "intermediate",
    energy: Annotated[str, typer.Option(help="low|medium|high")] = "medium",
    start: Annotated[float, typer.Option(help="Seconds to skip (e.g. a shaky start)")] = 0.0,
    fps: Annotated[float | None, typer.Option(help="Override the frame-rate check")] = None,
    scale: Annotated[float, typer.Option(help="Multiply positions (unit fix)")] = 1.0,
    id_prefix: Annotated[
        str | None, typer.Option(help="Move id prefix (default: file name)")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Keep the bundle here (default: temporary)")
    ] = None,
    bundle_only: Annotated[bool, typer.Option(help="Write the bundle; do not import it")] = False,
) -> None:
    """Cut a BVH capture into moves of whole counts, render their clips and import them."""
    from choreography.moves.bvh_import import BvhSplitOptions, drafts_from_bvh  # noqa: PLC0415

    options = BvhSplitOptions(bpm, split_counts, style, difficulty, energy, start, fps, scale,
                              id_prefix)  # fmt: skip
    try:
        finding, drafts = drafts_from_bvh(file, options)
    except (ChoreoError, ValueError) as error:
        _fail(str(error))
    typer.echo(
        f"{file}: header {finding.header_fps:g} fps, using {finding.fps:g} fps ({finding.reason})"
    )
    typer.echo(f"{len(drafts)} moves of {split_counts} counts at {bpm:g} BPM")
    _render_and_import(drafts, out, bundle_only=bundle_only)


@app.command("import-salsa")
def import_salsa(
    corpus: Annotated[
        Path | None,
        typer.Argument(help="Folder of CMU 60_NN/61_NN_scaled.bvh takes (default CMU_SALSA_DIR)"),
    ] = None,
    *,
    trials: Annotated[
        str | None, typer.Option(help="Comma-separated trials, e.g. 03,07 (default: all)")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Keep the bundle here (default: temporary)")
    ] = None,
    bundle_only: Annotated[bool, typer.Option(help="Write the bundle; do not import it")] = False,
) -> None:
    """Cut the CMU partner-salsa takes into checked 8-count moves, render and import them."""
    from choreography.moves.salsa import salsa_drafts, trial_list  # noqa: PLC0415
    from schemas.settings import DemoSettings  # noqa: PLC0415

    settings = DemoSettings()
    folder = corpus or settings.salsa_corpus
    chosen = trials if trials is not None else settings.salsa_trials
    try:
        drafts, report = salsa_drafts(folder, trials=trial_list(chosen))
    except (ChoreoError, ValueError) as error:
        _fail(str(error))
    for line in report.lines():
        typer.echo(line)
    if not drafts:
        _fail(f"{folder}: no window passed the checks; nothing to import")
    _render_and_import(drafts, out, bundle_only=bundle_only)


def _render_and_import(drafts: list[MoveDraft], out: Path | None, *, bundle_only: bool) -> None:
    """Render ``drafts`` into a bundle (``out``, else a temporary folder) and import it; exit 1
    when a move was skipped."""
    from choreography.moves.bundle import write_bundle  # noqa: PLC0415 - see module doc

    with tempfile.TemporaryDirectory(prefix="choreo-moves-") as scratch:
        target = out or Path(scratch)
        try:
            manifest = _with_progress(lambda step: write_bundle(target, drafts, on_rendered=step),
                                      len(drafts), "rendering")  # fmt: skip
        except (ChoreoError, ValueError) as error:
            _fail(str(error))
        typer.echo(f"wrote {manifest}")
        if bundle_only:
            return
        report = _import(manifest)
    raise typer.Exit(0 if report.all_imported else 1)


@app.command("import-video")
def import_video(
    paths: Annotated[list[Path], typer.Argument(help="Dance clips, or folders of clips")],
    *,
    manifest: Annotated[
        Path | None, typer.Option(help="CSV or JSON: per clip name, style, difficulty, ...")
    ] = None,
    style: Annotated[str | None, typer.Option(help="Style of every clip (default hip-hop)")] = None,
    difficulty: Annotated[
        str | None, typer.Option(help="beginner|intermediate|advanced (default: suggested)")
    ] = None,
    energy: Annotated[
        str | None, typer.Option(help="low|medium|high (default: from the motion)")
    ] = None,
    bpm: Annotated[
        float | None, typer.Option(help="Tempo (default: the clip's music, else its motion)")
    ] = None,
    counts: Annotated[
        int | None, typer.Option(help="Counts per move (default: whole 8-counts that fit)")
    ] = None,
    on_multiple: Annotated[
        str, typer.Option(help="Several people in the picture: warn (track one) or refuse")
    ] = "warn",
) -> None:
    """Turn dance clips into moves: pose extraction, estimates, a normalised clip, the import.

    A manifest row beats the command line, which beats the estimates. The same file again is
    reported unchanged. Exit status 1 when any clip failed; the others are imported.
    """
    from choreography.moves.video_import_run import VideoImport  # noqa: PLC0415 - module doc
    from schemas.settings import IngestSettings  # noqa: PLC0415

    if on_multiple not in ("warn", "refuse"):
        _fail(f"--on-multiple: {on_multiple!r} is not one of warn, refuse")
    database, storage = _settings()
    try:
        run = VideoImport.from_settings(
            IngestSettings(), paths, manifest=manifest, storage_root=storage.local_root,
            given={"style": style, "difficulty": difficulty, "energy": energy, "bpm": bpm,
                   "counts": counts},
            on_multiple=on_multiple,
        )  # fmt: skip
    except ChoreoError as error:
        _fail(str(error))
    lines = _run_video_import(run, database)
    for line in lines:
        typer.echo(line)
    statuses = [line.split(maxsplit=1)[0] for line in lines]
    kinds = ("imported", "updated", "unchanged", "failed")
    typer.echo(f"{len(lines)} clips: " + ", ".join(f"{statuses.count(k)} {k}" for k in kinds))
    raise typer.Exit(1 if "failed" in statuses else 0)


def _run_video_import(run: VideoImport, database: DatabaseSettings) -> list[str]:
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: PLC0415

    from choreography.search.embeddings import embed_moves  # noqa: PLC0415
    from choreography.search.text_embedding import text_embedder_from_settings  # noqa: PLC0415
    from lifecycle.database import connect  # noqa: PLC0415
    from schemas.settings import VectorSearchSettings  # noqa: PLC0415

    text_embedder = text_embedder_from_settings(VectorSearchSettings())
    console = Console(stderr=True, highlight=False)
    columns = (TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.completed}/{task.total} frames"), TimeElapsedColumn())  # fmt: skip
    try:
        with (
            connect(database.database_url, timeout_s=database.connect_timeout_s) as conn,
            Progress(
                *columns, console=console, transient=True, disable=not console.is_terminal
            ) as progress,  # fmt: skip
        ):
            bar = progress.add_task("starting", total=None)

            def on_clip(number: int, clip: Path) -> None:
                progress.update(bar, description=f"{number}/{len(run.clips)} {clip.name}",
                                completed=0, total=None)  # fmt: skip

            def on_frames(done: int, total: int) -> None:
                progress.update(bar, completed=done, total=total or None)

            return run.execute(
                conn, embed=lambda m: embed_moves([m], text_embedder)[0],
                on_clip=on_clip, on_frames=on_frames,
            )  # fmt: skip
    except ChoreoError as error:
        _fail(str(error))


@app.command("demo-library")
def demo_library(
    out: Annotated[Path, typer.Argument(help="Folder to write clips, keypoints and manifest to")],
    *,
    seed: Annotated[int, typer.Option(help="Seed for the procedural variations")] = 7,
    workers: Annotated[int, typer.Option(help="Clips rendered in parallel")] = 2,
    size: Annotated[
        str, typer.Option(help="Clip size WIDTHxHEIGHT: the size the videos will be made at")
    ] = "1280x720",
) -> None:
    """Write the procedural demo library (48 moves, rendered clips) as an importable bundle."""
    from choreography.moves.bundle import write_bundle  # noqa: PLC0415 - see module doc
    from choreography.moves.demo_library import demo_drafts  # noqa: PLC0415
    from choreography.moves.render import ClipFormat  # noqa: PLC0415

    found = re.fullmatch(r"(\d+)x(\d+)", size)
    if found is None:
        _fail(f"--size must be WIDTHxHEIGHT, e.g. 1280x720, got {size!r}")
    try:
        clip_format = ClipFormat(int(found[1]), int(found[2]))
    except ValueError as error:
        _fail(f"--size: {error}")
    drafts = demo_drafts(seed)
    total = len(drafts)
    try:
        manifest = _with_progress(
            lambda step: write_bundle(
                out, drafts, workers=workers, on_rendered=step, clip_format=clip_format
            ),
            total, "rendering",
        )  # fmt: skip
    except ChoreoError as error:
        _fail(str(error))
    typer.echo(f"wrote {total} moves to {manifest}; import with `choreo moves import {out}`")


def _import(path: Path) -> ImportReport:
    from choreography.moves.ingest import import_bundle  # noqa: PLC0415 - see module doc
    from choreography.search.embeddings import embed_moves  # noqa: PLC0415
    from choreography.search.text_embedding import text_embedder_from_settings  # noqa: PLC0415
    from lifecycle.database import connect  # noqa: PLC0415
    from schemas.settings import VectorSearchSettings  # noqa: PLC0415

    database, storage = _settings()
    text_embedder = text_embedder_from_settings(VectorSearchSettings())
    try:
        with connect(database.database_url, timeout_s=database.connect_timeout_s) as conn:
            report = import_bundle(
                path, conn, storage.local_root, embed=lambda m: embed_moves([m], text_embedder)[0]
            )
    except ChoreoError as error:
        _fail(str(error))
    _print_report(report)
    return report


def _print_report(report: ImportReport) -> None:
    for outcome in report.outcomes:
        detail = f": {outcome.detail}" if outcome.status == "skipped" else ""
        typer.echo(f"{outcome.status:<8} {outcome.entry}{detail}")
    counts = {s: len(report.with_status(s)) for s in ("imported", "updated", "skipped")}
    typer.echo(f"{report.manifest}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))


def _with_progress(work: Callable[[Callable[[object], None]], T], total: int, label: str) -> T:
    from rich.progress import Progress  # noqa: PLC0415 - see module doc

    with Progress(transient=True) as progress:
        task = progress.add_task(label, total=total)
        return work(lambda _done: progress.advance(task))


def _settings() -> tuple[DatabaseSettings, StorageSettings]:
    database, storage = DatabaseSettings(), StorageSettings()  # invalid: see choreo_cli.errors
    if not database.database_url:
        _fail("DATABASE_URL is not set: point it at PostgreSQL, e.g. "
              "postgresql://choreo:choreo@127.0.0.1:5432/choreo")  # fmt: skip
    if storage.backend != "local":
        _fail(f"STORAGE_BACKEND={storage.backend}: moves import copies clips to a local "
              "STORAGE_ROOT only")  # fmt: skip
    return database, storage


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)
