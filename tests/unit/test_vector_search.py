"""Vector search: FAISS and NumPy agree, filters hold, IVF recall, spaces never mix."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from choreography.search import search as search_module
from choreography.search.exact_search import exact_top_k
from choreography.search.move_matrix import MoveMatrix
from choreography.search.move_search import search_like
from choreography.search.search import MoveFilter, MoveIndex
from choreography.search.spaces import Embedding, l2_normalise_rows
from schemas.errors import InvalidInput, NotFound
from schemas.settings import VectorSearchSettings

SPACE = "test-space-32"
STYLES = ("hip-hop", "pop", "salsa", "house")
DIFFICULTIES = ("beginner", "intermediate", "advanced")
ENERGIES = ("low", "medium", "high")
# FAISS and NumPy both sum float32 products, in different orders.
SCORE_TOLERANCE = 1e-5


def library(n: int, dim: int = 32, seed: int = 0, clusters: int = 0) -> MoveMatrix:
    """A synthetic library: random (or clustered) unit vectors with random metadata."""
    rng = np.random.default_rng(seed)
    if clusters:
        centres = rng.standard_normal((clusters, dim))
        vectors = centres[rng.integers(0, clusters, n)] + 0.35 * rng.standard_normal((n, dim))
    else:
        vectors = rng.standard_normal((n, dim))
    return MoveMatrix(
        kind="text",
        space=SPACE,
        ids=np.array([f"move-{i:06d}" for i in range(n)]),
        styles=rng.choice(STYLES, n),
        difficulties=rng.choice(DIFFICULTIES, n),
        energies=rng.choice(ENERGIES, n),
        matrix=l2_normalise_rows(vectors),
        library_version=7,
    )


def query(vector: np.ndarray, space: str = SPACE) -> Embedding:
    return Embedding("text", space, np.asarray(vector, np.float32))


def hits(result: Any) -> tuple[list[str], np.ndarray]:
    return [h.move_id for h in result.hits], np.array([h.score for h in result.hits])


@pytest.fixture(scope="module")
def data() -> MoveMatrix:
    return library(3000)


@pytest.fixture(scope="module")
def flat(data: MoveMatrix) -> MoveIndex:
    return MoveIndex(data, VectorSearchSettings(FAISS_INDEX_KIND="flat"))


@pytest.fixture(scope="module")
def without_faiss(data: MoveMatrix) -> MoveIndex:
    original = search_module.import_faiss
    search_module.import_faiss = lambda: None  # type: ignore[assignment]
    try:
        return MoveIndex(data, VectorSearchSettings())
    finally:
        search_module.import_faiss = original  # type: ignore[assignment]


def test_faiss_and_numpy_return_the_same_ids_and_scores(
    data: MoveMatrix, flat: MoveIndex, without_faiss: MoveIndex
) -> None:
    """For random queries and for library vectors, FAISS flat and NumPy agree within 1e-5."""
    rng = np.random.default_rng(1)
    queries = [rng.standard_normal(32) for _ in range(10)] + [data.matrix[i] for i in (0, 99)]
    for vector in queries:
        by_faiss, by_numpy = flat.search(query(vector), 20), without_faiss.search(query(vector), 20)
        assert (by_faiss.strategy, by_numpy.strategy) == ("flat", "numpy")
        assert hits(by_faiss)[0] == hits(by_numpy)[0]
        assert np.allclose(hits(by_faiss)[1], hits(by_numpy)[1], atol=SCORE_TOLERANCE)


def test_numpy_path_is_exact(data: MoveMatrix, without_faiss: MoveIndex) -> None:
    """The NumPy strategy returns the true top-k by brute force, best first."""
    vector = np.random.default_rng(2).standard_normal(32).astype(np.float32)
    vector /= np.linalg.norm(vector)
    truth = np.argsort(-(data.matrix @ vector), kind="stable")[:15]
    ids, scores = hits(without_faiss.search(query(vector), 15))
    assert ids == [data.ids[i] for i in truth]
    assert np.all(np.diff(scores) <= 0)


def test_faiss_failure_falls_back_to_numpy(
    data: MoveMatrix, without_faiss: MoveIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the FAISS search raises, the answer comes from NumPy, with the same hits."""
    index = MoveIndex(data, VectorSearchSettings(FAISS_INDEX_KIND="flat"))

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("simulated FAISS failure")

    assert index._built is not None
    monkeypatch.setattr(index._built.index, "search", broken)
    result = index.search(query(data.matrix[5]), 10)
    assert result.strategy == "numpy"
    assert hits(result)[0] == hits(without_faiss.search(query(data.matrix[5]), 10))[0]


