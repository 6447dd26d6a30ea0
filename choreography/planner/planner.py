"""``plan_choreography``: a song analysis, constraints and scored candidate moves -> a blueprint.

1. Resolve the constraints (defaults: the style and difficulty of the best candidate that fits the
   song's tempo, medium energy, the whole song) and keep the candidates that match them.
2. Fit each candidate's tempo (normal, half-time or double-time counting; see ``tempo_fit``);
   a move that fits none is dropped and logged.
3. Choose the window: whole 8-count phrases from a section's first downbeat (``window``).
4. Section by section: a section that repeats an earlier one copies its moves at the same bar
   offsets (optionally mirrored); any other stretch is filled by dynamic programming over bars
   (``sequencer``) with the cost model of ``costs``, continuing from the previous move and
   looking ahead to the first move of a following repeat.
5. Optionally, a refiner (Gemini) re-chooses moves for the planned slots; its answer is applied
   only when it keeps the planner's rules, else the local plan stays (``refinement``).
6. Transitions from the pose jump at each cut; reasons; validation by ``parse_blueprint``.

Pure without a refiner: no I/O; the same inputs and seed give the same blueprint (``created_at``
aside). A refiner is the one port that may do I/O.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from choreography.moves.model import DIFFICULTIES, difficulties_up_to
from choreography.music.model import MusicAnalysis
from choreography.music.structure import COUNTS_PER_PHRASE
from choreography.planner.blueprint_document import PlacedMove, SongInfo, blueprint_document
from choreography.planner.candidates import MoveCandidate
from choreography.planner.costs import CostModel, PlannerSettings
from choreography.planner.refinement import SequenceRefiner, refine_sequence
from choreography.planner.sequencer import Neighbour, NoSequence, Slot, fill_bars
from choreography.planner.tempo_fit import TempoFit, fit_tempo, speed_in_band
from choreography.planner.window import PhraseWindow, WindowSection, choose_window
from schemas.blueprint import (
    SPEED_FACTOR_MAX,
    SPEED_FACTOR_MIN,
    AppliedConstraints,
    Blueprint,
    VideoOutput,
    parse_blueprint,
)
from schemas.errors import InvalidInput
from schemas.events import Constraints as RequestedConstraints

log = logging.getLogger(__name__)

# Search-score penalty per difficulty level below the requested one (cosine scores of one query
# spread over ~0.1-0.3 in the demo library, so this prefers the requested level without
# excluding easier moves that fit the music much better).
EASIER_LEVEL_PENALTY = 0.05

DEFAULT_ENERGY = "medium"
# A move may not follow itself, so a default style needs two fitting moves to fill a section.
MIN_FITTING_MOVES = 2


def plan_choreography(
    analysis: MusicAnalysis,
    constraints: RequestedConstraints | None,
    candidates: Sequence[MoveCandidate],
    *,
    task_id: str,
    audio_uri: str,
    output: VideoOutput,
    seed: int = 0,
    title: str = "Untitled",
    song_id: str | None = None,
    description: str | None = None,
    choice_reason: str | None = None,
    settings: PlannerSettings | None = None,
    created_at: datetime | None = None,
    refiner: SequenceRefiner | None = None,
) -> Blueprint:
    """Plan a schema-valid blueprint; ``InvalidInput`` names the constraint nothing fits.

    ``choice_reason``: why the song was chosen (a request without a song), recorded as given.
    """
    settings = settings or PlannerSettings()
    effective = resolve_constraints(analysis, constraints, candidates)
    usable, fits = usable_candidates(analysis, effective, candidates, task_id)
    window = choose_window(analysis, constraints.duration_s if constraints else None)
    model = CostModel(
        analysis, usable, fits, energy_level=effective.energy, settings=settings, seed=seed
    )
    slots = refine_sequence(
        plan_sections(analysis, window, model), model, window, refiner, task_id=task_id
    )
    document = blueprint_document(
        task_id=task_id,
        created_at=created_at or datetime.now(UTC),
        analysis=analysis,
        song=SongInfo(audio_uri, title, song_id, choice_reason=choice_reason),
        window=window,
        constraints=effective,
        description=description,
        moves=slots,
        model=model,
        output=output,
    )
    return parse_blueprint(document)


def resolve_constraints(
    analysis: MusicAnalysis,
    requested: RequestedConstraints | None,
    candidates: Sequence[MoveCandidate],
) -> AppliedConstraints:
    """The constraints the plan applies: given ones, else those of a candidate that fits the song.

    A style or difficulty left open is taken from the best-scored candidate that fits the song's
    tempo and leaves at least ``MIN_FITTING_MOVES`` fitting moves of its style at or below its
    difficulty (else from the best-scored that fits at all), so a default never names a style
    the song cannot be danced in while another one can.
    """
    if not candidates:
        raise InvalidInput("no candidate moves: the move search returned nothing")
    requested = requested or RequestedConstraints()
    allowed = difficulties_up_to(requested.difficulty) or DIFFICULTIES
    fitting = sorted(
        (
            c
            for c in candidates
            if (requested.style is None or _same_style(c.style, requested.style))
            and c.difficulty in allowed
            and not isinstance(fit_tempo(c, analysis.tempo_bpm, analysis.beats_per_bar), str)
        ),
        key=lambda c: (-c.score, c.move_id),
    )
    if not fitting and requested.style is None:
        raise InvalidInput(_nothing_fits(analysis, candidates))
    chosen = next(
        (c for c in fitting if _fitting_moves(fitting, requested, c) >= MIN_FITTING_MOVES),
        fitting[0] if fitting else None,
    )
    if chosen is None:  # a style was asked for and nothing in it fits: the filter says so
        in_style = [c for c in candidates if _same_style(c.style, requested.style or "")]
        chosen = max(in_style or candidates, key=lambda c: (c.score, c.move_id))
    # Validated rather than constructed so the literal fields are checked against the schema.
    return AppliedConstraints.model_validate(
        {
            "difficulty": requested.difficulty or chosen.difficulty,
            "energy": requested.energy or DEFAULT_ENERGY,
            "style": requested.style or chosen.style,
            "duration_s": requested.duration_s or analysis.duration_s,
        }
    )


def _fitting_moves(
    fitting: Sequence[MoveCandidate], requested: RequestedConstraints, chosen: MoveCandidate
) -> int:
    """Distinct fitting moves a plan would keep with ``chosen``'s style and difficulty."""
    style = requested.style or chosen.style
    allowed = difficulties_up_to(requested.difficulty or chosen.difficulty) or DIFFICULTIES
    return len(
        {c.move_id for c in fitting if _same_style(c.style, style) and c.difficulty in allowed}
    )


