"""Turn planned slots into the blueprint document: times, speeds, transitions and reasons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from choreography.music.model import MusicAnalysis
from choreography.planner.costs import CostModel
from choreography.planner.sequencer import Slot
from choreography.planner.window import PhraseWindow, WindowSection
from schemas.blueprint import SCHEMA_VERSION, AppliedConstraints, VideoOutput

ANALYSER = "choreo music analysis v{version}"
# ``song.choice_reason`` is a LongText in the blueprint schema.
MAX_CHOICE_REASON = 2000


@dataclass(frozen=True)
class SongInfo:
    """What the blueprint says about the song besides its analysis."""

    audio_uri: str
    title: str = "Untitled"
    song_id: str | None = None
    artist: str | None = None
    choice_reason: str | None = None
    """Why this song was chosen, when the request named none (cut to the schema's limit)."""


@dataclass(frozen=True)
class PlacedMove:
    """A slot with the window section it belongs to and whether it repeats an earlier one."""

    slot: Slot
    section: WindowSection
    repeat_of: int | None
    copied: bool
    note: str | None = None
    """Said last in the move's reason (e.g. what a sequence refinement did with this slot)."""


def blueprint_document(
    *,
    task_id: str,
    created_at: datetime,
    analysis: MusicAnalysis,
    song: SongInfo,
    window: PhraseWindow,
    constraints: AppliedConstraints,
    description: str | None,
    moves: list[PlacedMove],
    model: CostModel,
    output: VideoOutput,
    substitutions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The blueprint as a JSON-ready dict (validated by the caller with ``parse_blueprint``).

    ``substitutions``: moves off the requested difficulty or energy, as ``request.substitutions``.
    """
    alternative = next(iter(analysis.tempo_alternatives), None)
    return {
        "schema_version": SCHEMA_VERSION,
        "task_id": task_id,
        "created_at": created_at.isoformat(),
        "request": {
            "path": "describe" if description else "song",
            "description": description or None,
            "constraints": constraints.model_dump(),
            "substitutions": substitutions or [],
        },
        "song": {
            "song_id": song.song_id,
            "title": song.title,
            "artist": song.artist,
            "choice_reason": song.choice_reason[:MAX_CHOICE_REASON] if song.choice_reason else None,
            "audio_uri": song.audio_uri,
            "duration_s": analysis.duration_s,
            "tempo_bpm": analysis.tempo_bpm,
            "time_signature": analysis.beats_per_bar,
            "beats_s": [b for b in analysis.beats_s if b <= analysis.duration_s],
            "downbeats_s": [b for b in analysis.downbeats_s if b <= analysis.duration_s],
            "window": {"start_s": window.start_s, "end_s": window.end_s},
            "analysis": {
                "tempo_confidence": analysis.tempo_confidence,
                "tempo_alternative_bpm": alternative.bpm
                if alternative and 30 <= alternative.bpm <= 300
                else None,
                "octave_ambiguous": analysis.octave_ambiguous,
                "tempo_level": analysis.tempo_level or None,
                "analyser": ANALYSER.format(version=analysis.analysis_version),
            },
        },
        "moves_used": _moves(moves, window, model, constraints),
        "video_output": output.model_dump(),
    }


def _moves(
    moves: list[PlacedMove], window: PhraseWindow, model: CostModel, constraints: AppliedConstraints
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    previous: PlacedMove | None = None
    spans = [model.span(p.slot.first_beat, p.slot.beats) for p in moves]
    for i, placed in enumerate(moves):
        slot, candidate = placed.slot, model.candidates[placed.slot.candidate]
        start, end = spans[i]
        if i == len(moves) - 1:
            end = window.end_s  # the grid's own end (it may be extrapolated past the last beat)
        speed = candidate.clip_duration_s / (end - start)
        jump = None
        transition: dict[str, Any] = {"type": "cut", "duration_s": 0.0}
        if previous is not None:
            jump = model.jump_between(
                previous.slot.candidate, previous.slot.mirror, slot.candidate, slot.mirror
            )
            shortest = min(end - start, spans[i - 1][1] - spans[i - 1][0])
            transition = _transition(jump, shortest, model)
        out.append(
            {
                "move_id": candidate.move_id,
                "name": candidate.name,
                "clip_uri": candidate.clip_uri,
                "clip_in_s": 0.0,
                "clip_out_s": candidate.clip_duration_s,
                "timeline_start_s": start - window.start_s,
                "timeline_end_s": end - window.start_s,
                "counts": slot.beats,
                "speed_factor": speed,
                "mirror": slot.mirror,
                "transition_in": transition,
                "section": {
                    "label": placed.section.label,
                    "index": placed.section.index,
                    "repeat_of": placed.repeat_of,
                },
                "reason": {
                    "text": _reason_text(placed, model, speed, jump, transition["type"]),
                    "search_score": candidate.score,
                    "filters": {
                        "style": constraints.style,
                        "difficulty": constraints.difficulty,
                        "energy": constraints.energy,
                    },
                    "transition_cost": None if jump is None else round(jump, 4),
                },
            }
        )
        previous = placed
    return out


def _transition(jump: float, shortest_span_s: float, model: CostModel) -> dict[str, Any]:
    """A hard cut for a small pose jump; otherwise a crossfade that grows with the jump."""
    s = model.settings
    if jump <= s.cut_max_jump_m:
        return {"type": "cut", "duration_s": 0.0}
    duration = min(max(s.crossfade_min_s, jump * s.crossfade_s_per_m), s.crossfade_max_s)
    # The schema allows at most half of the shorter neighbour; stay a millisecond inside it.
    duration = min(duration, shortest_span_s / 2 - 0.001)
    return {"type": "crossfade", "duration_s": round(duration, 3)}


def _reason_text(
    placed: PlacedMove, model: CostModel, speed: float, jump: float | None, transition: str
) -> str:
    slot, candidate = placed.slot, model.candidates[placed.slot.candidate]
    fit = model.fits[slot.candidate]
    section = placed.section
    parts = [f"{candidate.name}: search score {candidate.score:.3f}"]
    if placed.copied:
        parts.append(
            f"repeats section {placed.repeat_of}'s choreography in section {section.index} "
            f"({section.label})" + (", mirrored" if slot.mirror else "")
        )
    else:
        target = model.target_energy(slot.first_beat, slot.beats)
        parts.append(
            f"{candidate.energy} energy ({candidate.energy_value:.2f}) for section "
            f"{section.index} ({section.label}) at song energy target {target:.2f}"
        )
    if jump is not None:
        parts.append(f"pose jump {jump:.3f} m from the previous move ({transition})")
    parts.append(
        f"{fit.counting} counting over {slot.beats} beats at speed {speed:.3f} "
        f"(move {candidate.tempo_bpm:.1f} BPM)"
    )
    if placed.note:
        parts.append(placed.note)
    return "; ".join(parts)
