"""The blueprint consumer's handler on the in-memory ports (``tests/fakes.py``), no database.

The real song resolver (its cache path: the song rows hold a current analysis, so nothing is
downloaded), the real planning pipeline on the procedural demo library, and fake task, blueprint
and outbox rows. The same rules ``tests/integration/test_blueprint_consumer.py`` checks on
PostgreSQL: one blueprint and one ``blueprint.ready`` per task, written with ``analyzing ->
planned`` in the event's transaction, and nothing when a step fails.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from blobstore.storage import Storage
from choreography.moves.bundle import storage_key
from choreography.moves.demo_library import demo_drafts
from choreography.moves.model import Move
from choreography.music.model import ANALYSIS_VERSION, MusicAnalysis
from choreography.planner.offline import text_index
from choreography.planner.pipeline import NoMatchingMoves
from choreography.planner.song_choice import CatalogSong, NoSongFits
from choreography.search.text_embedding import LocalTextEmbedder
from consumers.blueprint_consumer.handler import (
    CONSUMER,
    BlueprintConsumer,
    revision_constraints,
)
from consumers.blueprint_consumer.song_store import SongResolver, SongRow, UnknownSong
from consumers.runtime.failure_stage import stage_of
from schemas.blueprint import parse_blueprint
from schemas.errors import InvalidInput
from schemas.event_envelope import ChoreoEvent, Delivery, new_event
from schemas.events import (
    SOURCE_BLUEPRINT_CONSUMER,
    SOURCE_PRODUCER,
    BlueprintReady,
    ChoreographyRequested,
    RevisionOverrides,
    RevisionRequested,
)
from schemas.settings import BlueprintConsumerSettings
from schemas.task_state import StaleState, State
from tests.fakes import (
    FakeDatabase,
    FakeLibrary,
    FakePlanningWork,
    FakeSongRows,
    FakeTaskLock,
    MemoryStorage,
    deliver,
)
from tests.fixtures.blueprints import MovePlan, build_blueprint
from tests.fixtures.synthetic_library import SectionSpec, grid_analysis

DIM = 64
SONG_ID = "song-groove"
SONG_URI = "songs/groove.wav"
AUDIO = b"the groove's audio bytes (the analysis is cached, so never decoded)"
READY = "com.choreo.blueprint.ready.v1"


@pytest.fixture(scope="module")
def moves() -> list[Move]:
    """The procedural demo library (48 moves, four styles, every level and energy)."""
    return [d.as_move(storage_key(d.style, d.move_id)) for d in demo_drafts()]


@pytest.fixture(scope="module")
def analysis() -> MusicAnalysis:
    """A 104 BPM verse-chorus song, built from a beat grid (no audio)."""
    sections = [SectionSpec("intro", 1, 0.2), SectionSpec("verse", 2, 0.5)]
    return grid_analysis(104.0, [*sections, SectionSpec("chorus", 2, 0.9)] * 2)


@pytest.fixture(scope="module")
def index(moves: list[Move]) -> Any:
    """A text index over the library, as the index cache would hold it."""
    return text_index(moves, LocalTextEmbedder(DIM))


class Index:
    """The ``MoveIndexCache`` the consumer asks for the current index."""

    def __init__(self, index: Any) -> None:
        self.index = index

    def get(self) -> Any:
        return self.index


class Setup:
    """A consumer on fakes: the database, its song rows, library, storage and the handler."""

    def __init__(self, moves: list[Move], analysis: MusicAnalysis, index: Any) -> None:
        self.db = FakeDatabase()
        row = SongRow(
            SONG_ID, "Groove", SONG_URI, hashlib.sha256(AUDIO).hexdigest(),
            analysis.duration_s, analysis.tempo_bpm,
            "hip-hop", 0.8, analysis.model_dump(mode="json"), ANALYSIS_VERSION,
        )  # fmt: skip
        catalog = CatalogSong(
            SONG_ID, "Groove", SONG_URI, analysis.duration_s, analysis.tempo_bpm, "hip-hop", 0.8
        )
        self.songs = FakeSongRows([row], [catalog])
        self.storage = MemoryStorage({SONG_URI: AUDIO})
        self.consumer = BlueprintConsumer(
            songs=SongResolver(self._storage(), write_pool=None),
            moves=Index(index),  # type: ignore[arg-type]
            embedder=LocalTextEmbedder(DIM),
            settings=BlueprintConsumerSettings(seed=3, candidate_moves=24),
        )
        self.work = FakePlanningWork(self.db, songs=self.songs, library=FakeLibrary(moves))

    def _storage(self) -> Storage:
        return self.storage

    def request(self, task_id: str, **fields: Any) -> ChoreoEvent:
        """Queue the task as the producer does; its ``choreography.requested`` event."""
        payload = ChoreographyRequested(task_id=task_id, requested_at=datetime.now(UTC), **fields)
        self.db.add_task(task_id, path=payload.path, request=payload.model_dump(mode="json"))
        return new_event(payload, source=SOURCE_PRODUCER)

    def deliver(self, event: ChoreoEvent) -> bool:
        """One delivery through the fake runtime (dedupe, one transaction)."""
        return deliver(self.db, CONSUMER, self.consumer.handle, event, work=self.work)

    def ready_events(self, task_id: str) -> list[BlueprintReady]:
        """The ``blueprint.ready`` payloads queued for the task."""
        return [
            event.data
            for event in self.db.outbox_events()
            if isinstance(event.data, BlueprintReady) and event.data.task_id == task_id
        ]


@pytest.fixture
def setup(moves: list[Move], analysis: MusicAnalysis, index: Any) -> Setup:
    return Setup(moves, analysis, index)


def test_song_path_plans_stores_one_blueprint_and_announces_it(setup: Setup) -> None:
    """queued -> analyzing -> planned, one valid blueprint and one blueprint.ready, with the
    cached analysis (nothing downloaded)."""
    event = setup.request(
        "t-song", path="song", song={"song_id": SONG_ID},
        constraints={"style": "hip-hop", "difficulty": "beginner", "duration_s": 20},
    )  # fmt: skip
    assert setup.deliver(event)
    task = setup.db.task("t-song")
    assert task.state is State.PLANNED and task.song_id == SONG_ID
    assert setup.db.states("t-song") == [State.QUEUED, State.ANALYZING, State.PLANNED]
    version, document = setup.db.blueprints["t-song"]
    blueprint = parse_blueprint(document)
    assert version == str(blueprint.schema_version)
    assert blueprint.task_id == "t-song" and blueprint.song.song_id == SONG_ID
    assert {m.move_id.split("-")[0] for m in blueprint.moves_used} == {"hip"}
    (ready,) = setup.ready_events("t-song")
    assert ready.moves_count == len(blueprint.moves_used) and ready.song_id == SONG_ID
    (queued,) = setup.db.outbox_events()
    assert queued.type == READY and queued.source == SOURCE_BLUEPRINT_CONSUMER
    assert queued.traceparent == event.traceparent
    assert setup.storage.downloads == []


def test_describe_path_chooses_the_catalog_song_and_says_why(setup: Setup) -> None:
    """Path 2 without a song: the analysed catalog's song is chosen, the reason stored."""
    event = setup.request(
        "t-describe", path="describe",
        description="energetic hip-hop for beginners, about 20 seconds",
    )  # fmt: skip
    assert setup.deliver(event)
    blueprint = parse_blueprint(setup.db.blueprints["t-describe"][1])
    assert blueprint.request.path == "describe"
    assert blueprint.request.constraints.style == "hip-hop"
    assert "Groove" in (blueprint.song.choice_reason or "")
    assert len(setup.ready_events("t-describe")) == 1


