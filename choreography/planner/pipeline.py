"""The one planning pipeline: a request and a song's analysis -> candidate moves -> a blueprint.

The blueprint consumer (``consumers/blueprint_consumer/handler.py``) and ``choreo plan``
(``offline.py``) both run these steps, in this order, each with its own ports, so the same
request, song analysis and move library give the same moves in the same order on both:

1. ``understand``: path ``describe`` parses the description (Gemini when given a parser, else
   the local parser); explicit constraints win field by field.
2. ``choose_song``: a request without a song gets the catalog song that fits best, and why
   (the reason goes into the blueprint's ``song.choice_reason``).
3. ``candidates``: a text search of the move index (``search_text``: the constraint words, the
   parsed keywords and the description). Style and difficulty (a ceiling) are hard filters;
   the requested energy is asked for first, and with fewer than ``MIN_CANDIDATES_AT_ENERGY``
   moves at that energy, moves of any energy are added after them. No move at all:
   ``NoMatchingMoves``.
4. ``blueprint``: the planner, given the choice reason, so the blueprint it validates is the one
   stored: it is parsed once.

Pure: no I/O at import; searching the index, loading moves and reading the song catalog happen
through the ports the caller gives (``MoveSearch``, ``MoveLoader``, ``SongCatalog``). The
caller tags each step with its failure stage (the consumer) or not (``choreo plan``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from choreography.moves.model import difficulties_up_to
from choreography.music.model import MusicAnalysis
from choreography.planner.candidates import MoveCandidate
from choreography.planner.costs import PlannerSettings
from choreography.planner.description import ParsedDescription, merge_constraints, parse_description
from choreography.planner.output import video_output
from choreography.planner.planner import plan_choreography
from choreography.planner.song_choice import CatalogSong, SongChoice, choose_song
from choreography.search.search import MoveFilter, SearchHit
from schemas.blueprint import Blueprint
from schemas.errors import NotFound
from schemas.events import ChoreographyRequested, Constraints
from schemas.settings import BlueprintConsumerSettings

if TYPE_CHECKING:
    from choreography.planner.gemini import GeminiDescriptionParser
    from choreography.search.search import MoveIndex
    from choreography.search.text_embedding import TextEmbedder

# Below this many moves at the requested energy, moves of other energies are added: the planner
# follows the song's energy curve and needs more than one or two moves to vary.
MIN_CANDIDATES_AT_ENERGY = 6
# How many windows on a candidate's continuations are added (see ``with_continuations``).
CONTINUATION_DEPTH = 4
# The search text when a request names nothing at all.
DEFAULT_SEARCH_TEXT = "dance move"
# How many moves one search takes: the default of the consumer's ``BLUEPRINT_CANDIDATE_MOVES``.
DEFAULT_CANDIDATE_MOVES: int = BlueprintConsumerSettings.model_fields["candidate_moves"].default

PlanFn = Callable[..., Blueprint]
"""``plan_choreography`` or a stand-in with its signature (e.g. with a refiner bound)."""

SongCatalog = Callable[[], Sequence[CatalogSong]]
"""The analysed songs a request without a song is matched against (read only when needed)."""


class NoMatchingMoves(NotFound):
    """The move library has no move passing the request's style and difficulty filters."""

    error_code = "no-matching-moves"


class MoveSearch(Protocol):
    """Ranks the library's moves by text similarity, within a filter (the move index)."""

    @property
    def size(self) -> int:
        """How many moves the index holds (for the error message)."""
        ...

    def search(self, text: str, k: int, filters: MoveFilter) -> Sequence[SearchHit]:
        """At most ``k`` moves passing ``filters``, best first."""
        ...


class MoveLoader(Protocol):
    """Loads a move by id as the planner's candidate, with its search score."""

    def candidate(self, move_id: str, score: float) -> MoveCandidate:
        """The planner candidate of ``move_id`` carrying ``score``."""
        ...


@dataclass(frozen=True)
class TextIndexSearch:
    """``MoveSearch`` over a loaded text-vector ``MoveIndex`` and the embedder of its space."""

    index: MoveIndex
    embedder: TextEmbedder

    @property
    def size(self) -> int:
        """The number of moves in the index."""
        return self.index.data.size

    def search(self, text: str, k: int, filters: MoveFilter) -> Sequence[SearchHit]:
        """``search_by_text`` on the index."""
        from choreography.search.move_search import search_by_text  # noqa: PLC0415

        return search_by_text(self.index, self.embedder, text, k, filters).hits


@dataclass(frozen=True)
class PlanningRequest:
    """What is asked for, whichever way it came: a ``choreography.requested``, ``choreo plan``."""

    task_id: str
    constraints: Constraints | None = None
    description: str | None = None
    describe: bool = False
    """Path ``describe``: the description is parsed into constraints and recorded in the
    blueprint. On path ``song`` a description only adds to the search text."""

    @classmethod
    def of(cls, request: ChoreographyRequested) -> PlanningRequest:
        """The planning view of a ``choreography.requested`` event."""
        return cls(
            task_id=request.task_id,
            constraints=request.constraints,
            description=request.description,
            describe=request.path == "describe",
        )


@dataclass(frozen=True)
class Understood:
    """The request's constraints after the description was read, and what the parser saw."""

    constraints: Constraints | None
    parsed: ParsedDescription | None = None

    @property
    def wanted(self) -> Constraints:
        """The constraints, empty when none were given."""
        return self.constraints or Constraints()


