"""`choreo analyze SONG`: tempo, beats, downbeats, 8-count phrases, sections and energy."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from schemas.errors import InvalidInput

if TYPE_CHECKING:
    from choreography.music.model import MusicAnalysis


def analyze(
    song: Annotated[Path, typer.Argument(help="Audio file (wav, ogg, flac, mp3...).")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the full analysis as JSON.")
    ] = False,
    style: Annotated[
        str | None,
        typer.Option(
            help="Count the song as a request in this dance style does (salsa is counted on "
            "its quarter note, 150-240 BPM)."
        ),
    ] = None,
) -> None:
    """Analyse a song's tempo, beat grid, downbeats, 8-count phrases, sections and energy."""
    # numpy and librosa load only when the command runs, so `choreo --help` stays fast.
    from choreography.moves.model import STYLES  # noqa: PLC0415
    from choreography.music.analysis import analyse_file  # noqa: PLC0415
    from choreography.music.style_count import count_for_style  # noqa: PLC0415
    from schemas.settings import SongSettings  # noqa: PLC0415

    if style is not None and style not in STYLES:
        typer.echo(f"error: unknown style {style!r}; styles: {', '.join(STYLES)}", err=True)
        raise typer.Exit(code=2)
    try:
        result = analyse_file(song, max_seconds=SongSettings().max_seconds)
    except InvalidInput as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    result = count_for_style(result, style)
    typer.echo(result.model_dump_json(indent=2) if as_json else summarise(result))


def summarise(analysis: MusicAnalysis) -> str:
    """A short human-readable summary of an analysis."""
    alternatives = ", ".join(
        f"{a.kind} {a.bpm:.1f} ({a.strength:.2f})" for a in analysis.tempo_alternatives
    )
    lines = [
        f"duration   {analysis.duration_s:.1f} s  (analysed at {analysis.sample_rate} Hz)",
        f"tempo      {analysis.tempo_bpm:.1f} BPM  confidence {analysis.tempo_confidence:.2f}"
        + ("  OCTAVE AMBIGUOUS" if analysis.octave_ambiguous else ""),
        f"octaves    {alternatives}",
        f"level      {analysis.tempo_level or '-'}",
        f"beats      {len(analysis.beats_s)}, {analysis.beats_per_bar} per bar; "
        f"first downbeat at beat {analysis.bar_phase} "
        f"(confidence {analysis.downbeat_confidence:.2f})",
        f"phrases    {len(analysis.phrases)} complete 8-counts"
        + (
            f"  ({analysis.beats_per_bar}/4 time: not counted in 8-counts, not planned)"
            if analysis.beats_per_bar != 4
            else ""
        ),
        "sections",
    ]
    if analysis.double_time is not None:
        lines.insert(
            4,
            f"twice      {analysis.double_time.tempo_bpm:.1f} BPM, the count of a style counted "
            "there (choreo analyze --style salsa)",
        )
    for s in analysis.sections:
        repeat = (
            f"  repeats {s.repeat_of} ({s.repeat_similarity:.2f})"
            if s.repeat_of is not None
            else ""
        )
        lines.append(
            f"  {s.index:>2} {s.label:<3} {s.start_s:7.2f}-{s.end_s:7.2f} s  "
            f"{s.phrase_count:>2} phrases  energy {s.energy_level:<6} ({s.energy:.2f}){repeat}"
        )
    return "\n".join(lines)