def test_the_same_event_delivered_twice_plans_once(setup: Setup) -> None:
    """A redelivery of the same CloudEvent is a duplicate: no second plan, no second event."""
    event = setup.request("t-dup", path="song", song={"song_id": SONG_ID})
    assert setup.deliver(event) is True
    assert setup.deliver(event) is False
    assert len(setup.ready_events("t-dup")) == 1
    assert setup.db.states("t-dup").count(State.PLANNED) == 1


def test_a_second_request_event_for_a_planned_task_has_no_effect(setup: Setup) -> None:
    """Another event (new CloudEvent id) for a task already planned: acknowledged, no effect."""
    event = setup.request("t-again", path="song", song={"song_id": SONG_ID})
    setup.deliver(event)
    blueprints, history = dict(setup.db.blueprints), list(setup.db.history)
    again = new_event(event.data, source=SOURCE_PRODUCER)
    assert setup.deliver(again) is True
    assert setup.db.blueprints == blueprints and setup.db.history == history
    assert len(setup.ready_events("t-again")) == 1


def test_a_task_left_in_analyzing_is_planned_by_the_next_delivery(setup: Setup) -> None:
    """A process that died mid-plan left the task analyzing (its writes rolled back): the next
    delivery plans it without a second analyzing step."""
    event = setup.request("t-crashed", path="song", song={"song_id": SONG_ID})
    setup.db.force("t-crashed", state=State.ANALYZING)
    assert setup.deliver(event)
    assert setup.db.task("t-crashed").state is State.PLANNED
    assert setup.db.states("t-crashed") == [State.QUEUED, State.PLANNED]


