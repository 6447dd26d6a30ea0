"""Move embeddings in PostgreSQL (``move_embeddings``): little-endian float32 ``bytea``.

Loading reads one row per move over the binary protocol, joins the raw vector bytes once and
views them as one NumPy float32 buffer: no JSON, no Python object per number. (A server-side
``string_agg`` into one ``bytea`` measured 4x slower than this at 50k moves.) Ids, metadata,
vectors and the library version come from one repeatable-read snapshot, so the version always
describes the data returned.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from choreography.search.embeddings import DEFAULT_WEIGHTS, combine_matrices
from choreography.search.move_matrix import MoveMatrix
from choreography.search.spaces import (
    COMBINED,
    EMBEDDING_KINDS,
    Embedding,
    FloatArray,
)
from schemas.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)

_UPSERT = """
INSERT INTO move_embeddings (move_id, kind, space, dim, vector)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[], %s::bytea[])
ON CONFLICT (move_id, kind) DO UPDATE SET
    space = EXCLUDED.space, dim = EXCLUDED.dim, vector = EXCLUDED.vector
"""
# One row per move, vectors as raw bytes over the binary protocol; moves lacking a kind drop
# out of the inner join (only combined loads join more than one kind).
_ROWS = """
SELECT m.move_id, m.style, m.difficulty, m.energy, {vectors}
FROM moves m {joins}
ORDER BY m.move_id
"""
_SPACES = """
SELECT min(space), max(space), min(dim), max(dim) FROM move_embeddings WHERE kind = %s
"""


def save_embeddings(
    conn: psycopg.Connection[Any], move_id: str, vectors: Mapping[str, Embedding]
) -> None:
    """Insert or replace a move's embeddings in one statement (the library version moves on)."""
    save_many_embeddings(conn, {move_id: vectors})


def save_many_embeddings(
    conn: psycopg.Connection[Any], vectors_by_move: Mapping[str, Mapping[str, Embedding]]
) -> None:
    """Insert or replace embeddings of many moves in one statement."""
    rows: list[tuple[str, str, str, int, bytes]] = []
    for move_id, vectors in vectors_by_move.items():
        for kind, embedding in vectors.items():
            if kind not in EMBEDDING_KINDS or embedding.kind != kind:
                raise InvalidInput(
                    f"move {move_id!r}: embedding stored under {kind!r} is a {embedding.kind!r} "
                    f"vector; kinds are {list(EMBEDDING_KINDS)}"
                )
            data = np.ascontiguousarray(embedding.vector, dtype="<f4").tobytes()
            rows.append((move_id, kind, embedding.space, embedding.dim, data))
    if not rows:
        return
    columns = [list(c) for c in zip(*rows, strict=True)]
    try:
        conn.execute(_UPSERT, columns)
    except psycopg.errors.ForeignKeyViolation as error:
        raise NotFound(
            f"cannot store embeddings: a move does not exist ({error.diag.message_detail})"
        ) from error


def library_version(conn: psycopg.Connection[Any]) -> int:
    """The current ``move_library.version`` (one row; cheap to poll)."""
    row = conn.execute("SELECT version FROM move_library").fetchone()
    if row is None:
        raise NotFound("move_library has no row: is the database migrated?")
    return int(row[0])


