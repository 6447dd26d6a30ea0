"""``choreo plan`` and the blueprint consumer, each on its real path, pick the same moves.

The consumer plans from PostgreSQL (move index cache, library tables, analysis cache) through
the runtime's EventProcessor; ``choreo plan`` from a move bundle folder of the same moves. Same
song, analysis, request, seed and search breadth: the same moves in the same order.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import ConnectionPool
from typer.testing import CliRunner

from blobstore.storage import LocalStorage, file_sha256
from choreo_cli.demo.song_synth import synthesize_song, write_wav
from choreo_cli.main import app
from choreography.moves.bundle import storage_key, write_bundle
from choreography.moves.demo_library import demo_drafts
from choreography.moves.library_store import upsert_move
from choreography.moves.render import ClipFormat
from choreography.music.analysis import analyse_file
from choreography.search.embedding_store import save_many_embeddings
from choreography.search.embeddings import embed_moves
from choreography.search.text_embedding import LocalTextEmbedder
from consumers.blueprint_consumer.app import as_event_handler, build_blueprint_consumer
from consumers.blueprint_consumer.song_store import register_song, save_analysis
from consumers.runtime.handler import EventProcessor
from lifecycle.task_store import create_task
from schemas.blueprint import Blueprint, parse_blueprint
from schemas.event_envelope import Delivery, new_event
from schemas.events import SOURCE_PRODUCER, ChoreographyRequested
from schemas.settings import BlueprintConsumerSettings, VectorSearchSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SONG_URI = "songs/groove.wav"
SONG_ID = "groove"
DIM = 64
SEED = 3
CANDIDATE_MOVES = 24
STYLES = ("hip-hop", "pop")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthesized 104 BPM song in a storage root, and the moves as a bundle folder."""
    root = tmp_path_factory.mktemp("paths")
    (root / "storage/songs").mkdir(parents=True)
    song = synthesize_song(
        104.0, structure=(("intro", 2), ("verse", 4), ("chorus", 4), ("verse", 4), ("chorus", 4))
    )
    write_wav(root / "storage" / SONG_URI, song.y, song.sr)
    drafts = [d for d in demo_drafts() if d.style in STYLES]
    # Small clips: planning reads only the manifest and keypoints.
    write_bundle(root / "library", drafts, clip_format=ClipFormat(64, 64, 12))
    return root


@pytest.fixture
def processor(pool: ConnectionPool, workdir: Path) -> EventProcessor:
    """The consumer as deployed, on a database holding the moves and the analysed song."""
    moves = [d.as_move(storage_key(d.style, d.move_id)) for d in demo_drafts()]
    moves = [m for m in moves if m.style in STYLES]
    song = workdir / "storage" / SONG_URI
    with pool.connection() as conn:
        for move in moves:
            upsert_move(conn, move)
        vectors = embed_moves(moves, LocalTextEmbedder(DIM))
        save_many_embeddings(conn, {m.move_id: v for m, v in zip(moves, vectors, strict=True)})
        row = register_song(
            conn, audio_uri=SONG_URI, content_sha256=file_sha256(song), title="Groove"
        )
        save_analysis(conn, row.song_id, analyse_file(song))
        conn.execute("UPDATE songs SET song_id = %s", (SONG_ID,))
    consumer = build_blueprint_consumer(
        pool,
        LocalStorage(workdir / "storage"),
        settings=BlueprintConsumerSettings(seed=SEED, candidate_moves=CANDIDATE_MOVES),
        search=VectorSearchSettings(local_text_embedding_dim=DIM),
    )
    return EventProcessor(pool, as_event_handler(consumer))


def consumer_blueprint(pool: ConnectionPool, processor: EventProcessor, **fields: Any) -> Blueprint:
    """Process one request for the song; the blueprint the consumer stored."""
    payload = ChoreographyRequested(
        task_id="t-paths", requested_at=datetime.now(UTC), song={"song_id": SONG_ID}, **fields
    )
    with pool.connection() as conn:
        create_task(conn, payload.task_id, payload.path, payload.model_dump(mode="json"))
    verdict = processor.process(Delivery(new_event(payload, source=SOURCE_PRODUCER), "pubsub"))
    assert verdict.outcome == "processed", verdict
    with pool.connection() as conn:
        rows = conn.execute("SELECT document FROM blueprints WHERE task_id = 't-paths'").fetchall()
    return parse_blueprint(rows[0][0])


def cli_blueprint(workdir: Path, monkeypatch: pytest.MonkeyPatch, *options: str) -> Blueprint:
    """``choreo plan`` on the same song and the bundle folder, as the same deployment is set."""
    monkeypatch.setenv("LOCAL_TEXT_EMBEDDING_DIM", str(DIM))
    monkeypatch.setenv("BLUEPRINT_CANDIDATE_MOVES", str(CANDIDATE_MOVES))
    monkeypatch.setenv("STORAGE_BACKEND", "local")
    monkeypatch.setenv("STORAGE_ROOT", str(workdir / "cli-storage"))
    out = workdir / "cli.json"
    result = CliRunner().invoke(
        app,
        ["plan", "--song", str(workdir / "storage" / SONG_URI), "--library",
         str(workdir / "library"), "--seed", str(SEED), "--out", str(out), *options],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return parse_blueprint(out.read_bytes())


@pytest.mark.parametrize(
    "case",
    [
        ({"path": "song", "constraints": {"style": "hip-hop", "difficulty": "beginner",
                                          "energy": "high"}},
         ["--style", "hip-hop", "--difficulty", "beginner", "--energy", "high"]),
        ({"path": "describe", "description": "chill pop for beginners, about 20 seconds"},
         ["--describe", "chill pop for beginners, about 20 seconds"]),
    ],
    ids=["constraints", "describe"],
)  # fmt: skip
def test_choreo_plan_picks_the_consumers_moves(
    pool: ConnectionPool,
    processor: EventProcessor,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: tuple[dict[str, Any], list[str]],
) -> None:
    """The same move ids in the same order, and the same constraints and window."""
    fields, options = case
    consumed = consumer_blueprint(pool, processor, **fields)
    planned = cli_blueprint(workdir, monkeypatch, *options)
    assert [m.move_id for m in planned.moves_used] == [m.move_id for m in consumed.moves_used]
    assert planned.request == consumed.request
    assert planned.song.window == consumed.song.window