filters = st.builds(
    MoveFilter.of,
    st.lists(st.sampled_from(STYLES), max_size=2),
    st.lists(st.sampled_from(DIFFICULTIES), max_size=2),
    st.lists(st.sampled_from(ENERGIES), max_size=2),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(chosen=filters, seed=st.integers(0, 1000), subset_max=st.sampled_from([0, 5000]))
def test_filters_never_return_a_move_outside_the_filter(
    data: MoveMatrix, chosen: MoveFilter, seed: int, subset_max: int
) -> None:
    """Whatever the filter and strategy, every hit matches it and none better is left out."""
    index = MoveIndex(
        data,
        VectorSearchSettings(
            FAISS_INDEX_KIND="flat",
            VECTOR_SEARCH_SUBSET_MAX_MOVES=subset_max,
            VECTOR_SEARCH_SUBSET_MAX_FRACTION=0.0,
        ),
    )
    vector = np.random.default_rng(seed).standard_normal(32)
    result = index.search(query(vector), 10, chosen)
    keep = np.ones(data.size, bool)
    for values, column in (
        (chosen.styles, data.styles),
        (chosen.difficulties, data.difficulties),
        (chosen.energies, data.energies),
    ):
        if values:
            keep &= np.isin(column, list(values))
    for hit in result.hits:
        assert not chosen.styles or hit.style in chosen.styles
        assert not chosen.difficulties or hit.difficulty in chosen.difficulties
        assert not chosen.energies or hit.energy in chosen.energies
    expected_scores, _ = exact_top_k(
        data.matrix[keep], (vector / np.linalg.norm(vector)).astype(np.float32), 10
    )
    assert np.allclose(hits(result)[1], expected_scores, atol=SCORE_TOLERANCE)
    assert result.candidates == int(keep.sum())


def test_strategy_follows_filter_selectivity(data: MoveMatrix) -> None:
    """A narrow filter searches the pre-gathered subset; a broad one goes through FAISS."""
    vector = query(data.matrix[0])
    narrow = MoveFilter.of("pop", "beginner", "low")
    broad = MoveFilter.of(["pop", "salsa", "house"])
    small = MoveIndex(
        data, VectorSearchSettings(FAISS_INDEX_KIND="flat", VECTOR_SEARCH_SUBSET_MAX_MOVES=300)
    )
    assert small.search(vector, 5, narrow).strategy == "filtered-subset"
    assert small.search(vector, 5, broad).strategy == "flat"
    assert small.search(vector, 5).strategy == "flat"


def test_empty_result_when_nothing_matches(flat: MoveIndex, data: MoveMatrix) -> None:
    """A filter matching no move returns no hits and says so, rather than failing."""
    result = flat.search(query(data.matrix[0]), 5, MoveFilter.of(styles="tango"))
    assert result.hits == () and result.strategy == "empty" and result.candidates == 0


def test_query_from_another_space_is_rejected(flat: MoveIndex, data: MoveMatrix) -> None:
    """A query vector from another space fails with both space names in the message."""
    with pytest.raises(InvalidInput, match=r"'other-space-32'.*'test-space-32'"):
        flat.search(query(data.matrix[0], "other-space-32"))


def test_bad_requests_are_rejected(flat: MoveIndex, data: MoveMatrix) -> None:
    """Wrong dimension, k < 1 and unknown levels are errors naming the problem."""
    with pytest.raises(InvalidInput, match="16 dimensions"):
        flat.search(query(np.ones(16)))
    with pytest.raises(InvalidInput, match="top-k"):
        flat.search(query(data.matrix[0]), 0)
    with pytest.raises(InvalidInput, match="unknown difficulty"):
        MoveFilter.of(difficulties="expert")


def test_ivf_recall_against_exact_is_at_least_095() -> None:
    """IVF with nprobe 16 finds >= 95 % of the exact top-20 on a clustered 20k library."""
    data = library(20_000, dim=32, seed=3, clusters=200)
    exact = MoveIndex(data, VectorSearchSettings(FAISS_INDEX_KIND="flat"))
    ivf = MoveIndex(data, VectorSearchSettings(FAISS_INDEX_KIND="ivf", FAISS_NPROBE=16))
    assert ivf.index_kind == "ivf"
    rng = np.random.default_rng(4)
    found = 0
    for row in rng.choice(data.size, 50, replace=False):
        vector = query(data.matrix[row] + 0.1 * rng.standard_normal(32))
        truth = set(hits(exact.search(vector, 20))[0])
        found += len(truth & set(hits(ivf.search(vector, 20))[0]))
    assert found / (50 * 20) >= 0.95


def test_auto_picks_flat_for_small_and_ivf_for_large_libraries() -> None:
    """FAISS_INDEX_KIND=auto builds flat below FAISS_IVF_MIN_MOVES and IVF at or above it."""
    data = library(2000)
    assert MoveIndex(data, VectorSearchSettings(FAISS_IVF_MIN_MOVES=5000)).index_kind == "flat"
    assert MoveIndex(data, VectorSearchSettings(FAISS_IVF_MIN_MOVES=1000)).index_kind == "ivf"


def test_moves_like_leaves_out_the_move_itself(flat: MoveIndex, data: MoveMatrix) -> None:
    """ "Moves like X" returns k other moves, never X, and an unknown X is NotFound."""
    result = search_like(flat, str(data.ids[10]), 5)
    assert len(result.hits) == 5 and str(data.ids[10]) not in hits(result)[0]
    with pytest.raises(NotFound, match="no-such-move"):
        search_like(flat, "no-such-move", 5)
