"""MoveIndexCache: lazy load, TTL, version-change refresh, searches during a rebuild."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from choreography.search.cache import MoveIndexCache
from choreography.search.move_matrix import MoveMatrix
from choreography.search.search import MoveIndex
from choreography.search.spaces import Embedding, l2_normalise_rows
from schemas.errors import TransientError
from schemas.settings import VectorSearchSettings

SPACE = "cache-test-8"


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeLibrary:
    """Stands in for PostgreSQL: a version number and loads that can be held or made to fail."""

    def __init__(self) -> None:
        self.version = 1
        self.loads = 0
        self.probes = 0
        self.concurrent_loads = 0
        self.max_concurrent_loads = 0
        self.hold = threading.Event()
        self.hold.set()
        self.fail = False
        self._lock = threading.Lock()

    def load(self) -> MoveIndex:
        with self._lock:
            self.loads += 1
            self.concurrent_loads += 1
            self.max_concurrent_loads = max(self.max_concurrent_loads, self.concurrent_loads)
            version = self.version
        try:
            assert self.hold.wait(10)
            if self.fail:
                raise TransientError("database down")
            rng = np.random.default_rng(version)
            data = MoveMatrix(
                kind="text",
                space=SPACE,
                ids=np.array([f"v{version}-m{i}" for i in range(50)]),
                styles=np.array(["pop"] * 50),
                difficulties=np.array(["beginner"] * 50),
                energies=np.array(["low"] * 50),
                matrix=l2_normalise_rows(rng.standard_normal((50, 8))),
                library_version=version,
            )
            return MoveIndex(data, VectorSearchSettings(FAISS_INDEX_KIND="flat"))
        finally:
            with self._lock:
                self.concurrent_loads -= 1

    def probe(self) -> int:
        self.probes += 1
        return self.version


def make_cache(library: FakeLibrary, clock: FakeClock) -> MoveIndexCache:
    return MoveIndexCache(
        library.load, library.probe, ttl_s=3600.0, check_interval_s=30.0, clock=clock
    )


QUERY = Embedding("text", SPACE, np.ones(8, np.float32))


def test_nothing_loads_before_the_first_search() -> None:
    """Building the cache loads nothing; the first search loads once, later ones reuse it."""
    library, clock = FakeLibrary(), FakeClock()
    cache = make_cache(library, clock)
    assert library.loads == 0
    cache.search(QUERY, 3)
    cache.search(QUERY, 3)
    assert library.loads == 1 and library.probes == 0


def test_ttl_expiry_rebuilds_in_the_background() -> None:
    """After the TTL the next search triggers one rebuild and later searches see the new index."""
    library, clock = FakeLibrary(), FakeClock()
    cache = make_cache(library, clock)
    assert cache.search(QUERY).library_version == 1
    clock.now += 3599.0
    cache.search(QUERY)
    assert cache.wait_for_refresh(5) and library.loads == 1
    library.version = 2
    clock.now += 2.0
    assert cache.search(QUERY).library_version == 1  # the stale index answers meanwhile
    assert cache.wait_for_refresh(5)
    assert library.loads == 2 and cache.search(QUERY).library_version == 2


def test_version_change_invalidates_early_and_is_checked_at_most_every_interval() -> None:
    """A library version change is noticed at the next check (not before) and reloads."""
    library, clock = FakeLibrary(), FakeClock()
    cache = make_cache(library, clock)
    cache.search(QUERY)
    library.version = 5
    clock.now += 10.0
    cache.search(QUERY)
    assert cache.wait_for_refresh(5) and library.probes == 0 and library.loads == 1
    clock.now += 25.0
    cache.search(QUERY)
    assert cache.wait_for_refresh(5) and library.probes == 1 and library.loads == 2
    assert cache.search(QUERY).library_version == 5


def test_unchanged_version_does_not_rebuild() -> None:
    """A version check that finds the same version leaves the index alone."""
    library, clock = FakeLibrary(), FakeClock()
    cache = make_cache(library, clock)
    cache.search(QUERY)
    for _ in range(3):
        clock.now += 31.0
        cache.search(QUERY)
        assert cache.wait_for_refresh(5)
    assert library.probes == 3 and library.loads == 1


def test_concurrent_searches_during_a_rebuild_use_the_old_index_until_the_swap() -> None:
    """Many threads search while a rebuild is held: no errors, old results, one rebuild."""
    library, clock = FakeLibrary(), FakeClock()
    cache = make_cache(library, clock)
    cache.search(QUERY)
    library.version = 2
    library.hold.clear()
    clock.now += 3600.0

    def search(_: int) -> int:
        return cache.search(QUERY, 5).library_version

    with ThreadPoolExecutor(max_workers=8) as pool:
        during = list(pool.map(search, range(400)))
    assert set(during) == {1}
    library.hold.set()
    assert cache.wait_for_refresh(5)
    assert cache.search(QUERY).library_version == 2
    assert library.loads == 2 and library.max_concurrent_loads == 1


def test_failed_refresh_keeps_the_old_index_and_retries_later() -> None:
    """A rebuild that fails leaves the old index serving, and is retried after the interval."""
    library, clock = FakeLibrary(), FakeClock()
    cache = make_cache(library, clock)
    cache.search(QUERY)
    library.version, library.fail = 2, True
    clock.now += 3600.0
    cache.search(QUERY)
    assert cache.wait_for_refresh(5)
    assert cache.search(QUERY).library_version == 1 and library.loads == 2
    library.fail = False
    clock.now += 31.0
    cache.search(QUERY)
    assert cache.wait_for_refresh(5)
    assert cache.search(QUERY).library_version == 2


def test_first_load_failure_reaches_the_caller() -> None:
    """When the very first load fails there is no index to serve, so the search raises."""
    library, clock = FakeLibrary(), FakeClock()
    library.fail = True
    with pytest.raises(TransientError, match="database down"):
        make_cache(library, clock).search(QUERY)
