"""Handle ``choreography.requested``: analyse the song, find moves, plan, store the blueprint.

``choreography.revision.requested`` takes the same steps on the parent task's song and
constraints (with the revision's overrides) and plans with ``plan_revision`` instead: the
parent's kept bars as they were, the redone bars planned afresh (docs/REVISIONS.md).

Runs inside the runtime's transaction (``consumers.runtime``), which also holds the
``processed_events`` record, so everything below commits together or not at all. It reads and
writes only through the ports of the :class:`PlanningWork` it is given for the event (the
lifecycle ports of :mod:`lifecycle.ports`, plus the song rows and the move library); the
composition root builds the PostgreSQL one on the runtime's connection
(:mod:`consumers.blueprint_consumer.work`):

1. CAS ``queued -> analyzing``. A task already past ``analyzing`` means another delivery did
   the work: return without an effect. The CAS locks the task row until commit, so a concurrent
   duplicate waits here and then sees ``planned``: a task is planned once.
2. Path ``describe``: parse the description (Gemini or local); explicit constraints win.
   Without a song, choose one from the analysed catalog (the reason goes into the blueprint).
3. Resolve the song and its analysis (cached by content hash; see ``song_store``).
4. Candidate moves from the index cache: style and difficulty filters, energy preferred.
5. Plan; the planner validates the blueprint (choice reason included) with ``parse_blueprint``.

Steps 2, 4 and 5 are ``choreography.planner.pipeline``, the planning pipeline ``choreo plan``
runs too; this handler gives it its ports (the index cache, the library tables, the catalog)
and tags each step with its failure stage.
6. Store the blueprint (one per task), CAS ``analyzing -> planned``, ``blueprint.ready`` to
   the outbox.

Permanent errors (unknown song, undecodable audio, no moves or song fits) propagate; the
runtime's error mapping marks the task failed and queues ``task.failed`` in one place, at the
stage each step is tagged with: ``request`` (wrong event, description), ``analysis`` (song
download and analysis), ``planning`` (song choice, move search, planning, validation).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from choreography.planner.candidates import MoveCandidate
from choreography.planner.costs import PlannerSettings
from choreography.planner.description import ParsedDescription
from choreography.planner.gemini import GeminiDescriptionParser
from choreography.planner.pipeline import (
    MoveLoader,
    PlanFn,
    PlannedSong,
    PlanningPipeline,
    PlanningRequest,
    TextIndexSearch,
    Understood,
)
from choreography.planner.planner import plan_choreography
from choreography.planner.revision import RevisionInputs, plan_revision
from choreography.search.cache import MoveIndexCache
from choreography.search.text_embedding import TextEmbedder
from consumers.blueprint_consumer.song_store import ResolvedSong, SongRows
from consumers.runtime.failure_stage import failure_stage, tagged
from lifecycle.ports import TaskLock, UnitOfWork
from schemas.blueprint import Blueprint, parse_blueprint
from schemas.errors import InvalidInput, NotFound
from schemas.event_envelope import ChoreoEvent, Delivery, new_event
from schemas.events import (
    SOURCE_BLUEPRINT_CONSUMER,
    BlueprintReady,
    ChoreographyRequested,
    Constraints,
    RevisionRequested,
    SongRef,
)
from schemas.settings import BlueprintConsumerSettings
from schemas.task_state import STATE_ORDER, StaleState, State

log = logging.getLogger(__name__)

CONSUMER = "blueprint-consumer"


class PlanningWork(UnitOfWork, Protocol):
    """The ports of one request's transaction: the lifecycle ones, the songs, the library."""

    @property
    def songs(self) -> SongRows:
        """The ``songs`` table (the analysed catalog, songs by id and by content hash)."""
        ...

    @property
    def library(self) -> MoveLoader:
        """The move library: a searched move as the planner's candidate."""
        ...


class SongResolving(Protocol):
    """Resolves a request's song and its analysis (``song_store.SongResolver``)."""

    def resolve(self, songs: SongRows, ref: SongRef) -> ResolvedSong:
        """The song named by ``ref`` and its analysis, read through ``songs``."""
        ...


@dataclass(frozen=True)
class PlanningInputs:
    """What a request resolves to before planning (kept for logs and tests)."""

    constraints: Constraints | None
    parsed: ParsedDescription | None
    song: ResolvedSong
    choice_reason: str | None