def _nothing_fits(analysis: MusicAnalysis, candidates: Sequence[MoveCandidate]) -> str:
    tempos = [c.tempo_bpm for c in candidates]
    return (
        f"no candidate move in any style fits the song tempo {analysis.tempo_bpm:.1f} BPM within "
        f"the speed band {SPEED_FACTOR_MIN}-{SPEED_FACTOR_MAX} ({len(candidates)} candidates "
        f"recorded at {min(tempos):g}-{max(tempos):g} BPM, counted normal, half- or double-time)"
    )


def usable_candidates(
    analysis: MusicAnalysis,
    constraints: AppliedConstraints,
    candidates: Sequence[MoveCandidate],
    task_id: str,
) -> tuple[list[MoveCandidate], list[TempoFit]]:
    """Candidates of the style, at or below the difficulty, that fit the tempo, with counting.

    A requested difficulty is a ceiling (an advanced dancer can dance beginner moves too), so a
    small library still gives variety; easier moves pay a small score penalty per level, so the
    requested level is preferred where it fits as well.
    """
    allowed = difficulties_up_to(constraints.difficulty) or DIFFICULTIES
    matching = [
        _with_level_penalty(c, constraints.difficulty)
        for c in candidates
        if _same_style(c.style, constraints.style) and c.difficulty in allowed
    ]
    if not matching:
        styles = sorted({c.style for c in candidates})
        levels = sorted(
            {c.difficulty for c in candidates if _same_style(c.style, constraints.style)}
        )
        raise InvalidInput(
            f"no candidate move has style {constraints.style!r} and difficulty at most "
            f"{constraints.difficulty!r} ({len(candidates)} candidates; styles {styles}; "
            f"difficulties in that style {levels})"
        )
    best: dict[str, MoveCandidate] = {}
    for c in sorted(matching, key=lambda c: (-c.score, c.move_id)):
        best.setdefault(c.move_id, c)  # the same move found twice keeps its best score
    usable, fits, rejected = [], [], []
    for c in best.values():
        fit = fit_tempo(c, analysis.tempo_bpm, analysis.beats_per_bar)
        if isinstance(fit, str):
            rejected.append(fit)
            continue
        usable.append(c)
        fits.append(fit)
    for reason in rejected:
        log.info("move not usable for this song: %s", reason, extra={"task_id": task_id})
    if not usable:
        raise InvalidInput(
            f"no candidate move fits the song tempo {analysis.tempo_bpm:.1f} BPM within the "
            f"speed band (style {constraints.style!r}, difficulty {constraints.difficulty!r}): "
            + "; ".join(rejected[:5])
        )
    return usable, fits


