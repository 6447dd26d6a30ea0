"""The result of analysing a song: a JSON-serialisable pydantic model, cached as jsonb."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# Bump whenever the analysis code changes its output, so cached analyses are recomputed.
ANALYSIS_VERSION = 7

EnergyLevel = Literal["low", "medium", "high"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TempoAlternative(_Frozen):
    """An octave alternative to the chosen tempo and how well the audio supports it."""

    kind: Literal["half", "double"]
    bpm: float = Field(gt=0)
    strength: float = Field(
        ge=0, le=1, description="support relative to the chosen tempo (1 = as strong)"
    )


class Phrase(_Frozen):
    """One complete 8-count: eight beats starting on a downbeat."""

    index: int = Field(ge=0)
    start_s: float = Field(ge=0)
    end_s: float = Field(ge=0)
    first_beat: int = Field(ge=0, description="index into beats_s of count 1")


class MusicSection(_Frozen):
    """A structural section (verse, chorus...); its interior boundaries are phrase starts."""

    index: int = Field(ge=0)
    start_s: float = Field(ge=0)
    end_s: float = Field(ge=0)
    first_phrase: int = Field(ge=0)
    phrase_count: int = Field(ge=0)
    label: str = Field(description="A, B, C...; a prime (A\u2032) marks a varied repeat")
    repeat_of: int | None = Field(None, description="index of the earlier section this repeats")
    repeat_similarity: float = Field(0.0, ge=0, le=1)
    energy: float = Field(ge=0, le=1)
    energy_level: EnergyLevel


class MusicAnalysis(_Frozen):
    """Tempo, beat grid, downbeats, 8-count phrases, sections and energy of one song."""

    analysis_version: int = ANALYSIS_VERSION
    duration_s: float = Field(gt=0)
    sample_rate: int = Field(gt=0)
    tempo_bpm: float = Field(gt=0)
    tempo_confidence: float = Field(ge=0, le=1)
    tempo_alternatives: list[TempoAlternative]
    octave_ambiguous: bool
    tempo_level: str = Field(
        "", description="which level of the pulse was chosen as the counted beat, and why"
    )
    beats_per_bar: int = Field(4, description="4, or 3 for a song in 3/4 (which has no phrases)")
    beats_s: list[float]
    downbeats_s: list[float]
    bar_phase: int = Field(ge=0, description="index in beats_s of the first downbeat")
    downbeat_confidence: float = Field(ge=0, le=1)
    phrases: list[Phrase]
    sections: list[MusicSection]
    energy_per_beat: list[float] = Field(description="0..1, one value per beat in beats_s")
    energy_per_phrase: list[float] = Field(description="0..1, one value per phrase")
    double_time: MusicAnalysis | None = Field(
        None,
        description="the song counted twice as fast (its beats and the points half-way between "
        "them, with their own bars, 8-counts and sections), for a style counted at that level "
        "(choreography.music.style_count); only when some style is",
    )
