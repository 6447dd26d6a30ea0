"""The blueprint consumer on real PostgreSQL, through the runtime's EventProcessor."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
import soundfile
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool
from starlette.testclient import TestClient

from blobstore.storage import LocalStorage, file_sha256
from choreo_cli.demo.song_synth import synthesize_song, write_wav
from choreography.moves.bundle import storage_key
from choreography.moves.demo_library import demo_drafts
from choreography.moves.library_store import upsert_move
from choreography.music.analysis import analyse_file
from choreography.music.model import MusicAnalysis
from choreography.planner.planner import plan_choreography
from choreography.search.embedding_store import save_many_embeddings
from choreography.search.embeddings import embed_moves
from choreography.search.text_embedding import LocalTextEmbedder
from consumers.blueprint_consumer.app import as_event_handler, build_blueprint_consumer
from consumers.blueprint_consumer.bounded_analysis import BoundedAnalyser
from consumers.blueprint_consumer.song_store import register_song, save_analysis
from consumers.runtime.handler import EventProcessor
from consumers.runtime.http_app import create_app
from delivery.error_mapping import Outcome
from lifecycle.outbox import outbox_rows
from lifecycle.task_store import create_task, get_task, task_history
from producers.requests import RequestRejected
from producers.revisions import submit_revision
from schemas.blueprint import Blueprint, parse_blueprint
from schemas.event_codec import from_pubsub, to_http_binary
from schemas.event_envelope import ChoreoEvent, Delivery, new_event
from schemas.events import SOURCE_PRODUCER, ChoreographyRequested
from schemas.settings import BlueprintConsumerSettings, VectorSearchSettings
from schemas.task_state import State
from tests.fixtures.analysers import HANG_MARK, hangs_on_marked

pytestmark = pytest.mark.integration

SONG_URI = "songs/groove.wav"
SONG_ID = "groove"
DIM = 64


class Counting:
    """Wraps a function and counts its calls."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function, self.calls = function, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.function(*args, **kwargs)


@pytest.fixture(scope="module")
def song_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthesized 104 BPM song (about 40 s), written once for the module."""
    root = tmp_path_factory.mktemp("storage")
    (root / "songs").mkdir()
    song = synthesize_song(
        104.0, structure=(("intro", 2), ("verse", 4), ("chorus", 4), ("verse", 4), ("chorus", 4))
    )
    return write_wav(root / SONG_URI, song.y, song.sr)


@pytest.fixture(scope="module")
def song_analysis(song_file: Path) -> MusicAnalysis:
    """The song's analysis, computed once for the module (the catalog's cached analysis)."""
    return analyse_file(song_file)


@pytest.fixture
def storage_root(tmp_path: Path, song_file: Path) -> Path:
    """A storage root holding the song and a text file pretending to be audio."""
    (tmp_path / "songs").mkdir()
    (tmp_path / SONG_URI).write_bytes(song_file.read_bytes())
    (tmp_path / "songs/notes.wav").write_text("these are my dance notes, not audio\n")
    return tmp_path


@pytest.fixture
def library(pool: ConnectionPool) -> None:
    """Hip-hop and pop demo moves with keypoints and local text embeddings."""
    moves = [d.as_move(storage_key(d.style, d.move_id)) for d in demo_drafts()]
    moves = [m for m in moves if m.style in ("hip-hop", "pop")]
    with pool.connection() as conn:
        for move in moves:
            upsert_move(conn, move)
        vectors = embed_moves(moves, LocalTextEmbedder(DIM))
        save_many_embeddings(conn, {m.move_id: v for m, v in zip(moves, vectors, strict=True)})


@pytest.fixture
def catalog(pool: ConnectionPool, storage_root: Path, song_analysis: MusicAnalysis) -> None:
    """The song in the catalog, analysed, with a style and energy for Path 2 song choice."""
    with pool.connection() as conn:
        row = register_song(
            conn,
            audio_uri=SONG_URI,
            content_sha256=file_sha256(storage_root / SONG_URI),
            title="Groove",
        )
        save_analysis(conn, row.song_id, song_analysis)
        conn.execute("UPDATE songs SET song_id = %s, style = 'hip-hop', energy = 0.8", (SONG_ID,))


class Consumer:
    """The consumer wired as in production, with counted analyser and planner."""

    def __init__(
        self, pool: ConnectionPool, storage_root: Path, analyse: Callable[..., Any] = analyse_file
    ) -> None:
        self.pool = pool
        self.analyse = Counting(analyse)
        self.plan = Counting(plan_choreography)
        consumer = build_blueprint_consumer(
            pool,
            LocalStorage(storage_root),
            settings=BlueprintConsumerSettings(seed=3, candidate_moves=24),
            search=VectorSearchSettings(local_text_embedding_dim=DIM),
            analyse=self.analyse,
            plan=self.plan,
        )
        self.processor = EventProcessor(pool, as_event_handler(consumer))

    def request(self, task_id: str, **fields: Any) -> Delivery[ChoreoEvent]:
        """Create the task like the producer does and return its event's delivery."""
        payload = ChoreographyRequested(task_id=task_id, requested_at=datetime.now(UTC), **fields)
        with self.pool.connection() as conn:
            create_task(conn, task_id, payload.path, payload.model_dump(mode="json"))
        return Delivery(new_event(payload, source=SOURCE_PRODUCER), transport="pubsub")

    def run(self, delivery: Delivery[ChoreoEvent]) -> Outcome:
        """Process one delivery; the outcome (the reason is printed for a failing test)."""
        verdict = self.processor.process(delivery)
        logging.getLogger(__name__).warning("verdict: %s", verdict)
        return verdict.outcome