def test_a_request_for_a_failed_task_has_no_effect(setup: Setup) -> None:
    """A task already failed (by the reaper, say) is past analyzing: nothing is planned."""
    event = setup.request("t-failed", path="song", song={"song_id": SONG_ID})
    FakeTaskLock(setup.db).transition("t-failed", State.QUEUED, State.FAILED, error="timed out")
    assert setup.deliver(event)
    assert setup.db.blueprints == {} and setup.db.outbox == {}


def test_a_blueprint_stored_without_the_task_moving_is_stale(setup: Setup) -> None:
    """A blueprint already there while the task is still analyzing: refuse to guess
    (StaleState), and the CAS to analyzing is rolled back with everything else."""
    event = setup.request("t-stale", path="song", song={"song_id": SONG_ID})
    setup.db.blueprints["t-stale"] = ("1", {"task_id": "t-stale"})
    with pytest.raises(StaleState):
        setup.deliver(event)
    assert setup.db.task("t-stale").state is State.QUEUED
    assert setup.db.blueprints["t-stale"] == ("1", {"task_id": "t-stale"})
    assert setup.db.outbox == {} and setup.db.processed == set()


def test_a_task_failed_while_planning_keeps_no_blueprint(setup: Setup) -> None:
    """The reaper fails the task between the two CASes: analyzing -> planned misses with
    StaleState (failed) and the blueprint row and the outbox row roll back with it."""
    event = setup.request("t-reaped", path="song", song={"song_id": SONG_ID})
    songs = setup.songs

    class ReapedDuringPlanning(FakeSongRows):
        def song(self, song_id: str) -> SongRow:
            setup.db.force("t-reaped", state=State.FAILED, error="stuck in analyzing")
            return songs.song(song_id)

    reaping = FakePlanningWork(setup.db, songs=ReapedDuringPlanning(), library=setup.work.library)
    with pytest.raises(StaleState) as stale:
        deliver(setup.db, CONSUMER, setup.consumer.handle, event, work=reaping)
    assert stale.value.actual is State.FAILED
    assert setup.db.blueprints == {} and setup.db.outbox == {}
    assert setup.db.task("t-reaped").state is State.QUEUED  # the whole event rolled back


def test_wrong_event_type_is_invalid_input_at_stage_request(setup: Setup) -> None:
    """The consumer handles choreography.requested only; nothing is read or written."""
    setup.db.add_task("t-type")
    ready = BlueprintReady(
        task_id="t-type", schema_version="1", audio_uri="songs/a.wav", duration_s=2, moves_count=2
    )
    with pytest.raises(InvalidInput, match=r"handles choreography\.requested") as caught:
        setup.deliver(new_event(ready, source=SOURCE_BLUEPRINT_CONSUMER))
    assert stage_of(caught.value, "analysis") == "request"
    assert setup.db.task("t-type").state is State.QUEUED and setup.db.processed == set()


def test_unknown_song_fails_at_analysis_and_writes_nothing(setup: Setup) -> None:
    """A song the catalog does not have: UnknownSong (permanent, stage analysis), rolled back."""
    event = setup.request("t-unknown", path="song", song={"song_id": "no-such-song"})
    with pytest.raises(UnknownSong) as caught:
        setup.deliver(event)
    assert stage_of(caught.value, "analysis") == "analysis"
    assert setup.db.task("t-unknown").state is State.QUEUED
    assert setup.db.blueprints == {} and setup.db.outbox == {}


