"""Planning without the bus (the imperative shell around the pure planner): ``choreo plan``.

Reads the move library from a bundle folder (``manifest.json`` + ``keypoints/*.npy``, as
``choreo moves demo-library`` writes it) or from PostgreSQL, analyses the song (or takes the
analysis from a cache), and runs the planning pipeline the blueprint consumer runs
(``pipeline``: description, search text, candidate moves, planner; with a sequence refiner when
one is given, see ``refinement``), the library serving as its move search and move loader.
"""

from __future__ import annotations

import json
import logging
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from blobstore.storage import file_sha256
from choreography.moves.bundle import MANIFEST_NAME, storage_key
from choreography.moves.model import STYLES, Move
from choreography.music.model import MusicAnalysis
from choreography.planner.candidates import MoveCandidate, candidate_from_move
from choreography.planner.costs import PlannerSettings
from choreography.planner.offline_storage import song_key
from choreography.planner.pipeline import (
    DEFAULT_CANDIDATE_MOVES,
    PlannedSong,
    PlanningPipeline,
    PlanningRequest,
    TextIndexSearch,
)
from choreography.planner.planner import plan_choreography
from choreography.planner.refinement import SequenceRefiner
from schemas.blueprint import Blueprint
from schemas.errors import ConfigurationError, InvalidInput, NotFound
from schemas.events import Constraints

if TYPE_CHECKING:
    from choreography.planner.gemini import GeminiDescriptionParser
    from choreography.search.search import MoveFilter, MoveIndex, SearchHit
    from choreography.search.text_embedding import TextEmbedder
    from schemas.settings import VectorSearchSettings

log = logging.getLogger(__name__)


@dataclass
class MoveLibrary:
    """Moves with their motion summaries and a text index, built once per process.

    The planning pipeline's move search (``size``, ``search``) and move loader (``candidate``).
    """

    moves: list[Move]
    source: str
    clip_files: dict[str, Path] = field(default_factory=dict)
    """Clip file of each move by id, for a bundle folder (a database library's are stored)."""
    text_embedder: TextEmbedder | None = None
    """The embedder of the text index; by default the one the settings configure."""
    _candidates: dict[str, MoveCandidate] = field(default_factory=dict, repr=False)
    _index: Any = field(default=None, repr=False)
    _embedder: Any = field(default=None, repr=False)

    def candidate(self, move_id: str, score: float) -> MoveCandidate:
        """The planner candidate for a move (motion summary computed once) with ``score``
        (``NotFound`` if the library has no such move)."""
        if move_id not in self._candidates:
            move = next((m for m in self.moves if m.move_id == move_id), None)
            if move is None:
                raise NotFound(f"move {move_id!r} is not in the library")
            self._candidates[move_id] = candidate_from_move(move, 0.0)
        return replace(self._candidates[move_id], score=score)

    def all_candidates(self) -> dict[str, MoveCandidate]:
        """Every move as a candidate (score 0), by move id: what the quality figures need."""
        return {m.move_id: self.candidate(m.move_id, 0.0) for m in self.moves}

    @property
    def size(self) -> int:
        """How many moves the library holds."""
        return len(self.moves)

    def search(self, text: str, k: int, filters: MoveFilter) -> Sequence[SearchHit]:
        """At most ``k`` moves passing ``filters``, ranked by text similarity to ``text``."""
        return TextIndexSearch(*self._text_index()).search(text, k, filters)

    def _text_index(self) -> tuple[Any, Any]:
        if self._index is None:
            from choreography.search.text_embedding import (  # noqa: PLC0415
                text_embedder_from_settings,
            )
            from schemas.settings import VectorSearchSettings  # noqa: PLC0415

            settings = VectorSearchSettings()
            embedder = self.text_embedder or text_embedder_from_settings(settings)
            self._index, self._embedder = text_index(self.moves, embedder, settings), embedder
        return self._index, self._embedder


def text_index(
    moves: Sequence[Move], embedder: TextEmbedder, settings: VectorSearchSettings | None = None
) -> MoveIndex:
    """A move index over the moves' text embeddings (``move_text``), as the library stores them."""
    from choreography.search.embeddings import move_text  # noqa: PLC0415
    from choreography.search.move_matrix import MoveMatrix  # noqa: PLC0415
    from choreography.search.search import MoveIndex  # noqa: PLC0415
    from schemas.settings import VectorSearchSettings  # noqa: PLC0415

    matrix = embedder.embed([move_text(m) for m in moves])
    data = MoveMatrix(
        kind="text",
        space=embedder.space,
        ids=np.array([m.move_id for m in moves]),
        styles=np.array([m.style for m in moves]),
        difficulties=np.array([m.difficulty for m in moves]),
        energies=np.array([m.energy for m in moves]),
        matrix=np.ascontiguousarray(matrix, dtype=np.float32),
        library_version=0,
    )
    return MoveIndex(data, settings or VectorSearchSettings())


def library_from_folder(folder: Path) -> MoveLibrary:
    """Read a move bundle folder; clip URIs are the storage keys ``choreo moves import`` uses."""
    manifest = folder / MANIFEST_NAME
    try:
        document = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{manifest}: cannot read the move library manifest: {exc}") from None
    entries = document.get("moves") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise InvalidInput(f"{manifest}: expected an object with a non-empty 'moves' list")
    moves = [_move_from_entry(folder, i, entry) for i, entry in enumerate(entries)]
    clips = {
        move.move_id: folder / str(entry["clip"])
        for move, entry in zip(moves, entries, strict=True)
        if isinstance(entry.get("clip"), str)
    }
    return MoveLibrary(moves, str(folder), clips)


