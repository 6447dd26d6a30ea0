"""``plan_choreography``: a song analysis, constraints and scored candidate moves -> a blueprint.

1. Resolve the constraints (defaults: the style and difficulty of the best candidate that fits the
   song's tempo, medium energy, the whole song) and keep the candidates that match them.
2. Fit each candidate's tempo (normal, half-time or double-time counting; see ``tempo_fit``);
   a move that fits none is dropped and logged.
3. Choose the window: whole 8-count phrases from a section's first downbeat (``window``).
4. Request fidelity (``fidelity_pools``): only moves at the requested difficulty and energy,
   unless they are too few families to fill the unrepeated bars without repeating a move; then
   the nearest levels are let in, as substitutes that cost more, and the blueprint names them
   (``request.substitutions``).
5. Section by section: a section that repeats an earlier one copies its moves at the same bar
   offsets (optionally mirrored); any other stretch is filled by dynamic programming over bars
   (``sequencer``) with the cost model of ``costs``, continuing from the previous move, looking
   ahead to the first move of a following repeat, and paying for every earlier use of a move
   and of its family.
6. Optionally, a refiner (Gemini) re-chooses moves for the planned slots; its answer is applied
   only when it keeps the planner's rules, else the local plan stays (``refinement``).
7. Transitions from the pose jump at each cut; reasons; validation by ``parse_blueprint``.

Pure without a refiner: no I/O; the same inputs and seed give the same blueprint (``created_at``
aside). A refiner is the one port that may do I/O.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

import numpy as np

from choreography.moves.model import DIFFICULTIES, ENERGIES, difficulties_up_to
from choreography.music.model import MusicAnalysis
from choreography.music.structure import COUNTS_PER_PHRASE
from choreography.music.style_count import count_for_style
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
# How much of the sequencer's refusal the blueprint's tempo_level quotes (it holds 2000 chars).
MAX_FALLBACK_REASON = 400
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

    A style counted faster than the song's own level (salsa) is planned on the song counted at
    its level (:func:`counted_for_style`), unless its moves cannot be sequenced there (moves
    that fit only at half time, 16 counts, in sections of one 8-count): then on the song's own
    count. The blueprint's ``tempo_level`` says which, and why.

    ``choice_reason``: why the song was chosen (a request without a song), recorded as given.
    """
    settings = settings or PlannerSettings()
    refuse_meter(analysis)
    counted, effective = counted_for_style(analysis, constraints, candidates)
    sequence = partial(
        _sequenced, constraints=constraints, candidates=candidates, task_id=task_id,
        settings=settings, seed=seed,
    )  # fmt: skip
    try:
        window, model, placed, pool = sequence(counted, effective)
        analysis = counted
    except InvalidInput as exc:
        if counted is analysis:
            raise
        # Moves that fit the style's count only at half time (16 of its counts) cannot fill its
        # sections of one 8-count; the song's own count is danced instead, and the blueprint
        # says why.
        log.info("the %s count cannot be sequenced: %s", effective.style, exc)
        reason = (
            f"{analysis.tempo_level}; {effective.style} is counted at {counted.tempo_bpm:.1f} "
            f"BPM, but there {str(exc)[:MAX_FALLBACK_REASON]}, so the song's own count is danced"
        )
        analysis = analysis.model_copy(update={"tempo_level": reason})
        effective = resolve_constraints(analysis, constraints, candidates)
        window, model, placed, pool = sequence(analysis, effective)
    slots = refine_sequence(placed, model, window, refiner, task_id=task_id)
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
        substitutions=substitutions(slots, model, constraints, pool.reason),
    )
    return parse_blueprint(document)


def _sequenced(
    analysis: MusicAnalysis,
    effective: AppliedConstraints,
    *,
    constraints: RequestedConstraints | None,
    candidates: Sequence[MoveCandidate],
    task_id: str,
    settings: PlannerSettings,
    seed: int,
) -> tuple[PhraseWindow, CostModel, list[PlacedMove], FidelityPool]:
    """The window and the moves placed in it, from the first fidelity pool whose moves fill it."""
    usable, fits = usable_candidates(analysis, effective, candidates, task_id)
    window = choose_window(analysis, constraints.duration_s if constraints else None)
    pools = fidelity_pools(
        usable, fits, constraints, needed=moves_needed(analysis, window, fits, effective)
    )
    for attempt, pool in enumerate(pools):
        model = CostModel(
            analysis,
            pool.candidates,
            pool.fits,
            energy_level=effective.energy,
            settings=settings,
            seed=seed,
            off_request=pool.off_request,
        )
        try:
            return window, model, plan_sections(analysis, window, model), pool
        except InvalidInput as exc:
            if attempt == len(pools) - 1:
                raise
            log.info("moves at the requested levels cannot fill the plan: %s", exc)
    raise AssertionError("fidelity_pools always yields a pool")  # pragma: no cover