def test_no_matching_moves_fails_at_planning(setup: Setup) -> None:
    """A style the library lacks: NoMatchingMoves at stage planning, nothing stored."""
    event = setup.request(
        "t-jazz", path="song", song={"song_id": SONG_ID}, constraints={"style": "jazz"}
    )
    with pytest.raises(NoMatchingMoves) as caught:
        setup.deliver(event)
    assert stage_of(caught.value, "analysis") == "planning"
    assert setup.db.blueprints == {} and setup.db.task("t-jazz").state is State.QUEUED


def test_describe_without_an_analysed_catalog_fails_at_planning(
    moves: list[Move], analysis: MusicAnalysis, index: Any
) -> None:
    """No analysed song to choose from: NoSongFits at stage planning."""
    setup = Setup(moves, analysis, index)
    setup.songs.catalog = []
    event = setup.request("t-empty", path="describe", description="chill pop")
    with pytest.raises(NoSongFits) as caught:
        setup.deliver(event)
    assert stage_of(caught.value, "analysis") == "planning"


def test_delivery_is_passed_through_untouched(setup: Setup) -> None:
    """The handler needs nothing from the delivery: a push delivery plans the same way."""
    event = setup.request("t-push", path="song", song={"song_id": SONG_ID})
    deliver(
        setup.db, CONSUMER, setup.consumer.handle, event,
        Delivery(event, transport="pubsub-push", delivery_attempt=3), work=setup.work,
    )  # fmt: skip
    assert setup.db.task("t-push").state is State.PLANNED


def revision_event(setup: Setup, task_id: str, parent: str, **fields: Any) -> ChoreoEvent:
    """Queue a revision task as the producer does; its ``choreography.revision.requested``."""
    payload = RevisionRequested(
        task_id=task_id, parent_task_id=parent, requested_at=datetime.now(UTC), **fields
    )
    setup.db.add_task(task_id, path="revise", request=payload.model_dump(mode="json"))
    return new_event(payload, source=SOURCE_PRODUCER)


def test_a_revision_keeps_the_parents_bars_and_replans_the_rest(setup: Setup) -> None:
    """A revision is a new planned task: kept moves equal the parent's, redone ones differ,
    its history row names the parent and bars, and one blueprint.ready is queued."""
    parent_event = setup.request(
        "t-parent", path="song", song={"song_id": SONG_ID},
        constraints={"style": "hip-hop", "difficulty": "beginner"},
    )  # fmt: skip
    assert setup.deliver(parent_event)
    parent = parse_blueprint(setup.db.blueprints["t-parent"][1])
    redo = {"first": 3, "last": 4}
    event = revision_event(
        setup, "t-child", "t-parent", keep=[{"first": 1, "last": 2}], redo=[redo]
    )
    assert setup.deliver(event)
    child = parse_blueprint(setup.db.blueprints["t-child"][1])
    assert setup.db.states("t-child") == [State.QUEUED, State.ANALYZING, State.PLANNED]
    assert child.video_output.uri.endswith("/t-child.mp4")
    parent_at = {m.timeline_start_s: m for m in parent.moves_used}
    child_at = {m.timeline_start_s: m for m in child.moves_used}
    redone = [m for m in child.moves_used if "re-planned in a revision" in m.reason.text]
    assert redone
    for move in child.moves_used:
        if move in redone:
            assert move.move_id != parent_at[move.timeline_start_s].move_id
        else:
            original = parent_at[move.timeline_start_s]
            assert (move.move_id, move.clip_in_s, move.clip_out_s, move.speed_factor) == (
                original.move_id, original.clip_in_s, original.clip_out_s, original.speed_factor,
            )  # fmt: skip
    assert set(child_at) == set(parent_at)
    planned = [row for row in setup.db.history if row.task_id == "t-child"][-1]
    assert planned.detail is not None and planned.detail["revision_of"] == "t-parent"
    assert len(setup.ready_events("t-child")) == 1


