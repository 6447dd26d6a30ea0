"""Filtered cosine top-k over one loaded ``MoveMatrix``: the strategy is picked per query.

- ``empty``: the filter matches no move.
- ``filtered-subset``: the filter keeps at most ``VECTOR_SEARCH_SUBSET_MAX_MOVES`` moves or
  ``VECTOR_SEARCH_SUBSET_MAX_FRACTION`` of the library: exact search over those rows, gathered
  once per filter and cached (a few hundred microseconds even at 100k moves; always exact).
- ``flat`` / ``ivf`` / ``hnsw``: the FAISS index, with the filter applied inside the search by an
  ID selector (a bitmap over row positions).
- ``numpy``: exact search when FAISS is unavailable or raised (logged); same ids and scores as
  ``flat`` within 1e-5.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from choreography.moves.model import DIFFICULTIES, ENERGIES
from choreography.search.exact_search import IntArray, exact_top_k
from choreography.search.index import (
    BuiltIndex,
    bitmap_selector,
    build_index,
    import_faiss,
    plan_index,
    search_params,
)
from choreography.search.move_matrix import MoveMatrix
from choreography.search.spaces import (
    Embedding,
    FloatArray,
    l2_normalise,
    require_same_space,
)
from schemas.errors import InvalidInput
from schemas.settings import VectorSearchSettings

log = logging.getLogger(__name__)

_SELECTION_CACHE_SIZE = 16


@dataclass(frozen=True)
class MoveFilter:
    """Keep moves whose style, difficulty and energy are among the given ones (empty: any)."""

    styles: frozenset[str] = frozenset()
    difficulties: frozenset[str] = frozenset()
    energies: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        styles: Collection[str] | str | None = None,
        difficulties: Collection[str] | str | None = None,
        energies: Collection[str] | str | None = None,
    ) -> MoveFilter:
        """Build a filter from single values or collections, checking the known levels."""
        built = cls(_as_set(styles), _as_set(difficulties), _as_set(energies))
        for name, values, allowed in (
            ("difficulty", built.difficulties, DIFFICULTIES),
            ("energy", built.energies, ENERGIES),
        ):
            unknown = sorted(values - set(allowed))
            if unknown:
                raise InvalidInput(f"unknown {name} {unknown}; one of {list(allowed)}")
        return built

    @property
    def is_empty(self) -> bool:
        """True when the filter keeps every move."""
        return not (self.styles or self.difficulties or self.energies)


@dataclass(frozen=True)
class SearchHit:
    """One ranked move: its id, cosine score and filter metadata."""

    move_id: str
    score: float
    style: str
    difficulty: str
    energy: str


@dataclass(frozen=True)
class SearchResult:
    """Ranked hits and how they were found."""

    hits: tuple[SearchHit, ...]
    strategy: str
    space: str
    library_version: int
    candidates: int  # moves the filter kept (the whole library without a filter)


@dataclass(eq=False)
class _Selection:
    positions: IntArray
    mask: np.ndarray
    subset: FloatArray | None = None
    selector: Any = None
    bitmap: np.ndarray | None = field(default=None, repr=False)


class MoveIndex:
    """A searchable, immutable index over one ``MoveMatrix``; safe to share between threads."""

    def __init__(self, data: MoveMatrix, settings: VectorSearchSettings) -> None:
        self.data = data
        self._settings = settings
        self._faiss = import_faiss() if data.size else None
        self._built: BuiltIndex | None = None
        if self._faiss is not None:
            self._built = build_index(self._faiss, data.matrix, plan_index(data.size, settings))
        self._selections: OrderedDict[MoveFilter, _Selection] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def default_k(self) -> int:
        """How many hits a search returns when ``k`` is not given (``VECTOR_SEARCH_TOP_K``)."""
        return self._settings.top_k

    @property
    def index_kind(self) -> str:
        """The FAISS index kind built (``flat|ivf|hnsw``), or ``numpy`` without FAISS."""
        return self._built.plan.kind if self._built else "numpy"

    def search(
        self, query: Embedding, k: int | None = None, filters: MoveFilter | None = None
    ) -> SearchResult:
        """Top-``k`` moves by cosine to ``query`` among those the filter keeps."""
        require_same_space(self.data.space, query.space)
        if query.dim != self.data.dim:
            raise InvalidInput(f"query has {query.dim} dimensions, the index {self.data.dim}")
        k = self._settings.top_k if k is None else k
        if k < 1:
            raise InvalidInput(f"k (top-k) must be at least 1, got {k}")
        vector = l2_normalise(query.vector, "query vector")
        filters = filters or MoveFilter()
        selection = None if filters.is_empty else self._selection(filters)
        candidates = self.data.size if selection is None else int(selection.positions.size)
        if candidates == 0:
            return self._result((), (), "empty", 0)
        if selection is not None and selection.subset is not None:
            scores, rows = exact_top_k(selection.subset, vector, k)
            return self._result(scores, selection.positions[rows], "filtered-subset", candidates)
        if self._built is not None:
            try:
                scores, positions = self._faiss_search(vector, k, selection)
                return self._result(scores, positions, self.index_kind, candidates)
            except Exception:
                log.exception("FAISS search failed: answering with exact NumPy search")
        return self._numpy_search(vector, k, selection, candidates)

    def _faiss_search(
        self, vector: FloatArray, k: int, selection: _Selection | None
    ) -> tuple[FloatArray, IntArray]:
        assert self._built is not None and self._faiss is not None  # noqa: S101 - caller checked
        selector = selection.selector if selection is not None else None
        params = search_params(self._faiss, self._built.plan, selector)
        scores, positions = self._built.index.search(
            vector.reshape(1, -1), min(k, self.data.size), params=params
        )
        found = positions[0] >= 0  # FAISS pads with -1 when fewer than k pass the filter
        return scores[0][found], positions[0][found].astype(np.int64)

    def _numpy_search(
        self, vector: FloatArray, k: int, selection: _Selection | None, candidates: int
    ) -> SearchResult:
        if selection is None:
            scores, positions = exact_top_k(self.data.matrix, vector, k)
            return self._result(scores, positions, "numpy", candidates)
        scores, rows = exact_top_k(self.data.matrix[selection.positions], vector, k)
        return self._result(scores, selection.positions[rows], "numpy", candidates)

    def _selection(self, filters: MoveFilter) -> _Selection:
        with self._lock:
            cached = self._selections.get(filters)
            if cached is not None:
                self._selections.move_to_end(filters)
                return cached
        mask = np.ones(self.data.size, dtype=bool)
        for values, column in (
            (filters.styles, self.data.styles),
            (filters.difficulties, self.data.difficulties),
            (filters.energies, self.data.energies),
        ):
            if values:
                mask &= np.isin(column, sorted(values))
        selection = _Selection(positions=np.flatnonzero(mask).astype(np.int64), mask=mask)
        count = selection.positions.size
        small = count <= self._settings.subset_max_moves
        if (
            small
            or count <= self._settings.subset_max_fraction * self.data.size
            or (
                self._built is not None and self._built.on_gpu  # GPU indexes take no ID selectors
            )
        ):
            selection.subset = np.ascontiguousarray(self.data.matrix[selection.positions])
        elif self._faiss is not None:
            selection.selector, selection.bitmap = bitmap_selector(self._faiss, mask)
        with self._lock:
            self._selections[filters] = selection
            while len(self._selections) > _SELECTION_CACHE_SIZE:
                self._selections.popitem(last=False)
        return selection

    def _result(self, scores: Any, positions: Any, strategy: str, candidates: int) -> SearchResult:
        data = self.data
        hits = tuple(
            SearchHit(
                move_id=str(data.ids[p]),
                score=float(s),
                style=str(data.styles[p]),
                difficulty=str(data.difficulties[p]),
                energy=str(data.energies[p]),
            )
            for s, p in zip(scores, positions, strict=True)
        )
        log.debug("vector search", extra={"strategy": strategy, "hits": len(hits)})
        return SearchResult(hits, strategy, data.space, data.library_version, candidates)


def _as_set(values: Collection[str] | str | None) -> frozenset[str]:
    if values is None:
        return frozenset()
    if isinstance(values, str):
        return frozenset([values])
    return frozenset(values)
