"""Exact cosine top-k in NumPy: the filtered-subset strategy and the fallback without FAISS."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from choreography.search.spaces import FloatArray

IntArray = npt.NDArray[np.int64]


def exact_top_k(matrix: FloatArray, query: FloatArray, k: int) -> tuple[FloatArray, IntArray]:
    """Scores and row positions of the ``k`` rows with the highest inner product, best first."""
    rows = matrix.shape[0]
    if rows == 0 or k <= 0:
        return np.empty(0, np.float32), np.empty(0, np.int64)
    scores = matrix @ query
    candidates = np.argpartition(-scores, k - 1)[:k] if k < rows else np.arange(rows)
    # Highest score first; equal scores by row, so the order is deterministic.
    order = np.lexsort((candidates, -scores[candidates]))
    best = candidates[order].astype(np.int64)
    return scores[best].astype(np.float32), best
