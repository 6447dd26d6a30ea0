"""The one planning pipeline: its rules, and ``choreo plan`` and the consumer choosing alike."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from blobstore.storage import file_sha256
from choreography.moves.bundle import storage_key
from choreography.moves.demo_library import demo_drafts
from choreography.moves.model import Move
from choreography.music.model import MusicAnalysis
from choreography.planner.candidates import MoveCandidate, candidate_from_move
from choreography.planner.offline import (
    MoveLibrary,
    OfflineRequest,
    plan_offline,
    text_index,
)
from choreography.planner.pipeline import (
    DEFAULT_SEARCH_TEXT,
    MIN_CANDIDATES_AT_ENERGY,
    NoMatchingMoves,
    PlannedSong,
    PlanningPipeline,
    PlanningRequest,
    TextIndexSearch,
    Understood,
    search_text,
)
from choreography.planner.song_choice import CatalogSong
from choreography.search.search import MoveFilter, SearchHit
from choreography.search.text_embedding import LocalTextEmbedder
from consumers.blueprint_consumer.handler import BlueprintConsumer
from consumers.blueprint_consumer.song_store import ResolvedSong
from schemas.blueprint import Blueprint, parse_blueprint
from schemas.event_envelope import Delivery, new_event
from schemas.events import SOURCE_PRODUCER, ChoreographyRequested, Constraints
from schemas.settings import BlueprintConsumerSettings
from tests.fakes import FakeDatabase, FakeLibrary, FakePlanningWork
from tests.fixtures.synthetic_library import SectionSpec, grid_analysis

DIM = 64
SEED = 3
CANDIDATE_MOVES = 24  # below the library's 48 moves, so the search breadth matters
SONG = [
    SectionSpec("intro", 1, 0.2),
    SectionSpec("verse", 2, 0.4),
    SectionSpec("chorus", 2, 0.9),
    SectionSpec("verse", 2, 0.4),
    SectionSpec("chorus", 2, 0.9),
]


@pytest.fixture(scope="module")
def moves() -> list[Move]:
    """The procedural demo library (48 moves, four styles, every level and energy)."""
    return [d.as_move(storage_key(d.style, d.move_id)) for d in demo_drafts()]


@pytest.fixture(scope="module")
def analysis() -> MusicAnalysis:
    """A 104 BPM verse-chorus song, built from a beat grid (no audio)."""
    return grid_analysis(104.0, SONG)


class ListSearch:
    """A ``MoveSearch`` answering from fixed hit lists, recording each query."""

    def __init__(self, strict: list[SearchHit], wide: list[SearchHit]) -> None:
        self.strict, self.wide = strict, wide
        self.queries: list[tuple[str, int, MoveFilter]] = []

    @property
    def size(self) -> int:
        return len(self.wide)

    def search(self, text: str, k: int, filters: MoveFilter) -> Sequence[SearchHit]:
        self.queries.append((text, k, filters))
        return (self.strict if filters.energies else self.wide)[:k]


class Loader:
    """A ``MoveLoader`` over moves in memory."""

    def __init__(self, moves: list[Move]) -> None:
        self.by_id = {m.move_id: m for m in moves}

    def candidate(self, move_id: str, score: float) -> MoveCandidate:
        return candidate_from_move(self.by_id[move_id], score)


def hit(move: Move, score: float) -> SearchHit:
    return SearchHit(move.move_id, score, move.style, move.difficulty, move.energy)


def test_search_text_is_constraint_words_keywords_then_description() -> None:
    """Style, difficulty, ``<energy> energy``, the parsed keywords, then the description."""
    pipeline = PlanningPipeline()
    request = PlanningRequest(
        "t", Constraints(difficulty="beginner"), "chill hip-hop with arm waves", describe=True
    )
    understood = pipeline.understand(request)
    assert understood.wanted.style == "hip-hop" and understood.wanted.energy == "low"
    assert understood.parsed is not None
    words = " ".join(understood.parsed.keywords)
    assert search_text(request, understood) == (
        f"hip-hop beginner low energy {words} chill hip-hop with arm waves"
    )
    assert search_text(PlanningRequest("t"), Understood(None)) == DEFAULT_SEARCH_TEXT


def test_explicit_constraints_win_and_a_song_path_description_is_not_parsed() -> None:
    """Path describe merges the parsed constraints under the explicit ones; path song never."""
    pipeline = PlanningPipeline()
    described = PlanningRequest("t", Constraints(style="pop"), "energetic hip-hop", describe=True)
    assert pipeline.understand(described).wanted.style == "pop"
    assert pipeline.understand(described).wanted.energy == "high"
    on_song_path = PlanningRequest("t", None, "energetic hip-hop", describe=False)
    assert pipeline.understand(on_song_path) == Understood(None, None)


def test_too_few_moves_at_the_energy_widens_after_the_strict_hits(moves: list[Move]) -> None:
    """Fewer than MIN_CANDIDATES_AT_ENERGY at the energy: other energies follow, no repeats."""
    hip_hop = [m for m in moves if m.style == "hip-hop" and m.difficulty == "beginner"]
    high = [m for m in hip_hop if m.energy == "high"]
    assert 0 < len(high) < MIN_CANDIDATES_AT_ENERGY
    search = ListSearch([hit(m, 0.9) for m in high], [hit(m, 0.5) for m in reversed(hip_hop)])
    wanted = Understood(Constraints(style="hip-hop", difficulty="beginner", energy="high"))
    chosen = PlanningPipeline(candidate_moves=7).candidates(
        PlanningRequest("t"), wanted, search, Loader(moves)
    )
    strict_ids = [m.move_id for m in high]
    assert [c.move_id for c in chosen][: len(high)] == strict_ids
    assert sorted(c.move_id for c in chosen) == sorted(m.move_id for m in hip_hop)
    assert [c.score for c in chosen][: len(high)] == [0.9] * len(high)
    assert [q[1] for q in search.queries] == [7, 7]
    assert search.queries[1][2] == MoveFilter.of("hip-hop", ["beginner"])


def test_enough_moves_at_the_energy_do_not_widen(moves: list[Move]) -> None:
    """MIN_CANDIDATES_AT_ENERGY moves at the energy: one search only."""
    at_energy = [hit(m, 0.5) for m in moves if m.energy == "low"][:MIN_CANDIDATES_AT_ENERGY]
    search = ListSearch(at_energy, [hit(m, 0.1) for m in moves])
    chosen = PlanningPipeline().candidates(
        PlanningRequest("t"), Understood(Constraints(energy="low")), search, Loader(moves)
    )
    assert len(chosen) == MIN_CANDIDATES_AT_ENERGY and len(search.queries) == 1


def test_no_move_passing_the_filters_is_no_matching_moves(moves: list[Move]) -> None:
    """An empty search names the filters and the index size."""
    search = ListSearch([], [])
    with pytest.raises(NoMatchingMoves, match="no move in the library matches style 'jazz'"):
        PlanningPipeline().candidates(
            PlanningRequest("t"), Understood(Constraints(style="jazz")), search, Loader(moves)
        )


def test_song_choice_uses_the_parsed_tempo_and_the_reason_lands_in_the_blueprint(
    moves: list[Move], analysis: MusicAnalysis
) -> None:
    """A chosen song's reason is in the planner's blueprint; the catalog is read on demand."""
    catalog = [
        CatalogSong("slow", "Slow", "songs/slow.wav", 120.0, 80.0, "hip-hop", 0.8),
        CatalogSong("fast", "Fast", "songs/fast.wav", 120.0, 150.0, "hip-hop", 0.8),
    ]
    pipeline = PlanningPipeline(seed=SEED)
    request = PlanningRequest("t-1", None, "fast energetic hip-hop", describe=True)
    understood = pipeline.understand(request)
    choice = pipeline.choose_song(lambda: catalog, understood)
    assert choice.song.song_id == "fast"
    index = text_index(moves, LocalTextEmbedder(DIM))
    search = TextIndexSearch(index, LocalTextEmbedder(DIM))
    candidates = pipeline.candidates(request, understood, search, Loader(moves))
    song = PlannedSong(analysis, "songs/fast.wav", "Fast", "fast", choice_reason=choice.reason)
    blueprint = pipeline.blueprint(request, understood, song, candidates, video_uri="videos/t.mp4")
    assert blueprint.song.choice_reason == choice.reason
    assert blueprint.request.path == "describe"
    assert blueprint.request.description == "fast energetic hip-hop"


def consumer_blueprint(moves: list[Move], analysis: MusicAnalysis, **request: Any) -> Blueprint:
    """The blueprint the consumer stores for a request, on the in-memory ports."""
    db = FakeDatabase()
    db.add_task("t-1")
    row = SimpleNamespace(song_id="song", title="Song", audio_uri="songs/song.wav")

    class Songs:
        def resolve(self, songs: Any, ref: Any) -> ResolvedSong:
            return ResolvedSong(row=row, analysis=analysis, cached=True)  # type: ignore[arg-type]

    embedder = LocalTextEmbedder(DIM)
    index = text_index(moves, embedder)

    class Index:
        def get(self) -> Any:
            return index

    consumer = BlueprintConsumer(
        songs=Songs(),  # type: ignore[arg-type]
        moves=Index(),  # type: ignore[arg-type]
        embedder=embedder,
        settings=BlueprintConsumerSettings(seed=SEED, candidate_moves=CANDIDATE_MOVES),
    )
    payload = ChoreographyRequested(
        task_id="t-1", requested_at=datetime.now(UTC), song={"song_id": "song"}, **request
    )
    event = new_event(payload, source=SOURCE_PRODUCER)
    work = FakePlanningWork(db, library=FakeLibrary(moves))
    consumer.handle(work, event, Delivery(event, transport="pubsub"))
    (stored,) = db.blueprints.values()
    return parse_blueprint(stored[1])


def cli_blueprint(
    tmp_path: Path,
    moves: list[Move],
    analysis: MusicAnalysis,
    description: str | None,
    constraints: Constraints,
) -> Blueprint:
    """The blueprint ``choreo plan`` writes for the same request (analysis from its cache)."""
    song = tmp_path / "song.wav"
    song.write_bytes(b"RIFF not really audio: the analysis comes from the cache")
    request = OfflineRequest(
        song=song,
        description=description,
        constraints=constraints,
        task_id="t-1",
        seed=SEED,
        candidate_moves=CANDIDATE_MOVES,
    )
    library = MoveLibrary(list(moves), "the test library", text_embedder=LocalTextEmbedder(DIM))
    blueprint, _ = plan_offline(request, library, {file_sha256(song): analysis})
    return blueprint


@pytest.mark.parametrize(
    "case",
    [
        (None, {"style": "hip-hop", "difficulty": "beginner", "energy": "high"}),
        (None, {"style": "pop", "energy": "low", "duration_s": 30}),
        (None, {}),
        ("energetic hip-hop for beginners, about 20 seconds", {}),
        ("chill salsa with smooth arm waves", {"difficulty": "intermediate"}),
    ],
    ids=["hip-hop-beginner-high", "pop-low-30s", "nothing", "describe", "describe-and-explicit"],
)
def test_choreo_plan_and_the_consumer_pick_the_same_moves(
    tmp_path: Path,
    moves: list[Move],
    analysis: MusicAnalysis,
    case: tuple[str | None, dict[str, Any]],
) -> None:
    """Same analysis, request and library: the same moves in the same order, placed alike."""
    description, constraints = case
    path = "describe" if description else "song"
    consumed = consumer_blueprint(
        moves,
        analysis,
        path=path,
        description=description,
        constraints=constraints or None,
    )
    planned = cli_blueprint(tmp_path, moves, analysis, description, Constraints(**constraints))
    assert [m.move_id for m in planned.moves_used] == [m.move_id for m in consumed.moves_used]
    assert planned.moves_used == consumed.moves_used  # times, speeds, mirrors, reasons too
    assert planned.request == consumed.request
    assert planned.song.window == consumed.song.window