def _move_from_entry(folder: Path, index: int, entry: object) -> Move:
    where = f"{folder / MANIFEST_NAME}: moves[{index}]"
    if not isinstance(entry, dict):
        raise InvalidInput(f"{where}: expected an object")
    try:
        keypoints = np.load(folder / str(entry["keypoints"]), allow_pickle=False)
        return Move(
            move_id=entry["move_id"],
            name=entry["name"],
            description=entry.get("description", ""),
            style=entry["style"],
            difficulty=entry["difficulty"],
            energy=entry["energy"],
            tempo_bpm=entry["tempo_bpm"],
            counts=entry["counts"],
            clip_uri=storage_key(entry["style"], entry["move_id"]),
            tags=tuple(entry.get("tags", ())),
            keypoints=keypoints,
            fps=entry["fps"],
        )
    except KeyError as exc:
        raise InvalidInput(f"{where}: missing field {exc.args[0]!r}") from None
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{where}: cannot read keypoints: {exc}") from None
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: {exc}") from None


def library_from_database(database_url: str) -> MoveLibrary:
    """Every move in the PostgreSQL library at ``database_url``."""
    from choreography.moves.library_store import list_moves  # noqa: PLC0415
    from lifecycle.database import connect  # noqa: PLC0415

    if not database_url:
        raise ConfigurationError(
            "DATABASE_URL is not set: give --library DIR or point DATABASE_URL at the library"
        )
    with connect(database_url) as conn:
        moves = list_moves(conn)
    if not moves:
        raise InvalidInput("the move library database has no moves (import some first)")
    return MoveLibrary(moves, "the database library")


def canonical_style(style: str | None) -> str | None:
    """The library's spelling of a style (``hiphop`` -> ``hip-hop``), or ``InvalidInput``."""
    if style is None:
        return None
    wanted = style.lower().replace("-", "").replace("_", "")
    for known in STYLES:
        if known.replace("-", "") == wanted:
            return known
    raise InvalidInput(f"style: unknown style {style!r}; one of {list(STYLES)}")


def analyse_song(
    song: Path, cache: MutableMapping[str, MusicAnalysis] | None = None
) -> MusicAnalysis:
    """The song's analysis, from ``cache`` (keyed by content hash) when it is there."""
    from choreography.music.analysis import analyse_file  # noqa: PLC0415 - librosa is heavy
    from schemas.settings import SongSettings  # noqa: PLC0415

    if not song.is_file():
        raise InvalidInput(f"song file {song} does not exist or is not a file")
    key = file_sha256(song) if cache is not None else ""
    if cache is not None and key in cache:
        return cache[key]
    analysis = analyse_file(song, max_seconds=SongSettings().max_seconds)
    if cache is not None:
        cache[key] = analysis
    return analysis


@dataclass(frozen=True)
class OfflineRequest:
    """What ``choreo plan`` was asked for."""

    song: Path
    description: str | None = None
    constraints: Constraints = field(default_factory=Constraints)
    task_id: str = "offline"
    audio_uri: str | None = None
    """The song's URI in the blueprint; by default its content key (``song_key``)."""
    video_uri: str | None = None
    seed: int = 0
    candidate_moves: int = DEFAULT_CANDIDATE_MOVES
    """Moves taken per search, as the consumer's ``BLUEPRINT_CANDIDATE_MOVES``."""
    planner: PlannerSettings = field(default_factory=PlannerSettings)
    """The planner's weights, as the consumer's (``PLANNER_VARIETY_PENALTY``)."""


def plan_offline(
    request: OfflineRequest,
    library: MoveLibrary,
    analysis_cache: MutableMapping[str, MusicAnalysis] | None = None,
    refiner: SequenceRefiner | None = None,
    gemini: GeminiDescriptionParser | None = None,
) -> tuple[Blueprint, MusicAnalysis]:
    """Analyse, search and plan one request; return the blueprint and the analysis used.

    The planning pipeline of the blueprint consumer: a ``--describe`` request is path
    ``describe`` (parsed by ``gemini`` when given, else locally), and the same song analysis,
    constraints and library give the consumer's moves in the consumer's order.
    """
    # The command line's spelling of a style (``hiphop``) is the library's (``hip-hop``).
    style = canonical_style(request.constraints.style)
    planning = PlanningRequest(
        task_id=request.task_id,
        constraints=request.constraints.model_copy(update={"style": style}),
        description=request.description or None,
        describe=bool(request.description),
    )
    pipeline = PlanningPipeline(
        candidate_moves=request.candidate_moves,
        seed=request.seed,
        gemini=gemini,
        plan=partial(plan_choreography, refiner=refiner),
        planner=request.planner,
    )
    understood = pipeline.understand(planning)
    audio_uri = request.audio_uri or song_key(request.song)
    analysis = analyse_song(request.song, analysis_cache)
    candidates = pipeline.candidates(planning, understood, library, library)
    song = PlannedSong(analysis, audio_uri, title=request.song.stem[:200] or "Untitled")
    blueprint = pipeline.blueprint(
        planning,
        understood,
        song,
        candidates,
        video_uri=request.video_uri or f"videos/{request.task_id}.mp4",
    )
    return blueprint, analysis