def refuse_meter(analysis: MusicAnalysis) -> None:
    """``InvalidInput`` for a song not in 4/4: its bars cannot be counted in 8-counts."""
    per_bar = analysis.beats_per_bar
    if per_bar != 4:
        raise InvalidInput(
            f"the song is in {per_bar}/4 time ({per_bar} beats to the bar, like a waltz); "
            "choreo plans dances in 8-counts of 4/4 music and does not choreograph "
            f"{per_bar}/4 songs. Choose a song in 4/4."
        )


def counted_for_style(
    analysis: MusicAnalysis,
    requested: RequestedConstraints | None,
    candidates: Sequence[MoveCandidate],
) -> tuple[MusicAnalysis, AppliedConstraints]:
    """The song as the plan's style counts it (``count_for_style``: salsa at its quarter note)
    and the constraints resolved on that count.

    A style left open is resolved on the song's own count first; when it is such a style, the
    song is counted at the style's level unless the moves would then resolve to another style.
    """
    effective = resolve_constraints(analysis, requested, candidates)
    counted = count_for_style(analysis, effective.style)
    if counted is analysis:
        return analysis, effective
    try:
        recounted = resolve_constraints(counted, requested, candidates)
    except InvalidInput:  # nothing fits the style's count: the song's own count is danced
        return analysis, effective
    if recounted.style != effective.style:
        return analysis, effective
    return counted, recounted


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
            "allow_repeats": bool(requested.allow_repeats),
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


@dataclass(frozen=True)
class FidelityPool:
    """The moves a plan may use, how many levels each is from the request, and why."""

    candidates: list[MoveCandidate]
    fits: list[TempoFit]
    off_request: list[int]
    """Levels from the requested difficulty plus levels from the requested energy."""
    reason: str
    """Why moves off the requested levels are in the pool ("" when none is)."""


def levels_off(candidate: MoveCandidate, requested: RequestedConstraints | None) -> tuple[int, int]:
    """How many difficulty and energy levels ``candidate`` is from what was requested."""
    if requested is None:
        return 0, 0
    difficulty = (
        abs(DIFFICULTIES.index(requested.difficulty) - DIFFICULTIES.index(candidate.difficulty))
        if requested.difficulty
        else 0
    )
    energy = (
        abs(ENERGIES.index(requested.energy) - ENERGIES.index(candidate.energy))
        if requested.energy
        else 0
    )
    return difficulty, energy


def fidelity_pools(
    usable: Sequence[MoveCandidate],
    fits: Sequence[TempoFit],
    requested: RequestedConstraints | None,
    *,
    needed: int,
) -> list[FidelityPool]:
    """The pool to plan with first, then every usable move (when the first cannot fill).

    The first pool holds the moves at the requested difficulty and energy. While its moves come
    from fewer than ``needed`` families (or are fewer than ``MIN_FITTING_MOVES``), the next
    nearest levels are added, energy before difficulty (a requested difficulty is never
    exceeded: ``usable_candidates`` keeps it a ceiling), but only levels that bring a family
    the pool lacks: a variant of a family already there adds no variety, only a substitution.
    """
    offs = [levels_off(c, requested) for c in usable]
    chosen: list[int] = []
    families: set[str] = set()
    for tier in sorted(set(offs)):
        if len(families) >= needed and len(chosen) >= MIN_FITTING_MOVES:
            break
        members = [i for i, off in enumerate(offs) if off == tier]
        new = {usable[i].family for i in members} - families
        if chosen and not new and len(chosen) >= MIN_FITTING_MOVES:
            continue
        chosen += members
        families |= {usable[i].family for i in members}
    exact = [c for c, off in zip(usable, offs, strict=True) if off == (0, 0)]
    substitutes = any(offs[i] != (0, 0) for i in chosen)
    reason = _substitution_reason(exact, requested, needed) if substitutes else ""
    first = _pool(usable, fits, offs, chosen, reason)
    if len(chosen) == len(usable):
        return [first]
    everything = list(range(len(usable)))
    wider = _substitution_reason(exact, requested, needed)
    wider += "; the moves nearer the request could not fill every section"
    return [first, _pool(usable, fits, offs, everything, wider.lstrip("; "))]


def _pool(
    usable: Sequence[MoveCandidate],
    fits: Sequence[TempoFit],
    offs: Sequence[tuple[int, int]],
    chosen: Sequence[int],
    reason: str,
) -> FidelityPool:
    ordered = sorted(chosen)
    return FidelityPool(
        [usable[i] for i in ordered],
        [fits[i] for i in ordered],
        [sum(offs[i]) for i in ordered],
        reason,
    )


