"""Synthetic song analyses and candidate sets with known structure, for tests and benchmarks.

No audio and no librosa: the analysis is built straight from a beat grid (optionally drifting
in tempo), a list of sections in 8-count phrases and an energy per section.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from consumers.moves.model import ENERGIES
from consumers.moves.skeleton import rest_pose
from consumers.music.model import Phrase, Section, SongAnalysis
from consumers.music.structure import COUNTS_PER_PHRASE, energy_level
from consumers.planner.candidates import MoveCandidate

BEATS_PER_BAR = 4


@dataclass(frozen=True)
class SectionSpec:
    """A section of a synthetic song: a name (equal names repeat), phrases and energy."""

    name: str
    phrases: int
    energy: float


def grid_analysis(
    tempo_bpm: float,
    sections: Sequence[SectionSpec],
    *,
    drift: float = 0.0,
    lead_beats: int = 0,
    tail_s: float = 0.5,
) -> SongAnalysis:
    """An analysis whose beats speed up linearly by ``drift`` (0.02 = 2 %) over the song."""
    phrase_beats = [spec.phrases * COUNTS_PER_PHRASE for spec in sections]
    total = lead_beats + sum(phrase_beats) + 1  # one more beat: the end of the last phrase
    progress = np.linspace(0.0, 1.0, total)
    intervals = 60.0 / (tempo_bpm * (1.0 + drift * progress))
    beats = 0.2 + np.concatenate([[0.0], np.cumsum(intervals[:-1])])
    duration = float(beats[-1] + tail_s)
    first = lead_beats
    phrases = [
        Phrase(
            index=i,
            start_s=float(beats[first + i * 8]),
            end_s=float(beats[first + (i + 1) * 8]),
            first_beat=first + i * 8,
        )
        for i in range(sum(spec.phrases for spec in sections))
    ]
    energy = np.zeros(total)
    out_sections: list[Section] = []
    seen: dict[str, int] = {}
    phrase = 0
    for index, spec in enumerate(sections):
        lo, hi = phrases[phrase].first_beat, phrases[phrase + spec.phrases - 1].first_beat + 8
        energy[lo:hi] = spec.energy
        if index == 0:
            energy[:lo] = spec.energy
        repeat_of = seen.get(spec.name)
        seen.setdefault(spec.name, index)
        out_sections.append(
            Section(
                index=index,
                start_s=0.0 if index == 0 else phrases[phrase].start_s,
                end_s=duration if index == len(sections) - 1 else float(beats[hi]),
                first_phrase=phrase,
                phrase_count=spec.phrases,
                label=spec.name,
                repeat_of=repeat_of,
                repeat_similarity=1.0 if repeat_of is not None else 0.0,
                energy=spec.energy,
                energy_level=energy_level(spec.energy),
            )
        )
        phrase += spec.phrases
    energy[hi:] = sections[-1].energy
    return SongAnalysis(
        duration_s=duration,
        sample_rate=22050,
        tempo_bpm=float(60.0 / np.median(intervals)),
        tempo_confidence=0.9,
        tempo_alternatives=[],
        octave_ambiguous=False,
        beats_per_bar=BEATS_PER_BAR,
        beats_s=beats.tolist(),
        downbeats_s=beats[lead_beats % BEATS_PER_BAR :: BEATS_PER_BAR].tolist(),
        bar_phase=lead_beats % BEATS_PER_BAR,
        downbeat_confidence=0.9,
        phrases=phrases,
        sections=out_sections,
        energy_per_beat=energy.tolist(),
        energy_per_phrase=[float(energy[p.first_beat : p.first_beat + 8].mean()) for p in phrases],
    )


def synthetic_candidates(
    count: int,
    *,
    seed: int = 0,
    style: str = "hip-hop",
    difficulty: str = "beginner",
    tempo_bpm: float = 120.0,
    tempo_spread: float = 0.1,
    counts: Sequence[int] = (8,),
) -> list[MoveCandidate]:
    """Candidates with random edge poses near the rest pose, energies and scores."""
    rng = np.random.default_rng(seed)
    rest = rest_pose() - rest_pose()[0]
    out = []
    for i in range(count):
        bpm = float(tempo_bpm * rng.uniform(1 - tempo_spread, 1 + tempo_spread))
        n = int(rng.choice(counts))
        duration = n * 60.0 / bpm
        beats = tuple(float(b) for b in np.arange(n) * 60.0 / bpm)
        out.append(
            MoveCandidate(
                move_id=f"move-{i:03d}",
                name=f"Move {i}",
                clip_uri=f"moves/{style}/move-{i:03d}.mp4",
                style=style,
                difficulty=difficulty,
                energy=ENERGIES[int(rng.integers(len(ENERGIES)))],
                tempo_bpm=bpm,
                counts=n,
                clip_duration_s=duration,
                start_pose=(rest + rng.normal(0, 0.05, rest.shape)).astype(np.float32),
                end_pose=(rest + rng.normal(0, 0.05, rest.shape)).astype(np.float32),
                score=float(rng.uniform(0.2, 0.9)),
                motion_beats_s=beats,
            )
        )
    return out
