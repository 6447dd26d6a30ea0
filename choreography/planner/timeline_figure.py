"""Draw a blueprint as a timeline picture: waveform, beat grid, sections and placed moves.

Matplotlib with the Agg backend (no display needed), imported when a picture is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from schemas.blueprint import Blueprint

if TYPE_CHECKING:
    from matplotlib.axes import Axes

SECTION_COLOURS = ("#8ecae6", "#ffb703", "#90be6d", "#f28482", "#cdb4db", "#b5838d", "#a3b18a")
MOVE_COLOURS = ("#457b9d", "#e76f51", "#2a9d8f", "#8d5a97", "#bc6c25", "#3d5a80")
MARGIN_S = 1.0


def draw_timeline(
    blueprint: Blueprint,
    out: Path,
    *,
    samples: npt.ArrayLike | None = None,
    sample_rate: int | None = None,
    notes: Sequence[str] = (),
) -> Path:
    """Write a PNG of the blueprint; the waveform is drawn when samples are given."""
    import matplotlib  # noqa: PLC0415 - heavy, and the backend must be set before pyplot

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.patches import Rectangle  # noqa: PLC0415

    song, window = blueprint.song, blueprint.song.window
    lo, hi = max(0.0, window.start_s - MARGIN_S), window.end_s + MARGIN_S
    width = min(40.0, max(14.0, window.length_s / 6))
    fig, (wave, sections, moves) = plt.subplots(
        3, 1, figsize=(width, 8.5), sharex=True, gridspec_kw={"height_ratios": [2.2, 0.9, 2.0]}
    )
    _draw_wave(wave, samples, sample_rate, lo, hi)
    for beat in song.beats_s:
        if lo <= beat <= hi:
            wave.axvline(beat, color="#bbbbbb", linewidth=0.5, zorder=0)
    for downbeat in song.downbeats_s:
        if lo <= downbeat <= hi:
            wave.axvline(downbeat, color="#555555", linewidth=1.0, zorder=1)
    wave.axvspan(lo, window.start_s, color="#eeeeee", zorder=-1)
    wave.axvspan(window.end_s, hi, color="#eeeeee", zorder=-1)
    wave.set_yticks([])
    wave.set_title(_title(blueprint), fontsize=11, loc="left")

    for index, band in enumerate(_sections(blueprint)):
        repeat_of, start, span = band.repeat_of, band.start_s, band.end_s - band.start_s
        colour = SECTION_COLOURS[(index if repeat_of is None else repeat_of) % 7]
        sections.add_patch(Rectangle((start, 0), span, 1, color=colour, alpha=0.8))
        text = f"{index}: {band.label}" + ("" if repeat_of is None else f"  repeats {repeat_of}")
        sections.text(start + 0.2, 0.5, text, va="center", fontsize=9, fontweight="bold")
        if repeat_of is not None:
            sections.add_patch(
                Rectangle((start, 0), span, 1, fill=False, hatch="//", edgecolor="#444444")
            )
    sections.set_ylim(0, 1)
    sections.set_yticks([])
    sections.set_ylabel("sections", fontsize=9)

    ids = sorted({m.move_id for m in blueprint.moves_used})
    for i, move in enumerate(blueprint.moves_used):
        start, end = window.start_s + move.timeline_start_s, window.start_s + move.timeline_end_s
        row = i % 2
        colour = MOVE_COLOURS[ids.index(move.move_id) % len(MOVE_COLOURS)]
        moves.add_patch(
            Rectangle(
                (start, row),
                end - start,
                0.9,
                facecolor=colour,
                edgecolor="black",
                alpha=0.85,
                hatch="xx" if move.mirror else None,
            )
        )
        # "Groove Bounce (beginner, low)" -> "Groove Bounce": difficulty is in the title.
        label = f"{move.name.split(' (')[0][:24]}\n{move.counts} ct x{move.speed_factor:.2f}"
        moves.text(start + 0.15, row + 0.45, label, va="center", fontsize=7, color="white",
                   clip_on=True)  # fmt: skip
        if move.transition_in.type != "cut":
            half = move.transition_in.duration_s / 2
            moves.add_patch(Rectangle((start - half, -0.15), 2 * half, 2.2, color="black",
                                      alpha=0.25))  # fmt: skip
    moves.set_ylim(-0.2, 2.1)
    moves.set_yticks([])
    moves.set_ylabel("moves", fontsize=9)
    moves.set_xlim(lo, hi)
    moves.set_xlabel("song time (s); thin lines: beats, thick: downbeats; grey bars: crossfades")
    if notes:
        fig.text(0.01, 0.005, "\n".join(notes), fontsize=9, family="monospace")
    fig.tight_layout(rect=(0, 0.02 * len(notes) + 0.01 if notes else 0, 1, 1))
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _draw_wave(
    axis: Axes, samples: npt.ArrayLike | None, sample_rate: int | None, lo: float, hi: float
) -> None:
    if samples is None or not sample_rate:
        axis.text((lo + hi) / 2, 0, "beat grid only (song file not given)", ha="center")
        axis.set_ylim(-1, 1)
        return
    y = np.asarray(samples, dtype=float)
    part = y[int(lo * sample_rate) : int(hi * sample_rate)]
    bins = max(1, part.size // 4000)
    usable = part[: part.size // bins * bins].reshape(-1, bins)
    envelope = np.abs(usable).max(axis=1)
    times = lo + (np.arange(envelope.size) + 0.5) * bins / sample_rate
    axis.fill_between(times, -envelope, envelope, color="#264653", linewidth=0)


@dataclass
class _Band:
    label: str
    repeat_of: int | None
    start_s: float
    end_s: float


def _sections(blueprint: Blueprint) -> list[_Band]:
    """One band per section of the window, in song seconds."""
    start = blueprint.song.window.start_s
    bands: dict[int, _Band] = {}
    for move in blueprint.moves_used:
        s = move.section
        band = bands.setdefault(
            s.index, _Band(s.label, s.repeat_of, start + move.timeline_start_s, 0.0)
        )
        band.end_s = start + move.timeline_end_s
    return list(bands.values())


def _title(blueprint: Blueprint) -> str:
    c, song, window = blueprint.request.constraints, blueprint.song, blueprint.song.window
    return (
        f"{song.title}: {len(blueprint.moves_used)} moves, {window.length_s:.1f} s "
        f"({window.start_s:.1f}-{window.end_s:.1f} s) at {song.tempo_bpm:.1f} BPM; "
        f"{c.style}, {c.difficulty}, {c.energy} energy; task {blueprint.task_id}"
    )
