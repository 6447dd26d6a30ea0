"""``choreo moves search``: ranked moves for a text, or moves like a given move.

Heavy imports (numpy, faiss, psycopg) happen inside the command so ``choreo --help`` stays fast.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from schemas.errors import ChoreoError

if TYPE_CHECKING:
    from choreography.search.search import SearchResult

ERROR_EXIT_CODE = 1


def search_command(
    *,
    text: Annotated[str | None, typer.Option("--text", help="Describe the move you want.")] = None,
    like: Annotated[
        str | None, typer.Option("--like", metavar="MOVE_ID", help="Find moves like this one.")
    ] = None,
    style: Annotated[list[str] | None, typer.Option(help="Keep this style (repeatable).")] = None,
    difficulty: Annotated[
        list[str] | None, typer.Option(help="beginner|intermediate|advanced (repeatable).")
    ] = None,
    energy: Annotated[list[str] | None, typer.Option(help="low|medium|high (repeatable).")] = None,
    top_k: Annotated[
        int | None, typer.Option("--top-k", min=1, help="Moves to return [VECTOR_SEARCH_TOP_K].")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Search the move library by text or by similarity to a move, with optional filters."""
    if (text is None) == (like is None):
        typer.echo("give exactly one of --text or --like MOVE_ID", err=True)
        raise typer.Exit(ERROR_EXIT_CODE)
    try:
        result = _run(
            text=text,
            like=like,
            styles=style or [],
            difficulties=difficulty or [],
            energies=energy or [],
            top_k=top_k,
        )
    except ChoreoError as error:
        typer.echo(f"moves search failed: {error}", err=True)
        raise typer.Exit(ERROR_EXIT_CODE) from error
    if json_output:
        typer.echo(json.dumps(_as_json(result), indent=2))
        return
    typer.echo(
        f"{len(result.hits)} moves ({result.strategy} search over {result.candidates} moves, "
        f"space {result.space}, library version {result.library_version})"
    )
    for rank, hit in enumerate(result.hits, start=1):
        typer.echo(
            f"{rank:>3}. {hit.score:7.4f}  {hit.move_id:<32} {hit.style:<13} "
            f"{hit.difficulty:<13} {hit.energy}"
        )


def _run(
    *,
    text: str | None,
    like: str | None,
    styles: list[str],
    difficulties: list[str],
    energies: list[str],
    top_k: int | None,
) -> SearchResult:
    # Imported here: numpy, faiss and psycopg are only needed when the command runs.
    from choreography.search.embedding_store import load_matrix  # noqa: PLC0415
    from choreography.search.move_search import search_by_text, search_like  # noqa: PLC0415
    from choreography.search.search import MoveFilter, MoveIndex  # noqa: PLC0415
    from choreography.search.text_embedding import (  # noqa: PLC0415
        text_embedder_from_settings,
    )
    from lifecycle.database import connect  # noqa: PLC0415
    from schemas.errors import ConfigurationError  # noqa: PLC0415
    from schemas.settings import DatabaseSettings, VectorSearchSettings  # noqa: PLC0415

    database, settings = DatabaseSettings(), VectorSearchSettings()
    if not database.database_url:
        raise ConfigurationError("DATABASE_URL is not set: point it at the move library database")
    filters = MoveFilter.of(styles, difficulties, energies)
    with connect(database.database_url, timeout_s=database.connect_timeout_s) as conn:
        data = load_matrix(conn, "text" if text is not None else "combined")
    index = MoveIndex(data, settings)
    if text is not None:
        embedder = text_embedder_from_settings(settings)
        return search_by_text(index, embedder, text, top_k, filters)
    assert like is not None  # noqa: S101 - checked by the caller
    return search_like(index, like, top_k, filters)


def _as_json(result: SearchResult) -> dict[str, object]:
    from dataclasses import asdict  # noqa: PLC0415 - only for --json

    return asdict(result)
