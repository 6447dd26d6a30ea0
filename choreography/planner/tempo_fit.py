"""How a move's own tempo is fitted to the song: normal, half-time or double-time counting.

A move of ``c`` counts recorded at ``T_move`` BPM spans ``c`` song beats when counted normally
(speed ``T_song / T_move``), ``2c`` beats at half time (one move count per two song beats,
speed ``T_song / 2 T_move``) or ``c / 2`` beats at double time. The counting whose nominal speed
is inside the schema's band and closest to 1 wins; a move with none is not a candidate for this
song. At each placement the real speed is the clip length over the real beat span, so a tempo
drift is absorbed move by move (and a placement whose speed leaves the band is not allowed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from choreography.planner.candidates import MoveCandidate
from schemas.blueprint import SPEED_FACTOR_MAX, SPEED_FACTOR_MIN

# (name, song beats per move count)
COUNTINGS: Final[tuple[tuple[str, float], ...]] = (
    ("normal", 1.0),
    ("half-time", 2.0),
    ("double-time", 0.5),
)


@dataclass(frozen=True)
class TempoFit:
    """A candidate's counting for this song: song beats it spans and its nominal speed."""

    counting: str
    beats: int
    nominal_speed: float


def fit_tempo(candidate: MoveCandidate, song_bpm: float, beats_per_bar: int) -> TempoFit | str:
    """The best counting for the song tempo, or a sentence saying why none fits."""
    tried = []
    fits = []
    for counting, beats_per_count in COUNTINGS:
        beats = candidate.counts * beats_per_count
        speed = song_bpm / (candidate.tempo_bpm * beats_per_count)
        if beats != int(beats) or int(beats) % beats_per_bar:
            continue  # a move must end on a downbeat so the next one starts on one
        tried.append(f"{counting} {speed:.2f}")
        if SPEED_FACTOR_MIN <= speed <= SPEED_FACTOR_MAX:
            fits.append(TempoFit(counting, int(beats), speed))
    if fits:
        return min(fits, key=lambda fit: abs(math.log(fit.nominal_speed)))
    if not tried:
        return (
            f"{candidate.move_id}: {candidate.counts} counts cannot fill whole bars of "
            f"{beats_per_bar} beats"
        )
    return (
        f"{candidate.move_id}: recorded at {candidate.tempo_bpm:g} BPM, the song's "
        f"{song_bpm:.1f} BPM needs speed {', '.join(tried)} "
        f"(band {SPEED_FACTOR_MIN}-{SPEED_FACTOR_MAX})"
    )


def placement_speed(candidate: MoveCandidate, span_s: float) -> float:
    """Playback speed that makes the whole clip last ``span_s`` seconds."""
    return candidate.clip_duration_s / span_s


def speed_in_band(speed: float) -> bool:
    """Whether a speed factor is inside the blueprint's band."""
    return SPEED_FACTOR_MIN <= speed <= SPEED_FACTOR_MAX