def test_a_revision_of_unchanged_audio_survives_a_new_analysis(setup: Setup) -> None:
    """The song re-analysed since the parent (its beats moved: another analysis version) but
    its audio unchanged (same hash): the revision hashes the audio, plans on the parent's grid
    and keeps the kept moves exactly."""
    assert setup.deliver(setup.request("t-v3", path="song", song={"song_id": SONG_ID}))
    parent = parse_blueprint(setup.db.blueprints["t-v3"][1])
    newer = grid_analysis(106.0, [SectionSpec("verse", 2, 0.5)] * 5)
    row = setup.songs.rows[SONG_ID]
    setup.songs.rows[SONG_ID] = replace(row, analysis=newer.model_dump(mode="json"))
    event = revision_event(setup, "t-v4", "t-v3", redo=[{"first": 3, "last": 4}])
    assert setup.deliver(event)
    child = parse_blueprint(setup.db.blueprints["t-v4"][1])
    assert child.song == parent.song and setup.storage.downloads == [SONG_URI]
    kept = [m for m in child.moves_used if "kept from task t-v3" in m.reason.text]
    assert len(kept) == len(parent.moves_used) - 1
    originals = {m.timeline_start_s: m for m in parent.moves_used}
    for move in kept:
        assert move.model_dump(exclude={"reason", "transition_in"}) == originals[
            move.timeline_start_s
        ].model_dump(exclude={"reason", "transition_in"})


def test_a_revision_inherits_the_parents_practice_and_sync_settings(setup: Setup) -> None:
    """A parent whose request asked for practice renditions (and whose blueprint carries sync
    tolerances): its revision's video_output asks for the same, under its own video URI."""
    practice = {"mirror": True, "slow": [0.75], "loops": False, "page": True}
    parent_event = setup.request(
        "t-practice", path="song", song={"song_id": SONG_ID},
        constraints={"output": {"width": 640, "height": 360, "practice": practice}},
    )  # fmt: skip
    assert setup.deliver(parent_event)
    version, document = setup.db.blueprints["t-practice"]
    assert document["video_output"]["practice"] == practice
    sync = {
        "cut_error_frames": 2.0, "audio_offset_ms": 60.0,
        "min_audio_correlation": 0.4, "duration_error_frames": 1.0,
    }  # fmt: skip
    document["video_output"]["sync"] = sync
    setup.db.blueprints["t-practice"] = (version, document)
    event = revision_event(setup, "t-practice-2", "t-practice", redo=[{"first": 1, "last": 2}])
    assert setup.deliver(event)
    child = parse_blueprint(setup.db.blueprints["t-practice-2"][1]).video_output
    assert child.model_dump(mode="json", exclude={"uri"}) == {
        **{k: v for k, v in document["video_output"].items() if k != "uri"},
        "practice": practice,
        "sync": sync,
    }
    assert child.uri.endswith("/t-practice-2.mp4") and (child.width, child.height) == (640, 360)


def test_a_revision_of_a_task_without_a_blueprint_fails_at_request(setup: Setup) -> None:
    """A parent with no blueprint is a permanent InvalidInput at stage ``request``."""
    setup.request("t-unplanned", path="song", song={"song_id": SONG_ID})
    event = revision_event(setup, "t-orphan", "t-unplanned", redo=[{"first": 1, "last": 1}])
    with pytest.raises(InvalidInput, match="'t-unplanned' has no blueprint") as caught:
        setup.deliver(event)
    assert stage_of(caught.value, "analysis") == "request"
    assert setup.db.blueprints.get("t-orphan") is None


def test_a_revision_keeps_the_parents_constraints_unless_overridden() -> None:
    """The parent's style, difficulty, energy and repeats, field by field under the overrides."""
    document = build_blueprint([MovePlan(clip_uri="moves/a.mp4", counts=4)])
    parent = parse_blueprint(document)
    plain = RevisionRequested(
        task_id="b", parent_task_id="a", redo=[{"first": 1, "last": 1}],
        requested_at=datetime.now(UTC),
    )  # fmt: skip
    assert revision_constraints(parent, plain).model_dump(exclude_none=True) == {
        "difficulty": "beginner", "energy": "medium", "style": "hiphop", "allow_repeats": False,
    }  # fmt: skip
    harder = plain.model_copy(update={"constraints": RevisionOverrides(difficulty="advanced")})
    assert revision_constraints(parent, harder).difficulty == "advanced"
    assert revision_constraints(parent, harder).style == "hiphop"
