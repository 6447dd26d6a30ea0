"""The song analysis in a child process, stopped after ``ANALYSIS_TIMEOUT_S``.

A thread cannot be stopped. An analysis that never ends (10 s of white noise found one, fixed in
analysis version 6) would hold its message, and one of the worker's handler slots, until the
process died; each redelivery would take another slot. So the blueprint worker analyses in a
child process: pebble's process pool (one process, spawned once and kept), whose task past its
timeout has its process killed and a fresh one started. The worker's thread gets
``AnalysisTimedOut``, a permanent failure that names the song and the setting, and goes on.

- The analysis's own refusals (``InvalidInput``, ``SongTooLong``, ``UnsupportedMediaFormat``)
  come back as raised in the child (they pickle), so the song store maps them as before.
- A child that dies (the kernel's OOM killer, a crash in a native decoder) is
  ``AnalysisCrashed``: transient, so the message is retried and, failing again, dead-lettered.
- One process analyses one song at a time: messages that miss the song cache queue for it.
- The child imports librosa and analyses the warm-up song when it starts (about 3 s with the
  numba cache the blueprint image fills at build time, ``consumers.blueprint_consumer.warmup``),
  outside any song's time limit.
- A pool whose child died idle is replaced before the next song; one that breaks while a song
  waits or runs is replaced too, and that song is ``AnalysisCrashed``.
- PID 1 (a container's worker) is a parent like any other: the child checks its parent's pid.

``ANALYSIS_TIMEOUT_S=0`` analyses in the worker's own thread, without a limit.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from pebble import ProcessExpired, ProcessFuture, ProcessPool

from choreography.music.model import MusicAnalysis
from schemas.errors import PermanentError, TransientError

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# Pools a song is given to when each breaks before it runs (a child that died idle).
POOL_ATTEMPTS = 2
AnalyseFn = Callable[[str, float], MusicAnalysis]
"""``(path, max_seconds) -> analysis``: a module-level function, so the child can import it."""


class AnalysisTimedOut(PermanentError):
    """The analysis ran past ``ANALYSIS_TIMEOUT_S`` and was stopped."""

    error_code = "analysis-timeout"


class AnalysisCrashed(TransientError):
    """The analysis's process died before it answered (out of memory, a native crash)."""

    error_code = "analysis-crashed"


def analyse_song_file(path: str, max_seconds: float) -> MusicAnalysis:
    """``analyse_file`` with the song limit: what the child runs."""
    from choreography.music.analysis import analyse_file  # noqa: PLC0415 - librosa, in the child

    return analyse_file(path, max_seconds=max_seconds)


def load_analysis(parent_pid: int) -> None:
    """When a child starts: tie its life to its parent's, then load librosa and the analysis and
    run it once on a short song (numba's compiled code loaded), outside any song's time limit."""
    _die_with_parent(parent_pid)
    from consumers.blueprint_consumer.warmup import warmup  # noqa: PLC0415 - librosa, numba

    warmup()


def _die_with_parent(parent_pid: int) -> None:
    """SIGKILL this process when its parent ends (Linux ``PR_SET_PDEATHSIG``).

    A child busy in an analysis that never ends would not notice a killed worker otherwise: it
    reads the pool's pipe only between songs. The signal follows the thread that started the
    child, so children are started on the analyser's own thread (:class:`BoundedAnalyser`) or
    by pebble's pool manager thread, both as long-lived as the pool. Elsewhere than Linux a
    child outlives a killed worker until its analysis ends.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:  # the parent ended before the call: nothing would signal us
        os._exit(1)


class BoundedAnalyser:
    """Analyse a song file in a child process; stop it after ``timeout_s`` seconds."""

    def __init__(
        self, timeout_s: float, max_seconds: float, analyse: AnalyseFn = analyse_song_file
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.timeout_s, self._max_seconds, self._analyse = timeout_s, max_seconds, analyse
        # The thread every pool (and so its first child) is started on: it lives as long as
        # the analyser, so the child's PR_SET_PDEATHSIG fires only when the worker ends, never
        # when a short-lived handler thread (the HTTP entrypoint's) does.
        self._starter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analysis-start")
        self._lock = threading.Lock()
        self._pool = self._started_pool()

    def __call__(self, path: Path) -> MusicAnalysis:
        """The analysis, the child's own refusal re-raised, or ``AnalysisTimedOut`` /
        ``AnalysisCrashed``. A pool that broke before the song ran in it (its child died idle)
        is replaced and the song given to the new one, once."""
        for attempt in range(POOL_ATTEMPTS):
            pool = self._pool
            try:
                future = pool.schedule(
                    self._analyse, args=(str(path), self._max_seconds), timeout=self.timeout_s
                )
            except RuntimeError as exc:  # the pool is broken: the song never ran
                broken: Exception = exc
            else:
                try:
                    return self._result(future, path)
                except BrokenProcessPool as exc:  # broke while the song waited: never ran
                    broken = exc  # (its own process dying while running is ProcessExpired)
            why = str(broken) or "its child ended"
            log.warning("the analysis pool broke (%s); starting a new one", why)
            self._renew(pool)
            if attempt == POOL_ATTEMPTS - 1:
                raise AnalysisCrashed(
                    f"the analysis process for {path.name} could not run ({why}), in "
                    f"{POOL_ATTEMPTS} pools in a row"
                ) from broken
        raise AssertionError("unreachable")  # pragma: no cover

    def _result(self, future: ProcessFuture[MusicAnalysis], path: Path) -> MusicAnalysis:
        try:
            analysis: MusicAnalysis = future.result()
        except TimeoutError as exc:
            if exc.args[:1] != ("Task timeout",):  # raised by the analysis itself, not pebble
                raise
            raise AnalysisTimedOut(
                f"the analysis of {path.name} did not finish within {self.timeout_s:g} s "
                "(ANALYSIS_TIMEOUT_S) and was stopped; a 3-minute song takes well under 2 s, so "
                "this song trips a fault in the analysis"
            ) from exc
        except ProcessExpired as exc:
            raise AnalysisCrashed(
                f"the process analysing {path.name} died (exit code {exc.exitcode}) before it "
                "answered"
            ) from exc
        return analysis

    def close(self) -> None:
        """Stop the child process and the analyser's thread."""
        with self._lock:
            self._pool.stop()  # type: ignore[no-untyped-call]
            self._pool.join()
        self._starter.shutdown()

    def _started_pool(self) -> ProcessPool:
        return self._starter.submit(self._new_pool).result()

    @staticmethod
    def _new_pool() -> ProcessPool:
        # spawn: the worker has threads (Pub/Sub, the lease loop), which fork would copy
        # mid-flight; and the child is the worker's own, so it can die with it.
        pool = ProcessPool(
            max_workers=1,
            context=multiprocessing.get_context("spawn"),
            initializer=load_analysis,
            initargs=(os.getpid(),),
        )
        if not pool.active:  # starts the pool, and its child, on this thread
            raise AnalysisCrashed("the analysis process pool did not start")
        return pool

    def _renew(self, broken: ProcessPool) -> ProcessPool:
        """The pool that replaces a broken one (replaced once, however many handlers found it
        broken)."""
        with self._lock:
            if self._pool is broken:
                broken.stop()  # type: ignore[no-untyped-call]
                self._pool = self._started_pool()
            return self._pool
