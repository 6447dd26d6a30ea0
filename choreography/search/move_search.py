"""The two searches users ask for: moves matching a text, and moves like a given move."""

from __future__ import annotations

from dataclasses import replace

from choreography.search.search import MoveFilter, MoveIndex, SearchResult
from choreography.search.spaces import Embedding
from choreography.search.text_embedding import TextEmbedder
from schemas.errors import InvalidInput, NotFound


def search_by_text(
    index: MoveIndex,
    embedder: TextEmbedder,
    text: str,
    k: int | None = None,
    filters: MoveFilter | None = None,
) -> SearchResult:
    """Moves whose text embedding is closest to ``text`` (``index`` must hold text vectors)."""
    if not text.strip():
        raise InvalidInput("search text is empty")
    vector = embedder.embed([text], query=True)[0]
    return index.search(Embedding("text", embedder.space, vector), k, filters)


def search_like(
    index: MoveIndex, move_id: str, k: int | None = None, filters: MoveFilter | None = None
) -> SearchResult:
    """Moves closest to ``move_id``'s own vector, the move itself left out."""
    row = index.data.row_of(move_id)
    if row is None:
        raise NotFound(
            f"move {move_id!r} has no {index.data.kind} embedding (unknown or not embedded)"
        )
    query = Embedding(index.data.kind, index.data.space, index.data.matrix[row])
    wanted = index.default_k if k is None else k
    # One more than wanted, since the move itself is usually the best match.
    result = index.search(query, wanted + 1, filters)
    hits = tuple(h for h in result.hits if h.move_id != move_id)[:wanted]
    return replace(result, hits=hits)
