"""librosa's beat tracker, on the analysis path, is saved to and loaded from numba's disk cache.

librosa 0.11.0 declares ``__beat_local_score`` with ``cache=False``; without
``choreography.music.librosa_beat`` it compiles in every process and never reaches the cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# The analysis's own entry to librosa's beat tracker, on a click every 43 frames (~120 BPM).
TRACK_BEATS = """
import numpy as np
from choreography.music.beats import track_beats
onsets = (np.arange(2000) % 43 == 0).astype(float)
print(len(track_beats(onsets, onsets, onsets, np.ones(2000), sr=22050, hop=512)[0]))
"""


def _track_beats(cache_dir: Path) -> str:
    env = os.environ | {
        "NUMBA_CACHE_DIR": str(cache_dir),
        "NUMBA_DEBUG_CACHE": "1",  # numba prints each cache index/data load and save
        "NUMBA_OPT": "0",  # unoptimised machine code: the first compile takes 2/3 of the time
    }
    done = subprocess.run(
        [sys.executable, "-c", TRACK_BEATS],
        check=True, capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )  # fmt: skip
    return done.stdout


def test_beat_local_score_is_saved_then_loaded_by_the_next_process(tmp_path: Path) -> None:
    """A first process writes __beat_local_score to NUMBA_CACHE_DIR; a second one loads it."""
    first = _track_beats(tmp_path)
    saved = sorted(p.name for p in tmp_path.rglob("*__beat_local_score*.nbi"))
    assert saved, f"no cache index for __beat_local_score in {tmp_path}:\n{first[-2000:]}"

    second = _track_beats(tmp_path)
    lines = [line for line in second.splitlines() if "__beat_local_score" in line]
    assert any(line.startswith("[cache] data loaded") for line in lines), second[-2000:]
    assert not any(line.startswith("[cache] data saved") for line in lines), lines
