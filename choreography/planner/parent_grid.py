"""A revision of unchanged audio is planned on its parent's beat grid (docs/REVISIONS.md).

The parent blueprint holds the beats, downbeats, tempo and duration it was planned on. When the
revision's audio is the parent's (same content hash), those are the grid to plan on, whatever
the analysis code says today: a newer analysis version may count the same song differently
(another beat level, beats a few ms apart), and the kept bars must land exactly where they did.
The song's energy is a property of the audio, so it is taken from the current analysis,
interpolated at the parent's beats.
"""

from __future__ import annotations

import numpy as np

from choreography.music.model import MusicAnalysis, Phrase
from schemas.blueprint import Blueprint

PHRASE_BEATS = 8


def on_parent_grid(parent: Blueprint, current: MusicAnalysis) -> MusicAnalysis:
    """``current`` (the same audio analysed now) on the parent's beat grid: the parent's beats,
    downbeats, meter, tempo and duration, their 8-counts, and the current energy at those beats.

    Sections are left empty: a revision takes its sections from the parent's moves.
    """
    song = parent.song
    beats = np.asarray(song.beats_s, dtype=float)
    energy = np.interp(beats, current.beats_s, current.energy_per_beat)
    first = int(np.argmin(np.abs(beats - song.downbeats_s[0]))) if song.downbeats_s else 0
    phrases: list[Phrase] = []
    for index, beat in enumerate(range(first, beats.size - PHRASE_BEATS + 1, PHRASE_BEATS)):
        after = beat + PHRASE_BEATS
        end = float(beats[after]) if after < beats.size else song.duration_s
        phrases.append(Phrase(index=index, start_s=float(beats[beat]), end_s=end, first_beat=beat))
    return current.model_copy(
        update={
            "duration_s": song.duration_s,
            "tempo_bpm": song.tempo_bpm,
            "beats_per_bar": song.time_signature,
            "beats_s": [float(b) for b in beats],
            "downbeats_s": list(song.downbeats_s),
            "bar_phase": first,
            "phrases": phrases,
            "sections": [],
            "energy_per_beat": [float(e) for e in energy],
            "energy_per_phrase": [
                float(energy[p.first_beat : p.first_beat + PHRASE_BEATS].mean()) for p in phrases
            ],
        }
    )
