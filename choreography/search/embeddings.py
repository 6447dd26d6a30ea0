"""Per-move embeddings (pose, rhythm, text) and the combined vector used for "moves like this".

The combined vector concatenates the three unit vectors, each multiplied by the square root of
its weight (weights sum to 1). It is therefore unit length itself, and the cosine of two
combined vectors is exactly the weighted mean of their pose, rhythm and text cosines. Its space
names the three spaces and the weights, so a change to any of them is a different space.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from choreography.moves.model import Move
from choreography.search.pose_embedding import embed_pose
from choreography.search.rhythm_embedding import embed_rhythm
from choreography.search.spaces import (
    COMBINED,
    EMBEDDING_KINDS,
    Embedding,
    FloatArray,
    require_same_space,
)
from choreography.search.text_embedding import TextEmbedder
from schemas.errors import InvalidInput

# Text says what a move is; pose how it looks; rhythm how it sits on the beat.
DEFAULT_WEIGHTS: Mapping[str, float] = {"pose": 0.4, "rhythm": 0.2, "text": 0.4}


def move_text(move: Move) -> str:
    """The text a move's text embedding is computed from: name, style, tags, description."""
    parts = [move.name, f"{move.style} {move.difficulty} {move.energy} energy"]
    if move.tags:
        parts.append(", ".join(move.tags))
    if move.description:
        parts.append(move.description)
    return ". ".join(parts)


def embed_moves(moves: Sequence[Move], text_embedder: TextEmbedder) -> list[dict[str, Embedding]]:
    """Pose, rhythm and text embeddings for each move (texts embedded in one batch)."""
    if not moves:
        return []
    texts = text_embedder.embed([move_text(m) for m in moves])
    out = []
    for move, text_vector in zip(moves, texts, strict=True):
        out.append(
            {
                "pose": embed_pose(move.keypoints, move.fps),
                "rhythm": embed_rhythm(move.keypoints, move.fps, move.tempo_bpm),
                "text": Embedding("text", text_embedder.space, text_vector),
            }
        )
    return out


def combined_space(spaces: Mapping[str, str], weights: Mapping[str, float]) -> str:
    """Name of the combined space for these per-kind spaces and weights."""
    _check_weights(weights)
    parts = "+".join(f"{spaces[k]}*{weights[k]:.2f}" for k in EMBEDDING_KINDS)
    return f"{COMBINED}-v1[{parts}]"


def combine_embeddings(
    embeddings: Mapping[str, Embedding], weights: Mapping[str, float] = DEFAULT_WEIGHTS
) -> Embedding:
    """One move's combined vector from its three embeddings (see the module docstring)."""
    missing = [k for k in EMBEDDING_KINDS if k not in embeddings]
    if missing:
        raise InvalidInput(f"combined vector needs {list(EMBEDDING_KINDS)}; missing {missing}")
    matrices = {k: embeddings[k].vector.reshape(1, -1) for k in EMBEDDING_KINDS}
    spaces = {k: embeddings[k].space for k in EMBEDDING_KINDS}
    matrix, space = combine_matrices(matrices, spaces, weights)
    return Embedding(COMBINED, space, matrix[0])


def combine_matrices(
    matrices: Mapping[str, FloatArray],
    spaces: Mapping[str, str],
    weights: Mapping[str, float] = DEFAULT_WEIGHTS,
) -> tuple[FloatArray, str]:
    """Row-wise combined vectors of aligned per-kind matrices, and the combined space."""
    _check_weights(weights)
    rows = {m.shape[0] for m in matrices.values()}
    if len(rows) != 1:
        raise InvalidInput(f"per-kind matrices must have the same rows, got {sorted(rows)}")
    blocks = [np.sqrt(weights[k]) * np.asarray(matrices[k], np.float32) for k in EMBEDDING_KINDS]
    combined = np.ascontiguousarray(np.concatenate(blocks, axis=1), dtype=np.float32)
    return combined, combined_space(spaces, weights)


def check_space(embedding: Embedding, expected: str) -> None:
    """Raise ``InvalidInput`` naming both spaces when the embedding is not in ``expected``."""
    require_same_space(expected, embedding.space, f"{embedding.kind} vector")


def _check_weights(weights: Mapping[str, float]) -> None:
    if set(weights) != set(EMBEDDING_KINDS):
        raise InvalidInput(
            f"weights must name exactly {list(EMBEDDING_KINDS)}, got {list(weights)}"
        )
    if any(w < 0 for w in weights.values()) or not np.isclose(sum(weights.values()), 1.0):
        raise InvalidInput(f"weights must be non-negative and sum to 1, got {dict(weights)}")
