"""Compile librosa's numba functions into ``NUMBA_CACHE_DIR`` ahead of the first song.

``python -m consumers.blueprint_consumer.warmup`` (the blueprint image runs it at build time) or
``choreo warmup``. librosa's jitted functions use ``cache=True``, so numba writes their machine
code to ``NUMBA_CACHE_DIR`` (numba's own variable) and later processes load it instead of
compiling; the one declared ``cache=False`` (``__beat_local_score``) is cached too, by
``choreography.music.librosa_beat``. Running the real analysis on a short generated song compiles
exactly what ``analyse_file`` uses: numba compiles per argument type, not per content, so any song
of the same sample rate and length class takes the same paths. Run it once, before any other
process uses the cache: numba issue #10128 (concurrent first writes of a gufunc's cache files can
crash a reader).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SAMPLE_RATE = 22_050
TEMPO_BPM = 120.0
# Verse and chorus material (other chords, a busier beat), so section detection runs as it does
# on a real song: 16 bars of 4/4, 32 s.
SECTIONS = (("verse", 4), ("chorus", 4), ("verse", 4), ("chorus", 4))
CHORDS = {"verse": (220.0, 277.2, 329.6), "chorus": (196.0, 246.9, 293.7)}


def warmup_song() -> np.ndarray:
    """A small drum, bass and chord song in float32 (deterministic)."""
    beat = 60.0 / TEMPO_BPM
    bars = sum(count for _, count in SECTIONS)
    y = np.zeros(int(bars * 4 * beat * SAMPLE_RATE) + SAMPLE_RATE, dtype=np.float32)
    t = np.arange(int(beat * SAMPLE_RATE)) / SAMPLE_RATE
    kick = (np.sin(2 * np.pi * 60 * t) * np.exp(-t * 18)).astype(np.float32)
    noise = np.random.default_rng(7).standard_normal(t.size).astype(np.float32)
    hat = noise * np.exp(-t * 90).astype(np.float32) * 0.3
    bar = 0
    for name, count in SECTIONS:
        for _ in range(count * 4):
            start = int(bar * beat * SAMPLE_RATE)
            y[start : start + kick.size] += kick if name == "chorus" or bar % 2 == 0 else kick / 2
            off = start + int(beat * SAMPLE_RATE / 2)
            y[off : off + hat.size] += hat[: y.size - off]
            tone = np.sum([np.sin(2 * np.pi * f * t) for f in CHORDS[name]], axis=0) * 0.08
            y[start : start + t.size] += tone.astype(np.float32)
            bar += 1
    return np.clip(y, -1.0, 1.0)


def warmup() -> str:
    """Analyse the warm-up song once; the line to print."""
    import soundfile  # noqa: PLC0415 - comes with librosa

    from choreography.music.analysis import analyse_file  # noqa: PLC0415 - librosa, numba

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "warmup.wav"
        soundfile.write(path, warmup_song(), SAMPLE_RATE, subtype="PCM_16")
        analysis = analyse_file(path)
    cache = os.environ.get("NUMBA_CACHE_DIR") or "numba's default (next to each module)"
    return (
        f"warm: analysed {analysis.duration_s:.0f} s at {analysis.tempo_bpm:.1f} BPM in "
        f"{time.perf_counter() - started:.1f} s; numba cache: {cache}"
    )


if __name__ == "__main__":
    print(warmup())
    sys.exit(0)
