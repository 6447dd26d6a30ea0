"""Sequence refinement with Gemini: the planner's slot summary in, a move id per slot out.

One structured ``generateContent`` call (``GeminiStructuredCall``: the parser's timeouts,
retries with backoff and refusal / bad-answer errors) asking for :class:`SequenceRefinement`.
Whatever comes back is checked by ``refinement.apply_refinement``; this adapter only asks.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from choreography.planner.gemini import GeminiStructuredCall, gemini_call_from_settings
from choreography.planner.refinement import SequenceRefinement
from schemas.settings import GeminiSettings

log = logging.getLogger(__name__)

REFINE_INSTRUCTION = (
    "You review a dance choreography planned on a song's beat grid and may swap moves to make it "
    "flow better. The JSON you get has the song's sections (energy 0..1, repeat_of when a "
    "section repeats an earlier one), the moves (energy level, search score, beat alignment), "
    "pose_jump_m (metres from the end pose of the row's move to the start pose of the column's "
    "move: smaller is smoother), and the slots in timeline order with the local plan's move. "
    "For each slot you may choose one id from that slot's candidates (placement_cost: lower "
    "fits the music better; the pose jumps to the neighbouring local moves). Rules: only a "
    "candidate id of that slot; a slot with repeats_slot must have the same move as that slot "
    "(leave it out to follow it); never the same move in two consecutive slots. Timing is "
    "fixed. Keep the local move when unsure. Answer with choices (slot, move_id) for the slots "
    "you answer and a one-sentence reason."
)


class GeminiSequenceRefiner:
    """A ``SequenceRefiner`` asking one Gemini model; ``attempts`` counts HTTP calls made."""

    def __init__(self, call: GeminiStructuredCall) -> None:
        self._gemini = call

    @property
    def attempts(self) -> int:
        """HTTP calls made so far (retries included)."""
        return self._gemini.attempts

    def refine(self, request: dict[str, Any]) -> SequenceRefinement:
        """Gemini's move choices for the summary; raises ``GeminiRefused`` etc. on failure."""
        contents = json.dumps(request, separators=(",", ":"), sort_keys=True)
        return self._gemini.ask(contents, instruction=REFINE_INSTRUCTION, schema=SequenceRefinement)


def gemini_refiner_from_settings(settings: GeminiSettings) -> GeminiSequenceRefiner | None:
    """A refiner when ``GEMINI_REFINE`` is on and ``GEMINI_API_KEY`` set; None (logged) else."""
    if not settings.refine:
        return None
    call = gemini_call_from_settings(settings)
    if call is None:
        log.info("GEMINI_REFINE is on but GEMINI_API_KEY is not set: plans stay local")
        return None
    return GeminiSequenceRefiner(call)