def _substitution_reason(
    exact: Sequence[MoveCandidate], requested: RequestedConstraints | None, needed: int
) -> str:
    if requested is None:
        return ""
    asked = " and ".join(
        f"{name} {value}"
        for name, value in (("difficulty", requested.difficulty), ("energy", requested.energy))
        if value
    )
    families = len({c.family for c in exact})
    offer = (
        f"{_count(len(exact), 'candidate move')} in "
        f"{families} famil{'y' if families == 1 else 'ies'}"
        if exact
        else "no candidate move"
    )
    purpose = (
        "to fill the plan at all (repeats allowed)"
        if requested.allow_repeats
        else "to fill the unrepeated sections without repeating a move"
    )
    return (
        f"{offer} at {asked or 'the requested levels'} fit the song's tempo; "
        f"{max(needed, MIN_FITTING_MOVES)} families are needed {purpose}"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def moves_needed(
    analysis: MusicAnalysis,
    window: PhraseWindow,
    fits: Sequence[TempoFit],
    constraints: AppliedConstraints,
) -> int:
    """Distinct moves a plan needs to repeat none outside repeated sections (estimate).

    The bars no repeat copies, over the median length of the usable moves; ``allow_repeats``
    needs only ``MIN_FITTING_MOVES`` (a move may not follow itself).
    """
    if constraints.allow_repeats or not fits:
        return MIN_FITTING_MOVES
    per_bar = analysis.beats_per_bar
    bars = {s.index: s.phrase_count * COUNTS_PER_PHRASE // per_bar for s in window.sections}
    fresh = 0
    for section in window.sections:
        source = copy_source(section, window, range(section.index))
        fresh += max(0, bars[section.index] - (bars[source] if source is not None else 0))
    typical = max(1, int(np.median([f.beats for f in fits])) // per_bar)
    return max(MIN_FITTING_MOVES, math.ceil(fresh / typical))


def substitutions(
    moves: Sequence[PlacedMove],
    model: CostModel,
    requested: RequestedConstraints | None,
    reason: str,
) -> list[dict[str, object]]:
    """What the placed moves give instead of the requested difficulty and energy, and why."""
    if requested is None:
        return []
    out: list[dict[str, object]] = []
    for field in ("difficulty", "energy"):
        wanted = getattr(requested, field)
        if wanted is None:
            continue
        given: dict[str, list[str]] = {}
        for placed in moves:
            candidate = model.candidates[placed.slot.candidate]
            level = getattr(candidate, field)
            if level != wanted:
                given.setdefault(level, []).append(candidate.move_id)
        for level, ids in given.items():
            out.append(
                {
                    "field": field,
                    "requested": wanted,
                    "given": level,
                    "placements": len(ids),
                    "move_ids": list(dict.fromkeys(ids)),
                    "reason": reason or "these moves were the only ones to fit their slots",
                }
            )
    return out


def plan_sections(
    analysis: MusicAnalysis, window: PhraseWindow, model: CostModel
) -> list[PlacedMove]:
    """Moves for every section of the window, in timeline order.

    Only moves planned afresh count as uses for the reuse costs: a repeated section's copy is
    the music repeating, not the plan.
    """
    per_bar = analysis.beats_per_bar
    uses = np.zeros(len(model.candidates))
    planned: dict[int, list[Slot]] = {}
    placed: list[PlacedMove] = []
    for section in window.sections:
        first_beat = analysis.phrases[section.first_phrase].first_beat
        bars = section.phrase_count * COUNTS_PER_PHRASE // per_bar
        source = copy_source(section, window, planned)
        copied = _copy_repeat(section, source, planned, analysis, model)
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
        for slot in slots[len(copied) :]:
            uses[slot.candidate] += 1
        planned[section.index] = slots
        repeat_of = source if copied else None
        placed += [PlacedMove(s, section, repeat_of, i < len(copied)) for i, s in enumerate(slots)]
    return placed


def copy_source(
    section: WindowSection, window: PhraseWindow, planned: Collection[int]
) -> int | None:
    """The earlier section whose moves a repeat copies: of the same material, the same label
    first, then the longest (a second verse copies the first verse, not a shorter intro the
    analysis found to be of the same material)."""
    if section.repeat_of is None or section.repeat_of not in planned:
        return None
    same = [
        s
        for s in window.sections[: section.index]
        if s.index in planned and section.repeat_of in (s.index, s.repeat_of)
    ]
    best = max(same, key=lambda s: (s.label == section.label, s.phrase_count, -s.index))
    return best.index


def _copy_repeat(
    section: WindowSection,
    source: int | None,
    planned: dict[int, list[Slot]],
    analysis: MusicAnalysis,
    model: CostModel,
) -> list[Slot]:
    """The source's moves at the same bar offsets, as far as they fit bars and speed band."""
    if source is None:
        return []
    original = planned[source]
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
    source = copy_source(window.sections[after], window, planned)
    if source is None:
        return None
    first = planned[source][0]
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
