"""One demo run: prepare (database, library, song), start the pipeline, submit, follow, collect.

The CLI (:mod:`choreo_cli.demo.command`) turns the reports this module gives into rich output; this
module holds the order of things and nothing about the terminal.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from choreo_cli.demo.assets import (
    DEMO_SONG,
    SALSA,
    SALSA_SONG,
    DemoLibrary,
    Prepared,
    ensure_demo_song,
    ensure_in_catalogue,
    ensure_library,
    libraries_for,
    stage_song_file,
)
from choreo_cli.demo.environment import (
    DemoPaths,
    apply_environment,
    check_ffmpeg,
    demo_database,
    job_environment,
)
from choreo_cli.demo.pipeline import EmbeddedPipeline
from choreo_cli.demo.progress import DemoOutputs, TaskSnapshot, follow_task, write_outputs
from choreography.planner import offline_storage
from producers.requests import description_request_document, song_request_document
from schemas.settings import CoreSettings, DatabaseSettings, DemoSettings, PubSubSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoRequest:
    """What the user asked for: a song file, a description, or neither (the demo song)."""

    song: Path | None = None
    describe: str | None = None
    style: str | None = None
    difficulty: str | None = None
    log_level: str = "WARNING"


@dataclass
class DemoReport:
    """What happened, for the CLI to print."""

    task_id: str = ""
    database: str = ""
    bus: str = ""
    prepared: list[Prepared] = field(default_factory=list)
    libraries: tuple[DemoLibrary, ...] = ()
    final: TaskSnapshot | None = None
    outputs: DemoOutputs | None = None
    seconds: float = 0.0


def choose_bus(settings: DemoSettings, pubsub: PubSubSettings) -> str:
    """``inprocess`` or ``pubsub``: the emulator (or a project) only when configured."""
    if settings.bus != "auto":
        return settings.bus
    return "pubsub" if pubsub.emulator_host else "inprocess"


def run_demo(
    request: DemoRequest,
    *,
    say: Callable[[str], None],
    on_change: Callable[[TaskSnapshot], None],
) -> DemoReport:
    """Run the whole pipeline once for ``request``; the report (``final.state`` says how)."""
    started = time.monotonic()
    check_ffmpeg()
    if request.song is not None:
        offline_storage.song_key(request.song)  # a bad --song fails before anything starts
    settings, core = DemoSettings(), CoreSettings()
    paths = DemoPaths.under(core.data_dir)
    report = DemoReport(bus=choose_bus(settings, PubSubSettings()))
    with demo_database(paths, DatabaseSettings().database_url) as (database_url, described):
        report.database = described
        say(f"database: {described}")
        apply_environment(job_environment(paths, database_url, request.log_level))
        report.libraries = libraries_for(request.style, request.describe)
        for library in report.libraries:
            prepared = ensure_library(
                paths, database_url, say, library, settings.video_width_height
            )
            report.prepared.append(prepared)
            say(report.prepared[-1].detail)
        song_key = _song_key(paths, request, settings, report, say)
        document = _document(paths, database_url, request, song_key, say)
        say(f"message bus: {report.bus}")
        with EmbeddedPipeline(report.bus) as pipeline:
            submitted = pipeline.submit(document)
            report.task_id = submitted.task_id
            say(f"task {submitted.task_id} submitted")
            report.final = follow_task(
                database_url, submitted.task_id, on_change, timeout_s=settings.timeout_s
            )
        if report.final.state == "completed" and report.final.video_uri:
            report.outputs = write_outputs(
                paths, database_url, report.task_id, report.final.video_uri
            )
    report.seconds = time.monotonic() - started
    return report


def _song_key(
    paths: DemoPaths,
    request: DemoRequest,
    settings: DemoSettings,
    report: DemoReport,
    say: Callable[[str], None],
) -> str:
    """The storage key of the song: the ``--song`` file, else the demo song."""
    if request.song is not None:
        key = stage_song_file(paths, request.song)
        say(f"song: {request.song} (stored as {key})")
        return key
    song = SALSA_SONG if SALSA in report.libraries else DEMO_SONG
    key, prepared = ensure_demo_song(paths, settings.song_seconds, say, song)
    report.prepared.append(prepared)
    say(prepared.detail)
    return key


def _document(
    paths: DemoPaths,
    database_url: str,
    request: DemoRequest,
    song_key: str,
    say: Callable[[str], None],
) -> dict[str, object]:
    width, height = DemoSettings().video_width_height
    constraints: dict[str, object] = {
        name: value
        for name, value in (("style", request.style), ("difficulty", request.difficulty))
        if value is not None
    }
    constraints["output"] = {"width": width, "height": height, "fps": 30}
    if request.describe is None:
        return song_request_document(audio_uri=song_key, constraints=constraints)
    # Path 2 picks from the analysed catalogue: make sure this song is in it. A --song is
    # the user's choice; otherwise the consumer chooses (the demo song is at least there).
    say("analysing the song into the catalogue (cached by content)")
    song_id = ensure_in_catalogue(paths, database_url, song_key)
    return description_request_document(
        request.describe,
        song_id=song_id if request.song is not None else None,
        constraints=constraints,
    )