class BlueprintConsumer:
    """The blueprint consumer's use case; resources are built once by the composition root."""

    def __init__(
        self,
        *,
        songs: SongResolving,
        moves: MoveIndexCache,
        embedder: TextEmbedder,
        settings: BlueprintConsumerSettings,
        gemini: GeminiDescriptionParser | None = None,
        plan: PlanFn = plan_choreography,
    ) -> None:
        self._songs, self._moves, self._embedder = songs, moves, embedder
        self._settings = settings
        self._pipeline = PlanningPipeline(
            candidate_moves=settings.candidate_moves,
            seed=settings.seed,
            gemini=gemini,
            plan=plan,
            planner=PlannerSettings.of(settings),
        )

    def handle(
        self, work: PlanningWork, event: ChoreoEvent, delivery: Delivery[ChoreoEvent]
    ) -> None:
        """Plan and store the blueprint for one request (see the module docstring)."""
        request = event.data
        if isinstance(request, RevisionRequested):
            self.revise(work, event, request)
            return
        if not isinstance(request, ChoreographyRequested):
            wrong = (
                "blueprint consumer handles choreography.requested and "
                f"choreography.revision.requested, not {event.type}"
            )
            raise tagged(InvalidInput(wrong), "request")
        context = {"task_id": request.task_id, "event_id": event.id}
        if not _start_analysis(work.tasks, request.task_id, event.id):
            log.info("task already past analyzing: duplicate request, no effect", extra=context)
            return
        inputs = self.planning_inputs(work, request)
        with failure_stage("planning"):
            candidates = self.candidates(work, request, inputs)
            blueprint = self._planned(request, inputs, candidates)
            _store(work, blueprint, event, inputs.song)
        log.info(
            "blueprint stored",
            extra={
                **context,
                "song_id": inputs.song.row.song_id,
                "analysis_cached": inputs.song.cached,
                "moves": len(blueprint.moves_used),
                "parser": inputs.parsed.source if inputs.parsed else None,
            },
        )

    def revise(self, work: PlanningWork, event: ChoreoEvent, request: RevisionRequested) -> None:
        """Plan and store a revision's blueprint: the parent's kept bars and newly planned
        redone bars (``choreography.planner.revision``; docs/REVISIONS.md)."""
        context = {
            "task_id": request.task_id,
            "event_id": event.id,
            "parent_task_id": request.parent_task_id,
        }
        if not _start_analysis(work.tasks, request.task_id, event.id):
            log.info("task already past analyzing: duplicate revision, no effect", extra=context)
            return
        with failure_stage("request"):
            parent = parent_blueprint(work, request.parent_task_id)
        with failure_stage("analysis"):
            # By the parent's audio URI, so the audio is hashed: the bytes the job will render.
            song = self._songs.resolve(work.songs, SongRef(audio_uri=parent.song.audio_uri))
        same_audio = parent.song.song_id is not None and song.row.song_id == parent.song.song_id
        with failure_stage("planning"):
            constraints = revision_constraints(parent, request)
            planning = PlanningRequest(request.task_id, constraints)
            candidates = self._pipeline.candidates(
                planning,
                Understood(constraints),
                TextIndexSearch(self._moves.get(), self._embedder),
                work.library,
            )
            revised = plan_revision(
                RevisionInputs(
                    parent,
                    request.keep,
                    request.redo,
                    request.task_id,
                    parent.video_output.model_copy(
                        update={"uri": f"{self._settings.video_prefix}/{request.task_id}.mp4"}
                    ),
                    same_audio=same_audio,
                    song_id=song.row.song_id,
                ),
                song.analysis,
                constraints,
                candidates,
                parent_moves(work.library, parent),
                seed=self._settings.seed,
                settings=self._pipeline.planner,
            )
            _store(work, revised.blueprint, event, song, detail=revised.detail())
        log.info(
            "revision stored",
            extra={
                **context,
                "kept_bars": revised.kept_bars,
                "redone_bars": revised.redone_bars,
                "same_audio": same_audio,
            },
        )

    def planning_inputs(self, work: PlanningWork, request: ChoreographyRequested) -> PlanningInputs:
        """Constraints (parsed and merged), the song (given or chosen) and its analysis."""
        with failure_stage("request"):
            understood = self._pipeline.understand(PlanningRequest.of(request))
        choice_reason = None
        ref = request.song
        if ref is None:
            with failure_stage("planning"):
                choice = self._pipeline.choose_song(work.songs.analysed, understood)
            ref, choice_reason = SongRef(song_id=choice.song.song_id), choice.reason
        with failure_stage("analysis"):
            song = self._songs.resolve(work.songs, ref)
        return PlanningInputs(understood.constraints, understood.parsed, song, choice_reason)

    def candidates(
        self, work: PlanningWork, request: ChoreographyRequested, inputs: PlanningInputs
    ) -> list[MoveCandidate]:
        """Moves for the planner: style and difficulty filtered, the requested energy first."""
        return self._pipeline.candidates(
            PlanningRequest.of(request),
            Understood(inputs.constraints, inputs.parsed),
            TextIndexSearch(self._moves.get(), self._embedder),
            work.library,
        )

    def _planned(
        self,
        request: ChoreographyRequested,
        inputs: PlanningInputs,
        candidates: Sequence[MoveCandidate],
    ) -> Blueprint:
        row = inputs.song.row
        song = PlannedSong(
            inputs.song.analysis,
            row.audio_uri,
            title=row.title or "Untitled",
            song_id=row.song_id,
            choice_reason=inputs.choice_reason,
        )
        return self._pipeline.blueprint(
            PlanningRequest.of(request),
            Understood(inputs.constraints, inputs.parsed),
            song,
            candidates,
            video_uri=f"{self._settings.video_prefix}/{request.task_id}.mp4",
        )


