"""FAISS index construction: which index for which library size, built over unit vectors.

All indexes use the inner-product metric over L2-normalised rows, so scores are cosines. FAISS
is imported lazily: without it (or when it fails) search falls back to exact NumPy.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from choreography.search.spaces import FloatArray
from schemas.errors import ConfigurationError
from schemas.settings import VectorSearchSettings

log = logging.getLogger(__name__)

# k-means on at most this many points per list: enough for stable centroids, bounded build time.
_TRAIN_POINTS_PER_LIST = 64
# FAISS wants at least ~39 training points per list; below that IVF is pointless anyway.
_MIN_POINTS_PER_LIST = 39
_TRAIN_SEED = 1234


@dataclass(frozen=True)
class IndexPlan:
    """Which FAISS index to build and how to search it."""

    kind: str  # flat | ivf | hnsw
    nlist: int = 0
    nprobe: int = 1
    hnsw_m: int = 32
    ef_search: int = 128
    use_gpu: bool = False


@dataclass(frozen=True, eq=False)
class BuiltIndex:
    """A FAISS index over the matrix rows (ids are row positions) and how it was built."""

    index: Any
    plan: IndexPlan
    on_gpu: bool


def import_faiss() -> ModuleType | None:
    """The ``faiss`` module, or ``None`` (logged) when it cannot be imported."""
    try:
        import faiss  # noqa: PLC0415 - optional and heavy: imported when an index is built
    except ImportError as error:
        log.warning("faiss is not importable (%s): vector search uses exact NumPy", error)
        return None
    return faiss


def plan_index(moves: int, settings: VectorSearchSettings) -> IndexPlan:
    """The index for a library of ``moves`` vectors under ``FAISS_INDEX_KIND`` and friends."""
    kind = settings.index_kind
    if kind == "auto":
        kind = "ivf" if moves >= settings.ivf_min_moves else "flat"
    nlist = settings.ivf_nlist or max(1, round(math.sqrt(moves)))
    if kind == "ivf" and moves < nlist * _MIN_POINTS_PER_LIST:
        if settings.index_kind == "ivf":
            log.warning(
                "FAISS_INDEX_KIND=ivf with %d moves is too few for %d lists: using flat",
                moves,
                nlist,
            )
        kind = "flat"
    return IndexPlan(
        kind=kind,
        nlist=nlist if kind == "ivf" else 0,
        nprobe=min(settings.nprobe, nlist),
        hnsw_m=settings.hnsw_m,
        ef_search=settings.hnsw_ef_search,
        use_gpu=settings.use_gpu,
    )


def build_index(faiss: ModuleType, matrix: FloatArray, plan: IndexPlan) -> BuiltIndex:
    """Build the planned index over ``matrix`` (unit rows, float32, C-contiguous)."""
    dim = matrix.shape[1]
    index: Any
    if plan.kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif plan.kind == "ivf":
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, plan.nlist, faiss.METRIC_INNER_PRODUCT)
        # Spherical k-means: centroids stay unit length, matching the cosine metric.
        index.cp.spherical = True
        index.cp.seed = _TRAIN_SEED
        index.train(_training_sample(matrix, plan.nlist))
        index.nprobe = plan.nprobe
    elif plan.kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, plan.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = plan.ef_search
    else:
        raise ConfigurationError(f"FAISS_INDEX_KIND {plan.kind!r} is not flat, ivf or hnsw")
    index.add(matrix)
    on_gpu = False
    if plan.use_gpu:
        index, on_gpu = _to_gpu(faiss, index)
    return BuiltIndex(index=index, plan=plan, on_gpu=on_gpu)


def search_params(faiss: ModuleType, plan: IndexPlan, selector: Any | None) -> Any | None:
    """FAISS per-query parameters: the ID selector (filter) and nprobe / efSearch."""
    if plan.kind == "ivf":
        return faiss.SearchParametersIVF(sel=selector, nprobe=plan.nprobe)
    if plan.kind == "hnsw":
        return faiss.SearchParametersHNSW(sel=selector, efSearch=plan.ef_search)
    return faiss.SearchParameters(sel=selector) if selector is not None else None


def bitmap_selector(faiss: ModuleType, mask: np.ndarray) -> tuple[Any, np.ndarray]:
    """An ``IDSelectorBitmap`` over row positions, and the bitmap it reads (keep both alive)."""
    bitmap = np.packbits(mask.astype(bool), bitorder="little")
    return faiss.IDSelectorBitmap(mask.shape[0], faiss.swig_ptr(bitmap)), bitmap


def _training_sample(matrix: FloatArray, nlist: int) -> FloatArray:
    rows = matrix.shape[0]
    wanted = nlist * _TRAIN_POINTS_PER_LIST
    if rows <= wanted:
        return matrix
    picks = np.random.default_rng(_TRAIN_SEED).choice(rows, size=wanted, replace=False)
    return np.ascontiguousarray(matrix[np.sort(picks)])


def _to_gpu(faiss: ModuleType, index: Any) -> tuple[Any, bool]:
    gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if gpus <= 0:
        log.warning("FAISS_USE_GPU is set but this FAISS build sees no GPU: index stays on CPU")
        return index, False
    log.info("moving the FAISS index to %d GPU(s)", gpus)
    return faiss.index_cpu_to_all_gpus(index), True
