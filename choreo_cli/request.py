"""`choreo request`: submit a choreography request (song or description) or a revision, or serve
the producer.

``song``, ``describe`` and ``revise`` validate the request, store the queued task and its
event in one transaction, publish it at once unless ``--no-publish`` (the outbox relay would
otherwise), and print the task id. ``serve`` runs the producer HTTP service (``POST /requests``,
``POST /revisions`` and the songs-bucket upload trigger), whose composition root is
:mod:`producers.app` (``python -m producers`` in the image).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer

from schemas.errors import ChoreoError

app = typer.Typer(help="Submit choreography requests, or serve the producer HTTP API.")

EXIT_ERROR = 1

Style = Annotated[str | None, typer.Option(help="Dance style slug, e.g. hip-hop.")]
Difficulty = Annotated[str | None, typer.Option(help="beginner, intermediate or advanced.")]
Energy = Annotated[str | None, typer.Option(help="low, medium or high.")]
Duration = Annotated[float | None, typer.Option(help="Video length in seconds (15-600).")]
TaskId = Annotated[str | None, typer.Option(help="Your own task id (retries are idempotent).")]
NoPublish = Annotated[
    bool, typer.Option("--no-publish", help="Leave publishing to the outbox relay.")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of the bare task id.")]
PracticeList = Annotated[
    str | None,
    typer.Option(
        "--practice",
        help="Practice renditions to render beside the video, comma-separated: mirror, slow "
        "(0.75x and 0.5x), 0.75x, 0.5x, loops, page, or all.",
    ),
]

# --practice words and what each asks for (docs/PRACTICE.md).
PRACTICE_WORDS: dict[str, dict[str, Any]] = {
    "mirror": {"mirror": True},
    "slow": {"slow": [0.75, 0.5]},
    "0.75x": {"slow": [0.75]},
    "0.5x": {"slow": [0.5]},
    "loops": {"loops": True},
    "page": {"page": True},
    "all": {"mirror": True, "slow": [0.75, 0.5], "loops": True, "page": True},
}


@app.command()
def song(
    *,
    song_id: Annotated[str | None, typer.Option(help="A song from the catalogue.")] = None,
    audio_uri: Annotated[str | None, typer.Option(help="gs://... or a storage key.")] = None,
    style: Style = None,
    difficulty: Difficulty = None,
    energy: Energy = None,
    duration: Duration = None,
    practice: PracticeList = None,
    task_id: TaskId = None,
    no_publish: NoPublish = False,
    as_json: AsJson = False,
) -> None:
    """Request a dance for a song (--song-id) or an audio file (--audio-uri)."""
    from producers.requests import song_request_document  # noqa: PLC0415 - keep --help fast

    document = song_request_document(
        song_id=song_id,
        audio_uri=audio_uri,
        constraints=_constraints(style, difficulty, energy, duration, practice),
        task_id=task_id,
        client={"name": "choreo-cli"},
    )
    _submit(document, publish=not no_publish, as_json=as_json)


@app.command()
def describe(
    description: Annotated[str, typer.Argument(help="e.g. 'energetic hip-hop for beginners'.")],
    *,
    song_id: Annotated[str | None, typer.Option(help="Dance to this song.")] = None,
    style: Style = None,
    difficulty: Difficulty = None,
    energy: Energy = None,
    duration: Duration = None,
    practice: PracticeList = None,
    task_id: TaskId = None,
    no_publish: NoPublish = False,
    as_json: AsJson = False,
) -> None:
    """Request a dance from a description; the song is given or picked from the catalogue."""
    from producers.requests import description_request_document  # noqa: PLC0415

    document = description_request_document(
        description,
        song_id=song_id,
        constraints=_constraints(style, difficulty, energy, duration, practice),
        task_id=task_id,
        client={"name": "choreo-cli"},
    )
    _submit(document, publish=not no_publish, as_json=as_json)


@app.command()
def revise(
    parent_task_id: Annotated[str, typer.Argument(help="The planned task to revise.")],
    *,
    redo: Annotated[str, typer.Option(help="Bars to re-plan, e.g. 9-16,25 (1-based).")],
    keep: Annotated[
        str | None, typer.Option(help="Bars whose moves must stay exactly, e.g. 1-8,17-24.")
    ] = None,
    style: Style = None,
    difficulty: Difficulty = None,
    energy: Energy = None,
    allow_repeats: Annotated[
        bool | None,
        typer.Option(
            "--allow-repeats/--no-allow-repeats",
            help="Repeats welcome (keep to the difficulty and energy) or not; default: the "
            "parent's.",
            show_default=False,
        ),
    ] = None,
    task_id: TaskId = None,
    no_publish: NoPublish = False,
    as_json: AsJson = False,
) -> None:
    """Revise a planned task: a new task keeping the --keep bars' moves, re-planning --redo.

    Bars are 1-based bars of the parent's video (4 counts each). Bars in neither list are
    kept unless a redone move covers them; a move cannot be both kept and redone.
    """
    overrides = _constraints(style, difficulty, energy, None) or {}
    if allow_repeats is not None:
        overrides["allow_repeats"] = allow_repeats
    document: dict[str, Any] = {"parent_task_id": parent_task_id, "redo": redo}
    if keep is not None:
        document["keep"] = keep
    if overrides:
        document["constraints"] = overrides
    if task_id is not None:
        document["task_id"] = task_id
    document["client"] = {"name": "choreo-cli"}
    _submit(document, publish=not no_publish, as_json=as_json, revision=True)


@app.command()
def serve() -> None:
    """Serve POST /requests and the songs-bucket upload trigger (HTTP_HOST, PORT)."""
    from producers.app import serve as serve_producer  # noqa: PLC0415 - keep --help fast

    try:
        serve_producer()
    except ChoreoError as exc:
        _fail(str(exc))


def _submit(
    document: dict[str, Any], *, publish: bool, as_json: bool, revision: bool = False
) -> None:
    from producers.requests import RequestRejected, submit_request  # noqa: PLC0415
    from producers.revisions import submit_revision  # noqa: PLC0415
    from schemas.settings import SongSettings  # noqa: PLC0415

    with _pool() as pool, _publisher(publish=publish) as publisher:
        try:
            if revision:
                submitted = submit_revision(pool, document, publisher=publisher)
            else:
                submitted = submit_request(
                    pool,
                    document,
                    publisher=publisher,
                    song_sources=SongSettings().limits().sources,
                )
        except RequestRejected as exc:
            for error in exc.errors:
                typer.echo(f"error: {error.field}: {error.message}", err=True)
            raise typer.Exit(EXIT_ERROR) from None
        except ChoreoError as exc:
            _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(vars(submitted)))
        return
    typer.echo(submitted.task_id)
    if not submitted.created:
        typer.echo("(an identical request with this task id exists; nothing new)", err=True)
    elif publish and not submitted.published:
        typer.echo("(stored; publishing failed, the outbox relay will retry)", err=True)


def _constraints(
    style: str | None,
    difficulty: str | None,
    energy: str | None,
    duration: float | None,
    practice: str | None = None,
) -> dict[str, Any] | None:
    given = {"style": style, "difficulty": difficulty, "energy": energy, "duration_s": duration}
    chosen: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if practice is not None:
        chosen["output"] = {"practice": practice_document(practice)}
    return chosen or None


def practice_document(text: str) -> dict[str, Any]:
    """``--practice mirror,0.75x,page`` as ``constraints.output.practice``; a word outside
    ``PRACTICE_WORDS`` exits 1 naming it."""
    asked: dict[str, Any] = {}
    for word in (part.strip().lower() for part in text.split(",")):
        if word not in PRACTICE_WORDS:
            _fail(
                f"--practice: {word!r} is not a practice rendition (write a comma-separated "
                f"list of {', '.join(PRACTICE_WORDS)})"
            )
        for key, value in PRACTICE_WORDS[word].items():
            speeds = {*asked.get("slow", []), *value} if key == "slow" else None
            asked[key] = sorted(speeds, reverse=True) if speeds else value
    return asked


@contextmanager
def _pool() -> Iterator[Any]:
    from lifecycle.database import open_pool  # noqa: PLC0415
    from schemas.settings import DatabaseSettings  # noqa: PLC0415

    try:
        pool = open_pool(DatabaseSettings(), name="choreo-producer")
    except ChoreoError as exc:
        _fail(str(exc))
    try:
        yield pool
    finally:
        pool.close()


@contextmanager
def _publisher(*, publish: bool) -> Iterator[Any]:
    if not publish:
        yield None
        return
    from producers.pubsub_publisher import build_pubsub_publisher  # noqa: PLC0415
    from schemas.settings import PubSubSettings  # noqa: PLC0415

    publisher = build_pubsub_publisher(PubSubSettings())
    try:
        yield publisher
    finally:
        publisher.close()


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_ERROR)
