"""Importing moves writes their embeddings in the same transaction, ready for the search index."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from choreography.moves.ingest import import_bundle
from choreography.moves.model import Move
from choreography.search.embedding_store import load_matrix
from choreography.search.embeddings import embed_moves
from choreography.search.spaces import Embedding
from choreography.search.text_embedding import LocalTextEmbedder
from lifecycle.database import connect
from tests.integration.test_move_import import bundle  # noqa: F401 - shared module fixture

pytestmark = pytest.mark.integration


def test_import_with_embedder_makes_the_library_searchable(
    bundle: Path,  # noqa: F811
    database_url: str,
    tmp_path: Path,
) -> None:
    """Every imported move has pose, rhythm and text vectors that load as one combined matrix."""
    embedder = LocalTextEmbedder()
    with connect(database_url) as conn:
        report = import_bundle(
            bundle, conn, tmp_path, embed=lambda m: embed_moves([m], embedder)[0]
        )
        assert report.all_imported
        matrix = load_matrix(conn, "combined")
    assert sorted(matrix.ids) == ["pop-bounce", "pop-touch", "salsa-step"]
    assert matrix.matrix.shape[0] == 3


def test_failing_embedder_skips_the_move_without_a_half_written_row(
    bundle: Path,  # noqa: F811
    database_url: str,
    tmp_path: Path,
) -> None:
    """A move whose embeddings cannot be stored is skipped whole: no move row without vectors."""
    embedder = LocalTextEmbedder()

    def wrong_kind(move: Move) -> Mapping[str, Embedding]:
        vectors = embed_moves([move], embedder)[0]
        if move.move_id == "salsa-step":
            return {"pose": vectors["text"]}  # a text vector filed as pose: refused by the store
        return vectors

    with connect(database_url) as conn:
        report = import_bundle(bundle, conn, tmp_path, embed=wrong_kind)
        skipped = report.with_status("skipped")
        assert [o.move_id for o in skipped] == ["salsa-step"]
        rows = conn.execute("SELECT move_id FROM moves ORDER BY move_id").fetchall()
        vectors = conn.execute("SELECT DISTINCT move_id FROM move_embeddings").fetchall()
    assert [r[0] for r in rows] == ["pop-bounce", "pop-touch"]
    assert sorted(r[0] for r in vectors) == ["pop-bounce", "pop-touch"]
