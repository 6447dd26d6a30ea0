"""``MoveIndexCache``: one search index per process, refreshed in the background.

Loaded lazily by the first search (which waits for it). After that searches never wait: when
the index is older than ``MOVE_EMBEDDINGS_CACHE_TTL``, or when a version check (at most every
``MOVE_LIBRARY_VERSION_CHECK_INTERVAL`` seconds, in the background) sees ``move_library.version``
move, one background thread rebuilds it while searches keep using the old index, and the new
one is swapped in atomically. A failed refresh is logged, the old index kept, and retried after
the check interval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from choreography.search.embedding_store import library_version, load_matrix
from choreography.search.search import MoveFilter, MoveIndex, SearchResult
from choreography.search.spaces import Embedding
from schemas.settings import VectorSearchSettings

log = logging.getLogger(__name__)

# Even with a zero check interval, a failing database is not retried in a tight loop.
_MIN_RETRY_S = 1.0


@dataclass(frozen=True, eq=False)
class _Loaded:
    index: MoveIndex
    loaded_at: float


class MoveIndexCache:
    """Thread-safe lazy cache of one ``MoveIndex`` with TTL and version-change refresh."""

    def __init__(
        self,
        load: Callable[[], MoveIndex],
        probe_version: Callable[[], int],
        *,
        ttl_s: float,
        check_interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load, self._probe = load, probe_version
        self._ttl_s, self._check_interval_s, self._clock = ttl_s, check_interval_s, clock
        self._current: _Loaded | None = None
        self._lock = threading.Lock()
        self._first_load = threading.Lock()
        self._refresh_thread: threading.Thread | None = None
        self._last_check = 0.0
        self._retry_at = 0.0
        self.rebuilds = 0

    def get(self) -> MoveIndex:
        """The current index: loaded now if this is the first call, else never waits."""
        current = self._current
        if current is None:
            return self._load_first()
        now = self._clock()
        if now - current.loaded_at >= self._ttl_s:
            self._start_refresh(now, "ttl expired", check_version=False)
        elif now - self._last_check >= self._check_interval_s:
            self._start_refresh(now, "version check", check_version=True)
        return current.index

    def search(
        self, query: Embedding, k: int | None = None, filters: MoveFilter | None = None
    ) -> SearchResult:
        """Search the current index (see ``MoveIndex.search``)."""
        return self.get().search(query, k, filters)

    def wait_for_refresh(self, timeout_s: float | None = None) -> bool:
        """Wait for a running background refresh; True when none is running afterwards."""
        thread = self._refresh_thread
        if thread is not None:
            thread.join(timeout_s)
            return not thread.is_alive()
        return True

    def _load_first(self) -> MoveIndex:
        with self._first_load:
            if self._current is None:
                index = self._load()
                self._install(index, "first search")
            assert self._current is not None  # noqa: S101 - set just above
            return self._current.index

    def _start_refresh(self, now: float, reason: str, *, check_version: bool) -> None:
        with self._lock:
            running = self._refresh_thread is not None and self._refresh_thread.is_alive()
            if running or now < self._retry_at:
                return
            self._last_check = now
            self._refresh_thread = threading.Thread(
                target=self._refresh,
                args=(reason, check_version),
                name="move-index-refresh",
                daemon=True,
            )
            self._refresh_thread.start()

    def _refresh(self, reason: str, check_version: bool) -> None:
        current = self._current
        try:
            if check_version and current is not None:
                version = self._probe()
                if version == current.index.data.library_version:
                    return
                reason = f"library version {current.index.data.library_version} -> {version}"
            self._install(self._load(), reason)
        except Exception:
            self._retry_at = self._clock() + max(self._check_interval_s, _MIN_RETRY_S)
            log.exception("move index refresh (%s) failed: keeping the current index", reason)

    def _install(self, index: MoveIndex, reason: str) -> None:
        loaded = _Loaded(index, self._clock())
        with self._lock:
            self._current = loaded
            self._last_check = loaded.loaded_at
            self.rebuilds += 1
        log.info(
            "move index loaded",
            extra={
                "reason": reason,
                "moves": index.data.size,
                "kind": index.data.kind,
                "index": index.index_kind,
                "library_version": index.data.library_version,
            },
        )


def move_index_cache_from_pool(
    pool: Any,
    kind: str,
    settings: VectorSearchSettings,
    clock: Callable[[], float] = time.monotonic,
) -> MoveIndexCache:
    """A cache that loads ``kind`` vectors from a psycopg pool (nothing connects until a search)."""

    def load() -> MoveIndex:
        with pool.connection() as conn:
            data = load_matrix(conn, kind)
        return MoveIndex(data, settings)

    def probe() -> int:
        with pool.connection() as conn:
            return library_version(conn)

    return MoveIndexCache(
        load,
        probe,
        ttl_s=settings.cache_ttl_s,
        check_interval_s=settings.version_check_s,
        clock=clock,
    )
