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
- The child imports librosa when it starts (about 2 s), outside any song's time limit; numba
  loads its compiled functions from the cache the blueprint image fills at build time
  (``consumers.blueprint_consumer.warmup``) on the first song.

``ANALYSIS_TIMEOUT_S=0`` analyses in the worker's own thread, without a limit.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from pebble import ProcessExpired, ProcessPool

from choreography.music.model import MusicAnalysis
from schemas.errors import PermanentError, TransientError

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
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


def load_analysis() -> None:
    """When a child starts: tie its life to its parent's, then import librosa and the analysis
    (outside any song's time limit)."""
    _die_with_parent()
    import librosa  # noqa: F401, PLC0415

    import choreography.music.analysis  # noqa: F401, PLC0415


def _die_with_parent() -> None:
    """SIGKILL this process when its parent ends (Linux ``PR_SET_PDEATHSIG``).

    A child busy in an analysis that never ends would not notice a killed worker otherwise: it
    reads the pool's pipe only between songs. Elsewhere than Linux it outlives a killed worker
    until its analysis ends.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() == 1:  # the parent ended before the call: nothing would signal us
        os._exit(1)


class BoundedAnalyser:
    """Analyse a song file in a child process; stop it after ``timeout_s`` seconds."""

    def __init__(
        self, timeout_s: float, max_seconds: float, analyse: AnalyseFn = analyse_song_file
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.timeout_s, self._max_seconds, self._analyse = timeout_s, max_seconds, analyse
        # spawn: the worker has threads (Pub/Sub, the lease loop), which fork would copy
        # mid-flight; and the child is the worker's own, so it can die with it.
        self._pool = ProcessPool(
            max_workers=1, context=multiprocessing.get_context("spawn"), initializer=load_analysis
        )

    def __call__(self, path: Path) -> MusicAnalysis:
        """The analysis, the child's own refusal re-raised, or ``AnalysisTimedOut`` /
        ``AnalysisCrashed``."""
        future = self._pool.schedule(
            self._analyse, args=(str(path), self._max_seconds), timeout=self.timeout_s
        )
        try:
            analysis: MusicAnalysis = future.result()
        except TimeoutError as exc:
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
        """Stop the child process (the pool's daemonic child also ends with this process)."""
        self._pool.stop()  # type: ignore[no-untyped-call]
        self._pool.join()
