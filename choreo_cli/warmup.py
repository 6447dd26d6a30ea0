"""`choreo warmup`: compile librosa's numba functions into NUMBA_CACHE_DIR ahead of the first song.

librosa's jitted functions use ``cache=True``, so numba writes their machine code to
``NUMBA_CACHE_DIR`` (numba's own variable) and later processes load it instead of compiling; the
one declared ``cache=False`` (``__beat_local_score``) is cached too, by
``choreography.music.librosa_beat``. Running the real analysis on a short synthesized song compiles
exactly what ``analyse_file`` uses. Run it once, before any other process uses the cache: numba
issue #10128 (concurrent first writes of a gufunc's cache files can crash a reader).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import typer

# Verse and chorus material, so section detection runs as it does on a real song.
WARMUP_STRUCTURE = (("verse", 4), ("chorus", 4), ("verse", 4), ("chorus", 4))
WARMUP_TEMPO_BPM = 120.0


def warmup() -> None:
    """Analyse a short synthesized song once so numba's on-disk cache holds librosa's code."""
    # Heavy imports live in the command, so `choreo --help` stays fast.
    from choreo_cli.demo.song_synth import synthesize_song, write_wav  # noqa: PLC0415
    from choreography.music.analysis import analyse_file  # noqa: PLC0415

    started = time.perf_counter()
    song = synthesize_song(WARMUP_TEMPO_BPM, structure=WARMUP_STRUCTURE)
    with tempfile.TemporaryDirectory() as work:
        analysis = analyse_file(write_wav(Path(work) / "warmup.wav", song.y, song.sr))
    cache = os.environ.get("NUMBA_CACHE_DIR") or "numba's default (next to each module)"
    typer.echo(
        f"warm: analysed {analysis.duration_s:.0f} s at {analysis.tempo_bpm:.1f} BPM in "
        f"{time.perf_counter() - started:.1f} s; numba cache: {cache}"
    )