def _with_level_penalty(candidate: MoveCandidate, level: str | None) -> MoveCandidate:
    if level is None or candidate.difficulty == level:
        return candidate
    below = DIFFICULTIES.index(level) - DIFFICULTIES.index(candidate.difficulty)
    return dataclasses.replace(candidate, score=candidate.score - EASIER_LEVEL_PENALTY * below)


def plan_sections(
    analysis: MusicAnalysis, window: PhraseWindow, model: CostModel
) -> list[PlacedMove]:
    """Moves for every section of the window, in timeline order."""
    per_bar = analysis.beats_per_bar
    uses = np.zeros(len(model.candidates))
    planned: dict[int, list[Slot]] = {}
    placed: list[PlacedMove] = []
    for section in window.sections:
        first_beat = analysis.phrases[section.first_phrase].first_beat
        bars = section.phrase_count * COUNTS_PER_PHRASE // per_bar
        copied = _copy_repeat(section, planned, analysis, model)
        covered = sum(s.beats for s in copied) // per_bar
        slots = list(copied)
        if covered < bars:
            previous = slots[-1] if slots else (placed[-1].slot if placed else None)
            try:
                slots += fill_bars(
                    model,
                    first_beat + covered * per_bar,
                    bars - covered,
                    per_bar,
                    previous=Neighbour(previous.candidate, previous.mirror) if previous else None,
                    following=_following(section, window, planned, model.settings.mirror_repeats),
                    uses=uses,
                )
            except NoSequence as exc:
                raise _unfillable(section, bars - covered, model, exc) from exc
        for slot in slots:
            uses[slot.candidate] += 1
        planned[section.index] = slots
        repeat_of = section.repeat_of if copied else None
        placed += [PlacedMove(s, section, repeat_of, i < len(copied)) for i, s in enumerate(slots)]
    return placed


def _copy_repeat(
    section: WindowSection,
    planned: dict[int, list[Slot]],
    analysis: MusicAnalysis,
    model: CostModel,
) -> list[Slot]:
    """The original's moves at the same bar offsets, as far as they fit bars and speed band."""
    if section.repeat_of is None or section.repeat_of not in planned:
        return []
    original = planned[section.repeat_of]
    origin = original[0].first_beat
    first_beat = analysis.phrases[section.first_phrase].first_beat
    limit = first_beat + section.phrase_count * COUNTS_PER_PHRASE
    flip = model.settings.mirror_repeats
    out: list[Slot] = []
    for slot in original:
        start = first_beat + slot.first_beat - origin
        if start + slot.beats > limit:
            break
        speed = model.speed(slot.candidate, start)
        if not speed_in_band(speed):
            log.info("repeat of section %d stops: speed %.3f off band", section.index, speed)
            break
        out.append(Slot(slot.candidate, start, slot.beats, slot.mirror != flip))
    return out


def _following(
    section: WindowSection, window: PhraseWindow, planned: dict[int, list[Slot]], flip: bool
) -> Neighbour | None:
    """The first move of the next section when that section repeats one already planned."""
    after = section.index + 1
    if after >= len(window.sections):
        return None
    repeat_of = window.sections[after].repeat_of
    if repeat_of is None or repeat_of not in planned:
        return None
    first = planned[repeat_of][0]
    return Neighbour(first.candidate, first.mirror != flip)


def _unfillable(
    section: WindowSection, bars: int, model: CostModel, exc: NoSequence
) -> InvalidInput:
    lengths = sorted({int(b) for b in model.beats})
    return InvalidInput(
        f"section {section.index} ({section.label}, {bars} bars): {exc}; "
        f"{len(model.candidates)} usable moves spanning {lengths} beats; moves must not follow "
        "themselves and their speed must stay in 0.85-1.15 at each placement"
    )


def _same_style(a: str, b: str) -> bool:
    """``hip-hop``, ``hiphop`` and ``hip_hop`` are one style."""
    return a.replace("-", "").replace("_", "") == b.replace("-", "").replace("_", "")
