"""Embedding store on real PostgreSQL: bytea round trip, combined load, spaces, versions."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from choreography.search.cache import move_index_cache_from_pool
from choreography.search.embedding_store import (
    library_version,
    load_matrix,
    save_embeddings,
    save_many_embeddings,
)
from choreography.search.embeddings import combine_embeddings
from choreography.search.spaces import Embedding, l2_normalise
from lifecycle.database import open_pool
from schemas.errors import InvalidInput, NotFound
from schemas.settings import DatabaseSettings, VectorSearchSettings

pytestmark = pytest.mark.integration

MOVES = [
    ("arm-wave", "hip-hop", "beginner", 0.9),
    ("body-roll", "contemporary", "intermediate", 0.2),
    ("cross-step", "salsa", "advanced", 0.5),
]
DIMS = {"pose": 12, "rhythm": 6, "text": 10}


def insert_moves(conn: psycopg.Connection) -> None:
    """Insert the test moves (metadata only: embeddings do not need keypoints)."""
    for move_id, style, difficulty, energy in MOVES:
        conn.execute(
            "INSERT INTO moves (move_id, name, style, difficulty, energy, counts, clip_uri) "
            "VALUES (%s, %s, %s, %s, %s, 8, %s)",
            (move_id, move_id, style, difficulty, energy, f"moves/{move_id}.mp4"),
        )


def vectors_for(seed: int) -> dict[str, Embedding]:
    rng = np.random.default_rng(seed)
    return {
        kind: Embedding(kind, f"{kind}-test-{dim}", l2_normalise(rng.standard_normal(dim)))
        for kind, dim in DIMS.items()
    }


@pytest.fixture
def conn(database_url: str) -> psycopg.Connection:
    with psycopg.connect(database_url, autocommit=True) as connection:
        insert_moves(connection)
        yield connection


def test_vectors_round_trip_bit_for_bit_with_metadata(conn: psycopg.Connection) -> None:
    """Saved float32 vectors load back exactly, ordered by move id, with filter metadata."""
    saved = {move_id: vectors_for(i) for i, (move_id, *_) in enumerate(MOVES)}
    save_many_embeddings(conn, saved)
    data = load_matrix(conn, "pose")
    assert list(data.ids) == ["arm-wave", "body-roll", "cross-step"]
    assert data.space == "pose-test-12" and data.matrix.dtype == np.float32
    for row, move_id in enumerate(data.ids):
        assert np.array_equal(data.matrix[row], saved[str(move_id)]["pose"].vector)
    assert list(data.styles) == ["hip-hop", "contemporary", "salsa"]
    assert list(data.energies) == ["high", "low", "medium"]
    assert data.library_version == library_version(conn)


def test_combined_load_matches_combining_one_move(conn: psycopg.Connection) -> None:
    """The combined matrix row equals combine_embeddings of that move's three vectors."""
    for i, (move_id, *_) in enumerate(MOVES):
        save_embeddings(conn, move_id, vectors_for(i))
    data = load_matrix(conn, "combined")
    expected = combine_embeddings(vectors_for(1))
    assert data.space == expected.space
    assert np.allclose(data.matrix[1], expected.vector, atol=1e-6)


def test_combined_load_leaves_out_moves_missing_a_kind(conn: psycopg.Connection) -> None:
    """A move without all three kinds is not in the combined matrix (but is in its kinds)."""
    save_embeddings(conn, "arm-wave", vectors_for(0))
    save_embeddings(conn, "body-roll", {"text": vectors_for(1)["text"]})
    assert list(load_matrix(conn, "combined").ids) == ["arm-wave"]
    assert list(load_matrix(conn, "text").ids) == ["arm-wave", "body-roll"]


def test_mixed_spaces_are_refused_naming_both(conn: psycopg.Connection) -> None:
    """Two spaces under one kind cannot make one index: the error names both spaces."""
    save_embeddings(conn, "arm-wave", {"text": vectors_for(0)["text"]})
    other = Embedding("text", "other-space-10", vectors_for(1)["text"].vector)
    save_embeddings(conn, "body-roll", {"text": other})
    with pytest.raises(InvalidInput, match=r"other-space-10.*text-test-10|text-test-10.*other"):
        load_matrix(conn, "text")


def test_saving_bumps_the_library_version(conn: psycopg.Connection) -> None:
    """Saving embeddings moves the library version on, so caches notice."""
    before = library_version(conn)
    save_embeddings(conn, "arm-wave", vectors_for(0))
    assert library_version(conn) > before


def test_unknown_move_and_empty_library_are_not_found(conn: psycopg.Connection) -> None:
    """Embeddings for a missing move, or loading with none stored, raise NotFound."""
    with pytest.raises(NotFound, match="does not exist"):
        save_embeddings(conn, "no-such-move", vectors_for(0))
    with pytest.raises(NotFound, match="no rhythm embeddings"):
        load_matrix(conn, "rhythm")


def test_cache_from_pool_reloads_after_a_library_change(
    conn: psycopg.Connection, database_url: str
) -> None:
    """The pool-backed cache loads on first search and rebuilds after the version moves."""
    save_embeddings(conn, "arm-wave", vectors_for(0))
    settings = VectorSearchSettings(MOVE_LIBRARY_VERSION_CHECK_INTERVAL=0.0)
    pool = open_pool(DatabaseSettings(DATABASE_URL=database_url))
    try:
        cache = move_index_cache_from_pool(pool, "text", settings)
        query = vectors_for(1)["text"]
        assert [h.move_id for h in cache.search(query).hits] == ["arm-wave"]
        save_embeddings(conn, "body-roll", vectors_for(1))
        cache.search(query)
        assert cache.wait_for_refresh(10)
        assert cache.search(query).hits[0].move_id == "body-roll"
    finally:
        pool.close()