def _start_analysis(tasks: TaskLock, task_id: str, event_id: str) -> bool:
    """CAS queued -> analyzing; False when the task is already past analyzing (a duplicate)."""
    try:
        tasks.transition(task_id, State.QUEUED, State.ANALYZING, detail={"event_id": event_id})
    except StaleState as stale:
        if stale.actual is State.ANALYZING:
            return True  # left there by a process that died before committing its plan
        if STATE_ORDER[stale.actual] > STATE_ORDER[State.ANALYZING]:
            return False
        raise
    return True


def parent_blueprint(work: UnitOfWork, parent_task_id: str) -> Blueprint:
    """The parent task's stored blueprint; ``InvalidInput`` when it has none."""
    document = work.blueprints.read(parent_task_id)
    if document is None:
        raise InvalidInput(
            f"task {parent_task_id!r} has no blueprint: only a planned task can be revised"
        )
    return parse_blueprint(document)


def revision_constraints(parent: Blueprint, request: RevisionRequested) -> Constraints:
    """The parent's effective constraints with the revision's overrides (no duration: the
    window is the parent's)."""
    applied = parent.request.constraints
    overrides = request.constraints.model_dump(exclude_none=True) if request.constraints else {}
    return Constraints.model_validate(
        {
            "difficulty": applied.difficulty,
            "energy": applied.energy,
            "style": applied.style,
            "allow_repeats": applied.allow_repeats,
            **overrides,
        }
    )


def parent_moves(library: MoveLoader, parent: Blueprint) -> dict[str, MoveCandidate]:
    """The library's candidate for each move of the parent still in the library (their poses
    score the seams); a move gone from the library is left out (``plan_revision`` refuses to
    keep it)."""
    moves: dict[str, MoveCandidate] = {}
    for used in parent.moves_used:
        if used.move_id in moves:
            continue
        try:
            moves[used.move_id] = library.candidate(used.move_id, used.reason.search_score or 0.0)
        except NotFound:
            continue
    return moves


def _store(
    work: UnitOfWork,
    blueprint: Blueprint,
    event: ChoreoEvent,
    song: ResolvedSong,
    *,
    detail: Mapping[str, str] | None = None,
) -> None:
    """Blueprint row, CAS analyzing -> planned and ``blueprint.ready``, in the caller's tx;
    ``detail`` adds to the history row (a revision's parent and bars)."""
    task_id = blueprint.task_id
    document = blueprint.model_dump(mode="json")
    if not work.blueprints.insert(task_id, str(blueprint.schema_version), document):
        # Only reachable if a blueprint was stored without the task moving on: refuse to guess.
        raise StaleState(task_id, frozenset({State.ANALYZING}), State.PLANNED)
    work.tasks.transition(
        task_id,
        State.ANALYZING,
        State.PLANNED,
        song_id=song.row.song_id,
        detail={"event_id": event.id, "moves": len(blueprint.moves_used), **(detail or {})},
    )
    ready = BlueprintReady(
        task_id=task_id,
        schema_version=str(blueprint.schema_version),
        song_id=song.row.song_id,
        audio_uri=blueprint.song.audio_uri,
        duration_s=round(blueprint.song.window.length_s, 3),
        moves_count=len(blueprint.moves_used),
    )
    work.outbox.append(
        new_event(ready, source=SOURCE_BLUEPRINT_CONSUMER, traceparent=event.traceparent)
    )
