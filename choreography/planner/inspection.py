"""What ``choreo blueprint inspect`` shows: the moves, the quality figures, the timeline picture.

The figures that need keypoints (Beat Align Score, recomputed pose jumps, and those of the
assembled motion: Bailando's BAS, the pose jump at each cut, foot sliding) are computed when the
move library is reachable: a bundle folder, or the database at ``DATABASE_URL``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from choreography.planner.quality import quality_report
from schemas.blueprint import Blueprint
from schemas.errors import ChoreoError, InvalidInput

if TYPE_CHECKING:
    from choreography.planner.offline import MoveLibrary

log = logging.getLogger(__name__)


def inspect_blueprint(
    blueprint: Blueprint, *, png: Path | None, song: Path | None, library: Path | None
) -> list[str]:
    """Lines to print (moves, figures); draws the timeline to ``png`` when given."""
    moves, source = _move_library(library)
    if moves is None:
        report = quality_report(blueprint)
    else:
        by_id = {m.move_id: m for m in moves.moves}
        report = quality_report(blueprint, moves.all_candidates(), moves=by_id)
    lines = [_move_line(i, m) for i, m in enumerate(blueprint.moves_used)]
    lines += [f"not as asked: {s.line()}" for s in blueprint.request.substitutions]
    lines.append(f"quality ({source}):")
    lines += [f"  {line}" for line in report.lines()]
    if report.motion is not None:
        lines += [f"  {line}" for line in report.motion.cut_lines()]
    if png is not None:
        from choreography.planner.timeline_figure import draw_timeline  # noqa: PLC0415

        samples, rate = _samples(song) if song is not None else (None, None)
        notes = [" ".join(line.split()) for line in report.lines()]
        draw_timeline(blueprint, png, samples=samples, sample_rate=rate, notes=notes)
        lines.append(f"wrote {png}")
    return lines


def _move_line(index: int, move: object) -> str:
    from schemas.blueprint import MoveUsed  # noqa: PLC0415

    assert isinstance(move, MoveUsed)  # noqa: S101 - moves_used holds MoveUsed
    section = f"{move.section.index}:{move.section.label}"
    if move.section.repeat_of is not None:
        section += f"={move.section.repeat_of}"
    jump = move.reason.transition_cost
    return (
        f"{index:>3} {move.timeline_start_s:7.2f}-{move.timeline_end_s:7.2f} s  {section:<8} "
        f"{move.move_id:<40} {move.counts:>2} ct  x{move.speed_factor:.3f}"
        f"{'  mirror' if move.mirror else ''}  {move.transition_in.type}"
        + ("" if jump is None else f" (jump {jump:.3f} m)")
    )


def _move_library(library: Path | None) -> tuple[MoveLibrary | None, str]:
    from choreography.planner.offline import (  # noqa: PLC0415
        library_from_database,
        library_from_folder,
    )
    from schemas.settings import DatabaseSettings  # noqa: PLC0415

    if library is not None:
        return library_from_folder(library), f"library {library}"
    url = DatabaseSettings().database_url
    if not url:
        return None, "no move library: give --library DIR or set DATABASE_URL for BAS"
    try:
        return library_from_database(url), "database library"
    except ChoreoError as exc:
        log.warning("move library unreachable, figures without keypoints: %s", exc)
        return None, f"move library unreachable ({exc})"


def _samples(song: Path) -> tuple[npt.NDArray[np.float64], int]:
    """Mono samples of the song file (soundfile; librosa for formats it cannot read)."""
    if not song.is_file():
        raise InvalidInput(f"song file {song} does not exist or is not a file")
    try:
        import soundfile  # noqa: PLC0415

        data, rate = soundfile.read(song, always_2d=True)
        return np.asarray(data, dtype=np.float64).mean(axis=1), int(rate)
    except Exception:  # soundfile cannot read mp3 and friends; librosa can
        import librosa  # noqa: PLC0415

        try:
            y, rate = librosa.load(song, sr=11025, mono=True)
        except Exception as exc:  # soundfile and audioread raise many unrelated types
            reason = str(exc).strip() or type(exc).__name__  # audioread raises with no message
            raise InvalidInput(f"song file {song} cannot be decoded as audio: {reason}") from exc
        return np.asarray(y, dtype=np.float64), int(rate)
