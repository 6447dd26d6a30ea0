"""``choreo plan``: analyse a song, search the move library and write a blueprint, no bus.

Heavy imports (numpy, librosa, faiss, psycopg) happen inside the command, so ``choreo --help``
stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from schemas.errors import ChoreoError

ERROR_EXIT_CODE = 2


def plan(
    *,
    song: Annotated[Path, typer.Option("--song", help="Audio file to choreograph.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the blueprint JSON.")],
    describe: Annotated[
        str | None, typer.Option("--describe", help="Describe the dance in words.")
    ] = None,
    style: Annotated[str | None, typer.Option(help="Dance style, e.g. hip-hop.")] = None,
    difficulty: Annotated[str | None, typer.Option(help="beginner|intermediate|advanced.")] = None,
    energy: Annotated[str | None, typer.Option(help="low|medium|high.")] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Video length in seconds (15-600).")
    ] = None,
    allow_repeats: Annotated[
        bool,
        typer.Option(
            "--allow-repeats",
            help="Repeat moves rather than let in moves of other difficulty or energy levels.",
        ),
    ] = False,
    library: Annotated[
        Path | None,
        typer.Option(
            "--library", help="Move bundle folder (manifest.json); default: DATABASE_URL."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for tie-breaking between equal plans.")] = 0,
    task_id: Annotated[str, typer.Option("--task-id", help="Task id in the blueprint.")] = (
        "offline"
    ),
    audio_uri: Annotated[
        str | None,
        typer.Option(
            "--audio-uri",
            help="Song URI for the job; default: store the song as songs/<name>-<hash><ext>.",
        ),
    ] = None,
    storage_root: Annotated[
        Path | None,
        typer.Option(
            "--storage-root", help="Local storage root (default: STORAGE_ROOT).", show_default=False
        ),
    ] = None,
) -> None:
    """Plan a choreography for a song offline and write its blueprint.

    Without ``--audio-uri`` the song is stored (named by its content) and, with ``--library``,
    the clips the blueprint uses too, so ``choreo render`` finds them. The moves are chosen as
    the blueprint consumer chooses them (one planning pipeline, ``BLUEPRINT_CANDIDATE_MOVES``
    per search). With ``GEMINI_API_KEY`` set, Gemini parses ``--describe``; with
    ``GEMINI_REFINE=true`` too, it may refine the planned moves.
    """
    from pydantic import ValidationError  # noqa: PLC0415

    from blobstore.configured import build_storage  # noqa: PLC0415
    from choreography.planner.costs import PlannerSettings  # noqa: PLC0415
    from choreography.planner.gemini import gemini_parser_from_settings  # noqa: PLC0415
    from choreography.planner.gemini_refiner import gemini_refiner_from_settings  # noqa: PLC0415
    from choreography.planner.offline import (  # noqa: PLC0415
        OfflineRequest,
        library_from_database,
        library_from_folder,
        plan_offline,
    )
    from choreography.planner.offline_storage import store_clips, store_song  # noqa: PLC0415
    from choreography.planner.quality import quality_report  # noqa: PLC0415
    from schemas.events import Constraints  # noqa: PLC0415
    from schemas.settings import (  # noqa: PLC0415
        BlueprintConsumerSettings,
        DatabaseSettings,
        GeminiSettings,
        PubSubSettings,
        StorageSettings,
    )

    try:
        constraints = Constraints.model_validate(
            {
                "style": style,
                "difficulty": difficulty,
                "energy": energy,
                "duration_s": duration,
                "allow_repeats": allow_repeats or None,
            }
        )
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            field = ".".join(str(part) for part in error["loc"])
            typer.echo(f"--{field.replace('_s', '')}: {error['msg']}", err=True)
        raise typer.Exit(ERROR_EXIT_CODE) from exc
    try:
        moves = (
            library_from_folder(library)
            if library is not None
            else library_from_database(DatabaseSettings().database_url)
        )
        consumer_settings = BlueprintConsumerSettings()
        request = OfflineRequest(
            song=song,
            description=describe,
            constraints=constraints,
            task_id=task_id,
            audio_uri=audio_uri,
            seed=seed,
            candidate_moves=consumer_settings.candidate_moves,
            planner=PlannerSettings.of(consumer_settings),
        )
        gemini = GeminiSettings()
        blueprint, analysis = plan_offline(
            request,
            moves,
            refiner=gemini_refiner_from_settings(gemini),
            gemini=gemini_parser_from_settings(gemini),
        )
        storage_settings = StorageSettings()
        if storage_root is not None:
            storage_settings = storage_settings.model_copy(
                update={"backend": "local", "local_root": storage_root}
            )
        storage = build_storage(storage_settings, PubSubSettings().project_id)
        stored = []
        if audio_uri is None:
            new = store_song(storage, song, blueprint.song.audio_uri)
            stored.append(
                f"song {'stored' if new else 'already stored'} as {blueprint.song.audio_uri}"
            )
        if moves.clip_files:
            stored.append(f"{store_clips(storage, blueprint, moves.clip_files)} new clip(s)")
    except ChoreoError as exc:
        typer.echo(f"plan failed: {exc}", err=True)
        raise typer.Exit(ERROR_EXIT_CODE) from exc
    out.write_text(blueprint.model_dump_json(indent=2) + "\n", encoding="utf-8")
    window = blueprint.song.window
    typer.echo(
        f"wrote {out}: {len(blueprint.moves_used)} moves over {window.length_s:.1f} s "
        f"({window.start_s:.2f}-{window.end_s:.2f} s) at {analysis.tempo_bpm:.1f} BPM; "
        f"{blueprint.request.constraints.style}, {blueprint.request.constraints.difficulty}, "
        f"{blueprint.request.constraints.energy} energy"
    )
    where = (
        f"under {storage_settings.local_root}"
        if storage_settings.backend == "local"
        else "in the buckets"
    )
    if stored:
        typer.echo(f"{', '.join(stored)} {where}")
    for substitution in blueprint.request.substitutions:
        typer.echo(f"  not as asked: {substitution.line()}")
    report = quality_report(blueprint, moves.all_candidates(), analysis)
    for line in report.lines():
        typer.echo(f"  {line}")
