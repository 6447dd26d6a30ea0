"""`choreo warmup`: fill NUMBA_CACHE_DIR ahead of the first song (see
:mod:`consumers.blueprint_consumer.warmup`, which the blueprint image runs at build time)."""

from __future__ import annotations

import typer


def warmup() -> None:
    """Analyse a short generated song once so numba's on-disk cache holds librosa's code."""
    from consumers.blueprint_consumer.warmup import warmup as run_warmup  # noqa: PLC0415

    typer.echo(run_warmup())