@dataclass(frozen=True)
class PlannedSong:
    """The song a blueprint is planned on: its analysis and what the blueprint says about it."""

    analysis: MusicAnalysis
    audio_uri: str
    title: str = "Untitled"
    song_id: str | None = None
    choice_reason: str | None = None


@dataclass(frozen=True)
class PlanningPipeline:
    """The steps above, configured once per process (the ports are given per call)."""

    candidate_moves: int = DEFAULT_CANDIDATE_MOVES
    seed: int = 0
    gemini: GeminiDescriptionParser | None = None
    plan: PlanFn = plan_choreography
    planner: PlannerSettings = field(default_factory=PlannerSettings)
    """The planner's weights (``PlannerSettings.of`` the consumer's settings in a deployable)."""

    def understand(self, request: PlanningRequest) -> Understood:
        """Constraints with the description's parsed in (path ``describe``; explicit win)."""
        if not request.describe or request.description is None:
            return Understood(request.constraints)
        parsed = parse_description(request.description, gemini=self.gemini)
        return Understood(merge_constraints(request.constraints, parsed.constraints), parsed)

    def choose_song(self, catalog: SongCatalog, understood: Understood) -> SongChoice:
        """The catalog song that fits the request best, and why (``NoSongFits`` if none)."""
        tempo_range = understood.parsed.tempo_range() if understood.parsed else None
        return choose_song(catalog(), understood.wanted, tempo_range)

    def candidates(
        self,
        request: PlanningRequest,
        understood: Understood,
        search: MoveSearch,
        moves: MoveLoader,
    ) -> list[MoveCandidate]:
        """Moves for the planner: style and difficulty filtered, the requested energy first."""
        wanted = understood.wanted
        text = search_text(request, understood)
        k = self.candidate_moves
        levels = difficulties_up_to(wanted.difficulty)  # a level is a ceiling, see the planner
        strict = MoveFilter.of(wanted.style, levels, wanted.energy)
        hits = list(search.search(text, k, strict))
        if wanted.energy and len(hits) < MIN_CANDIDATES_AT_ENERGY:
            wider = MoveFilter.of(wanted.style, levels)
            hits = merged_hits(hits, search.search(text, k, wider))
        if not hits:
            raise NoMatchingMoves(
                f"no move in the library matches {_filters(wanted)} "
                f"({search.size} moves in the index)"
            )
        found = [moves.candidate(hit.move_id, hit.score) for hit in hits]
        return with_continuations(found, moves, levels)

    def blueprint(
        self,
        request: PlanningRequest,
        understood: Understood,
        song: PlannedSong,
        candidates: Sequence[MoveCandidate],
        *,
        video_uri: str,
    ) -> Blueprint:
        """The planned blueprint, validated once by the planner, choice reason included."""
        constraints = understood.constraints
        spec = constraints.output if constraints else None
        return self.plan(
            song.analysis,
            constraints,
            candidates,
            task_id=request.task_id,
            audio_uri=song.audio_uri,
            output=video_output(video_uri, spec),
            seed=self.seed,
            title=song.title,
            song_id=song.song_id,
            description=request.description if request.describe else None,
            choice_reason=song.choice_reason,
            settings=self.planner,
        )


def search_text(request: PlanningRequest, understood: Understood) -> str:
    """The move search text: constraint words, parsed keywords, then the description."""
    wanted = understood.wanted
    words = [
        wanted.style or "",
        wanted.difficulty or "",
        f"{wanted.energy} energy" if wanted.energy else "",
    ]
    if understood.parsed is not None:
        words += list(understood.parsed.keywords)
    if request.description:
        words.append(request.description)
    return " ".join(w for w in words if w).strip() or DEFAULT_SEARCH_TEXT


def merged_hits(first: Sequence[SearchHit], more: Sequence[SearchHit]) -> list[SearchHit]:
    """``first``, then the hits of ``more`` not already in it, in order."""
    seen = {hit.move_id for hit in first}
    return [*first, *(hit for hit in more if hit.move_id not in seen)]


def with_continuations(
    found: Sequence[MoveCandidate], moves: MoveLoader, levels: Sequence[str] | None
) -> list[MoveCandidate]:
    """``found`` and the windows that continue each in the capture it was cut from.

    A move cut from a longer capture names the window after it (``next:<id>`` tag). Adding up
    to ``CONTINUATION_DEPTH`` of those (same style, difficulty within ``levels`` if given, with
    the score of the move they continue) lets the planner dance a capture on across a cut, where
    the pose matches exactly, instead of jumping between captures. A missing window is skipped.
    """
    chosen = {candidate.move_id: candidate for candidate in found}
    frontier = list(found)
    for _ in range(CONTINUATION_DEPTH):
        following = []
        for candidate in frontier:
            next_id = candidate.next_move_id
            if next_id is None or next_id in chosen:
                continue
            try:
                after = moves.candidate(next_id, candidate.score)
            except NotFound:
                continue
            if after.style == candidate.style and (levels is None or after.difficulty in levels):
                chosen[next_id] = after
                following.append(after)
        frontier = following
    return list(chosen.values())


def _filters(wanted: Constraints) -> str:
    named = [f"{name} {value!r}" for name, value in (("style", wanted.style),
             ("difficulty", wanted.difficulty)) if value]  # fmt: skip
    return " and ".join(named) if named else "any style and difficulty"