def load_matrix(
    conn: psycopg.Connection[Any],
    kind_or_combined: str,
    weights: Mapping[str, float] = DEFAULT_WEIGHTS,
) -> MoveMatrix:
    """Every move's ``pose|rhythm|text`` vector, or its combined vector, with its metadata."""
    if kind_or_combined not in (*EMBEDDING_KINDS, COMBINED):
        raise InvalidInput(
            f"kind {kind_or_combined!r} is not one of {[*EMBEDDING_KINDS, COMBINED]}"
        )
    kinds = EMBEDDING_KINDS if kind_or_combined == COMBINED else (kind_or_combined,)
    outermost = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with conn.transaction(), conn.cursor(binary=True) as cur:
        if outermost:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        spaces: dict[str, str] = {}
        dims: dict[str, int] = {}
        for kind in kinds:
            cur.execute(_SPACES, (kind,))
            spaces[kind], dims[kind] = _space_and_dim(kind, _one(cur))
        cur.execute(_rows_query(kinds), kinds)
        rows = cur.fetchall()
        version = library_version(conn)
    if not rows:
        raise NotFound(f"no {kind_or_combined} embeddings in move_embeddings: embed moves first")
    ids, styles, difficulties, energies, *vectors = zip(*rows, strict=True)
    matrices = {
        kind: _unit_rows(_matrix(column, len(rows), dims[kind]), kind)
        for kind, column in zip(kinds, vectors, strict=True)
    }
    if kind_or_combined == COMBINED:
        _log_incomplete(conn, len(rows))
        matrix, space = combine_matrices(matrices, spaces, weights)
    else:
        matrix, space = matrices[kind_or_combined], spaces[kind_or_combined]
    energy = np.asarray(energies, dtype=np.float64)
    return MoveMatrix(
        kind=kind_or_combined,
        space=space,
        ids=np.asarray(ids, dtype=np.str_),
        styles=np.asarray(styles, dtype=np.str_),
        difficulties=np.asarray(difficulties, dtype=np.str_),
        # The database keeps energy as a number; filters use its level by thirds.
        energies=np.where(energy < 1 / 3, "low", np.where(energy < 2 / 3, "medium", "high")),
        matrix=matrix,
        library_version=version,
    )


def _rows_query(kinds: tuple[str, ...]) -> sql.Composed:
    aliases = [sql.Identifier(f"e_{kind}") for kind in kinds]
    vectors = sql.SQL(", ").join(sql.SQL("{}.vector").format(a) for a in aliases)
    joins = sql.SQL(" ").join(
        sql.SQL("JOIN move_embeddings {a} ON {a}.move_id = m.move_id AND {a}.kind = %s").format(a=a)
        for a in aliases
    )
    return sql.SQL(_ROWS).format(vectors=vectors, joins=joins)


def _one(cur: psycopg.Cursor[Any]) -> tuple[Any, ...]:
    row = cur.fetchone()
    if row is None:  # aggregates always return a row; this guards the type
        raise NotFound("aggregate query returned no row")
    return tuple(row)


def _space_and_dim(kind: str, row: tuple[Any, ...]) -> tuple[str, int]:
    low_space, high_space, low_dim, high_dim = row
    if low_space != high_space:
        raise InvalidInput(
            f"{kind} embeddings mix spaces {low_space!r} and {high_space!r}: re-embed the library "
            "so one index holds one space"
        )
    if low_dim != high_dim:
        raise InvalidInput(f"{kind} embeddings in {low_space!r} mix dims {low_dim} and {high_dim}")
    return str(low_space or ""), int(low_dim or 0)


def _matrix(vectors: tuple[bytes, ...], rows: int, dim: int) -> FloatArray:
    # Raw bytes copied row by row into one preallocated float32 buffer: one copy, no
    # per-number Python objects (stored vectors are little-endian, as x86 and ARM are).
    matrix = np.empty((rows, dim), dtype="<f4")
    target, step = memoryview(matrix.data).cast("B"), 4 * dim
    for row, vector in enumerate(vectors):
        target[row * step : (row + 1) * step] = vector
    return matrix.astype(np.float32, copy=False)


def _unit_rows(matrix: FloatArray, kind: str) -> FloatArray:
    # Our writers store unit vectors, so the buffer is used as is (no copy); only rows a foreign
    # writer left off unit length are rescaled.
    # einsum stays in float32 and is several times faster than linalg.norm on 100k rows.
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise InvalidInput(f"{kind} embeddings contain zero or non-finite vectors")
    off = np.abs(norms - 1.0) > 1e-4
    if off.any():
        matrix = matrix.copy()
        matrix[off] /= norms[off, None]
    return matrix


def _log_incomplete(conn: psycopg.Connection[Any], complete: int) -> None:
    row = conn.execute("SELECT count(DISTINCT move_id) FROM move_embeddings").fetchone()
    missing = int(row[0]) - complete if row else 0
    if missing:
        log.warning(
            "%d moves lack one of %s embeddings and are left out of combined search",
            missing,
            list(EMBEDDING_KINDS),
        )