@pytest.fixture
def consumer(pool: ConnectionPool, storage_root: Path, library: None, catalog: None) -> Consumer:
    return Consumer(pool, storage_root)


def events(conn: psycopg.Connection, task_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(CloudEvent type, data) of each outbox row the consumer wrote for the task (a revision's
    own event, queued by the producer, is left out)."""
    return [
        (row.attributes["ce-type"], json.loads(row.data))
        for row in outbox_rows(conn)
        if row.ordering_key == task_id and row.attributes["ce-source"] != SOURCE_PRODUCER
    ]


def stored_blueprint(conn: psycopg.Connection, task_id: str) -> Blueprint:
    """The task's blueprint, validated again as the job would."""
    rows = conn.execute("SELECT document FROM blueprints WHERE task_id = %s", (task_id,)).fetchall()
    assert len(rows) == 1
    return parse_blueprint(rows[0][0])


def test_song_path_stores_one_valid_blueprint(consumer: Consumer) -> None:
    """Path 1: a catalog song ends in a planned task, a valid blueprint and one blueprint.ready."""
    delivery = consumer.request(
        "t-song", path="song", song={"song_id": SONG_ID},
        constraints={"style": "hip-hop", "difficulty": "beginner", "duration_s": 20},
    )  # fmt: skip
    assert consumer.run(delivery) is Outcome.PROCESSED
    with consumer.pool.connection() as conn:
        blueprint = stored_blueprint(conn, "t-song")
        assert get_task(conn, "t-song").state is State.PLANNED
        sent = events(conn, "t-song")
    assert blueprint.request.path == "song" and blueprint.song.song_id == SONG_ID
    assert blueprint.song.audio_uri == SONG_URI and blueprint.song.choice_reason is None
    assert {m.move_id.split("-")[0] for m in blueprint.moves_used} == {"hip"}
    assert [kind for kind, _ in sent] == ["com.choreo.blueprint.ready.v1"]
    assert sent[0][1]["moves_count"] == len(blueprint.moves_used)


def test_describe_path_chooses_the_song_and_says_why(consumer: Consumer) -> None:
    """Path 2 without a song: the catalog song is chosen, the reason stored, one event queued."""
    delivery = consumer.request(
        "t-describe", path="describe",
        description="energetic hip-hop for beginners, about 20 seconds",
    )  # fmt: skip
    assert consumer.run(delivery) is Outcome.PROCESSED
    with consumer.pool.connection() as conn:
        blueprint = stored_blueprint(conn, "t-describe")
        sent = events(conn, "t-describe")
    assert blueprint.request.path == "describe"
    assert blueprint.request.constraints.style == "hip-hop"
    assert blueprint.request.constraints.difficulty == "beginner"
    assert "Groove" in (blueprint.song.choice_reason or "")
    assert [kind for kind, _ in sent] == ["com.choreo.blueprint.ready.v1"]


def test_duplicates_do_not_plan_twice(consumer: Consumer) -> None:
    """A redelivered event and a second event for a planned task change nothing."""
    delivery = consumer.request("t-dup", path="song", song={"song_id": SONG_ID})
    assert consumer.run(delivery) is Outcome.PROCESSED
    assert consumer.run(delivery) is Outcome.DUPLICATE
    again = Delivery(new_event(delivery.event.data, source=SOURCE_PRODUCER), transport="pubsub")
    assert consumer.run(again) is Outcome.PROCESSED
    assert consumer.plan.calls == 1
    with consumer.pool.connection() as conn:
        assert len(events(conn, "t-dup")) == 1
        stored_blueprint(conn, "t-dup")


def test_analysis_is_cached_by_content_and_recomputed_when_stale(consumer: Consumer) -> None:
    """The same audio (by id or by URI) is analysed once; an older analysis version is redone."""
    with consumer.pool.connection() as conn:
        conn.execute("UPDATE songs SET analysis = NULL, analysis_version = NULL")
    for task_id, song in (("t-a", {"song_id": SONG_ID}), ("t-b", {"audio_uri": SONG_URI})):
        assert consumer.run(consumer.request(task_id, path="song", song=song)) is Outcome.PROCESSED
    assert consumer.analyse.calls == 1 and consumer.plan.calls == 2
    with consumer.pool.connection() as conn:
        assert stored_blueprint(conn, "t-b").song.song_id == SONG_ID
        conn.execute("UPDATE songs SET analysis_version = analysis_version - 1")
    assert consumer.run(consumer.request("t-c", path="song", song={"song_id": SONG_ID})) is (
        Outcome.PROCESSED
    )
    assert consumer.analyse.calls == 2
    with consumer.pool.connection() as conn:
        row = conn.execute("SELECT analysis FROM songs WHERE song_id = %s", (SONG_ID,)).fetchone()
    assert row is not None and MusicAnalysis.model_validate(row[0]).tempo_bpm > 0


@pytest.mark.parametrize(
    ("fields", "code", "reason", "stage"),
    [
        ({"path": "song", "song": {"song_id": "nope"}}, "unknown-song", "no song with song_id",
         "analysis"),
        ({"path": "song", "song": {"audio_uri": "songs/notes.wav"}}, "undecodable-audio",
         "cannot be used", "analysis"),
        ({"path": "song", "song": {"song_id": SONG_ID}, "constraints": {"style": "jazz"}},
         "no-matching-moves", "no move in the library matches style 'jazz'", "planning"),
        ({"path": "describe", "description": "slow salsa, 3 minutes"}, "no-song-fits",
         "no catalog song fits", "planning"),
        ({"path": "describe", "description": "hip-hop for 20 minutes"}, "duration-out-of-range",
         "description asks for 1200 s", "request"),
    ],
    ids=["unknown-song", "text-file-as-wav", "no-moves", "no-song-fits", "too-long"],
)  # fmt: skip
def test_bad_requests_end_as_task_failed(
    consumer: Consumer, fields: dict[str, Any], code: str, reason: str, stage: str
) -> None:
    """Permanent problems fail the task at their stage and queue exactly one task.failed."""
    assert consumer.run(consumer.request("t-bad", **fields)) is Outcome.FAILED_PERMANENTLY
    with consumer.pool.connection() as conn:
        task = get_task(conn, "t-bad")
        sent = events(conn, "t-bad")
        blueprints = conn.execute("SELECT count(*) FROM blueprints").fetchone()
    assert task.state is State.FAILED and reason in (task.error or "")
    assert task.error_stage == stage
    assert [kind for kind, _ in sent] == ["com.choreo.task.failed.v1"]
    assert sent[0][1]["error_code"] == code and reason in sent[0][1]["reason"]
    assert sent[0][1]["stage"] == stage
    assert blueprints == (0,) and consumer.plan.calls == 0


def test_a_request_asking_for_practice_renditions_plans_a_blueprint_asking_for_them(
    consumer: Consumer,
) -> None:
    """``constraints.output.practice`` in the request is the blueprint's
    ``video_output.practice`` (size and rate left to the defaults)."""
    practice = {"mirror": True, "slow": [0.75, 0.5], "loops": True, "page": False}
    delivery = consumer.request(
        "t-practice", path="song", song={"song_id": SONG_ID},
        constraints={"output": {"practice": practice}},
    )  # fmt: skip
    assert consumer.run(delivery) is Outcome.PROCESSED
    with consumer.pool.connection() as conn:
        output = stored_blueprint(conn, "t-practice").video_output
    assert output.practice is not None and output.practice.model_dump() == practice
    assert (output.width, output.height, output.fps) == (1280, 720, 30)


def revision_delivery(pool: ConnectionPool, document: dict[str, Any]) -> Delivery[ChoreoEvent]:
    """Submit a revision through the producer (task + outbox row) and deliver its event."""
    submitted = submit_revision(pool, document)
    with pool.connection() as conn:
        (row,) = [r for r in outbox_rows(conn) if r.event_id == submitted.event_id]
    return from_pubsub(row.data, row.attributes)


def test_a_revision_becomes_a_planned_task_once(consumer: Consumer) -> None:
    """Producer -> consumer: the revision is a new planned task whose kept moves are the
    parent's, announced once; the same event again is a duplicate with no second plan."""
    parent = consumer.request(
        "t-parent", path="song", song={"song_id": SONG_ID},
        constraints={"style": "hip-hop", "difficulty": "beginner"},
    )  # fmt: skip
    assert consumer.run(parent) is Outcome.PROCESSED
    document = {"task_id": "t-rev", "parent_task_id": "t-parent", "keep": "1-4", "redo": "5-8"}
    delivery = revision_delivery(consumer.pool, document)
    assert delivery.event.type == "com.choreo.choreography.revision.requested.v1"
    assert consumer.run(delivery) is Outcome.PROCESSED
    assert consumer.run(delivery) is Outcome.DUPLICATE
    with consumer.pool.connection() as conn:
        before, after = stored_blueprint(conn, "t-parent"), stored_blueprint(conn, "t-rev")
        task = get_task(conn, "t-rev")
        sent = events(conn, "t-rev")
        history = task_history(conn, "t-rev")
    assert task.state is State.PLANNED and task.path == "revise"
    assert task.request["parent_task_id"] == "t-parent"
    assert [kind for kind, _ in sent] == ["com.choreo.blueprint.ready.v1"]
    assert history[-1].detail is not None and history[-1].detail["redone_bars"] == "5-8"
    kept = [m for m in after.moves_used if "kept from task t-parent" in m.reason.text]
    assert kept
    for move in kept:
        (original,) = [m for m in before.moves_used if m.timeline_start_s == move.timeline_start_s]
        assert move.model_dump(exclude={"reason", "transition_in"}) == original.model_dump(
            exclude={"reason", "transition_in"}
        )
    assert consumer.plan.calls == 1  # the revision plans with plan_revision, not the planner


def test_a_revision_refused_by_the_producer_leaves_nothing(consumer: Consumer) -> None:
    """An unknown parent, a parent without a blueprint and bars past its end are refused
    before a task exists, each naming the field."""
    with consumer.pool.connection() as conn:
        create_task(conn, "t-queued", "song", {"path": "song"})
    cases = [
        ({"parent_task_id": "t-nope", "redo": "1"}, "parent_task_id: no task 't-nope'"),
        ({"parent_task_id": "t-queued", "redo": "1"}, "'t-queued' has no blueprint"),
        ({"parent_task_id": "t-queued", "redo": "x"}, "redo: 'x' is not a bar"),
    ]
    for document, message in cases:
        with pytest.raises(RequestRejected, match=message):
            submit_revision(consumer.pool, document)
    with consumer.pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM tasks").fetchone() == (1,)


def test_a_revision_keeps_bars_over_a_new_analysis_and_refuses_new_audio(
    consumer: Consumer, storage_root: Path
) -> None:
    """The song re-analysed since the parent (beats 50 ms later, as a new analysis version
    may move them), its audio unchanged: the revision is planned on the parent's grid, kept
    moves exact. The audio file replaced (50 ms of silence first): the revision's task fails at
    planning naming the kept bars, one task.failed queued."""
    parent = consumer.request("t-old", path="song", song={"song_id": SONG_ID})
    assert consumer.run(parent) is Outcome.PROCESSED
    with consumer.pool.connection() as conn:
        row = conn.execute("SELECT analysis FROM songs WHERE song_id = %s", (SONG_ID,)).fetchone()
        assert row is not None
        stored = row[0]
        moved = {**stored, "beats_s": [b + 0.05 for b in stored["beats_s"]]}
        conn.execute("UPDATE songs SET analysis = %s WHERE song_id = %s", (Jsonb(moved), SONG_ID))
    keep = {"parent_task_id": "t-old", "keep": "1-2", "redo": "3-4"}
    same = revision_delivery(consumer.pool, {"task_id": "t-same", **keep})
    assert consumer.run(same) is Outcome.PROCESSED
    with consumer.pool.connection() as conn:
        before, after = stored_blueprint(conn, "t-old"), stored_blueprint(conn, "t-same")
    assert after.song == before.song
    kept = [m for m in after.moves_used if "kept from task t-old" in m.reason.text]
    originals = {m.timeline_start_s: m for m in before.moves_used}
    assert kept
    for move in kept:
        assert move.model_dump(exclude={"reason", "transition_in"}) == originals[
            move.timeline_start_s
        ].model_dump(exclude={"reason", "transition_in"})

    y, sr = soundfile.read(storage_root / SONG_URI)
    soundfile.write(storage_root / SONG_URI, np.concatenate([np.zeros(int(0.05 * sr)), y]), sr)
    changed = revision_delivery(consumer.pool, {"task_id": "t-new", **keep})
    assert consumer.run(changed) is Outcome.FAILED_PERMANENTLY
    with consumer.pool.connection() as conn:
        task = get_task(conn, "t-new")
        sent = events(conn, "t-new")
    assert task.state is State.FAILED and task.error_stage == "planning"
    assert "kept bars 1-2" in (task.error or "") and "no longer fit the song" in (task.error or "")
    assert [kind for kind, _ in sent] == ["com.choreo.task.failed.v1"]


def test_the_http_entrypoint_plans_a_revision_and_rejects_garbage(consumer: Consumer) -> None:
    """POST / (the consumer's push endpoint) with the revision as a binary CloudEvent: 200
    processed, then duplicate; a revision whose data breaks the schema is poison: 200
    undecodable, recorded in rejected_messages, no task touched."""
    parent = consumer.request("t-base", path="song", song={"song_id": SONG_ID})
    assert consumer.run(parent) is Outcome.PROCESSED
    event = revision_delivery(
        consumer.pool, {"task_id": "t-push", "parent_task_id": "t-base", "redo": "1-2"}
    ).event
    client = TestClient(create_app(consumer.processor))
    headers, body = to_http_binary(event)
    first = client.post("/", headers=headers, content=body)
    again = client.post("/", headers=headers, content=body)
    assert (first.status_code, first.json()["outcome"]) == (200, "processed"), first.text
    assert again.json()["outcome"] == "duplicate"
    garbage = json.dumps({"task_id": "t-push", "parent_task_id": "t-base", "redo": []})
    poison = client.post("/", headers={**headers, "ce-id": "garbage-1"}, content=garbage)
    assert (poison.status_code, poison.json()["outcome"]) == (200, "undecodable")
    assert "redo" in poison.json()["reason"]
    with consumer.pool.connection() as conn:
        assert get_task(conn, "t-push").state is State.PLANNED
        stored_blueprint(conn, "t-push")
        rejected = conn.execute("SELECT reason FROM rejected_messages").fetchall()
    assert len(rejected) == 1 and "redo" in rejected[0][0]


def test_a_salsa_request_is_planned_on_the_songs_quarter_note_count(
    pool: ConnectionPool, tmp_path: Path
) -> None:
    """A song counted at 112 is counted at 224 for a salsa request, 112 for hip-hop, from one
    analysis: its double time is cached with it in PostgreSQL and read back from there."""
    song = synthesize_song(112.0, structure=(("verse", 4), ("chorus", 4), ("verse", 4)))
    (tmp_path / "songs").mkdir()
    write_wav(tmp_path / "songs/quick.wav", song.y, song.sr)
    # Salsa moves recorded on the quarter note, as salsa is counted (the demo's are at 124):
    # the same keypoints played twice as fast.
    drafts = [
        replace(d, tempo_bpm=2 * d.tempo_bpm, fps=2 * d.fps) if d.style == "salsa" else d
        for d in demo_drafts(styles=("hip-hop", "salsa"))
    ]
    moves = [d.as_move(storage_key(d.style, d.move_id)) for d in drafts]
    with pool.connection() as conn:
        for move in moves:
            upsert_move(conn, move)
        vectors = embed_moves(moves, LocalTextEmbedder(DIM))
        save_many_embeddings(conn, {m.move_id: v for m, v in zip(moves, vectors, strict=True)})
    consumer = Consumer(pool, tmp_path)
    tempi = {}
    for task_id, style in (("t-salsa", "salsa"), ("t-hip-hop", "hip-hop"), ("t-salsa-2", "salsa")):
        delivery = consumer.request(
            task_id, path="song", song={"audio_uri": "songs/quick.wav"},
            constraints={"style": style, "duration_s": 20},
        )  # fmt: skip
        assert consumer.run(delivery) is Outcome.PROCESSED
        with pool.connection() as conn:
            blueprint = stored_blueprint(conn, task_id)
        tempi[task_id] = blueprint.song.tempo_bpm
        level = blueprint.song.analysis.tempo_level or ""
        assert ("salsa is counted at 150-240 BPM" in level) is (style == "salsa")
    assert consumer.analyse.calls == 1
    assert tempi["t-hip-hop"] == pytest.approx(112.0, rel=0.02)
    assert tempi["t-salsa"] == pytest.approx(224.0, rel=0.02) == tempi["t-salsa-2"]


def test_a_song_whose_analysis_never_ends_fails_its_task_and_the_worker_goes_on(
    pool: ConnectionPool, storage_root: Path, library: None, catalog: None
) -> None:
    """The analysis runs in a child process (ANALYSIS_TIMEOUT_S): one that never ends is killed,
    its task fails permanently, nothing is planned, and the next song is analysed and planned."""
    analyser = BoundedAnalyser(8.0, 1200.0, hangs_on_marked)
    try:
        consumer = Consumer(pool, storage_root, analyse=analyser)
        # Other bytes than the catalog song (not in the cache), never decoded: the analyser
        # hangs on the mark.
        marked = (storage_root / SONG_URI).read_bytes() + HANG_MARK
        (storage_root / "songs/hang.wav").write_bytes(marked)
        with pool.connection() as conn:  # the catalog song is analysed again, in the child
            conn.execute("UPDATE songs SET analysis = NULL")
        hung = consumer.request("t-hang", path="song", song={"audio_uri": "songs/hang.wav"})
        assert consumer.run(hung) is Outcome.FAILED_PERMANENTLY
        with pool.connection() as conn:
            task = get_task(conn, "t-hang")
            sent = events(conn, "t-hang")
        assert task.state is State.FAILED and task.error_stage == "analysis"
        assert [data["error_code"] for _, data in sent] == ["analysis-timeout"]
        assert "ANALYSIS_TIMEOUT_S" in sent[0][1]["reason"] and consumer.plan.calls == 0
        after = consumer.request("t-after", path="song", song={"song_id": SONG_ID})
        assert consumer.run(after) is Outcome.PROCESSED
        assert consumer.analyse.calls == 2 and consumer.plan.calls == 1
    finally:
        analyser.close()
