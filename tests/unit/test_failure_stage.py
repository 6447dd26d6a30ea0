"""Failure stages: errors are tagged where they happen; the blueprint consumer tags each step."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from choreography.planner.description import DurationOutOfRange, parse_description
from choreography.planner.pipeline import NoMatchingMoves
from choreography.planner.song_choice import NoSongFits, choose_song
from consumers.blueprint_consumer.handler import BlueprintConsumer
from consumers.blueprint_consumer.song_store import ResolvedSong, UndecodableAudio
from consumers.runtime.failure_stage import STAGES, failure_stage, stage_of, tagged
from schemas.errors import InvalidInput
from schemas.event_envelope import Delivery, new_event
from schemas.events import SOURCE_PRODUCER, ChoreographyRequested, Constraints, TaskFailed
from schemas.settings import BlueprintConsumerSettings
from tests.fakes import FakeDatabase, FakePlanningWork


def test_untagged_error_gets_the_default() -> None:
    """An error no step tagged reports the handler's own stage."""
    assert stage_of(InvalidInput("bad"), "analysis") == "analysis"


def test_block_tags_the_error_leaving_it() -> None:
    """An error raised inside ``failure_stage('planning')`` reports planning."""
    with pytest.raises(InvalidInput) as caught, failure_stage("planning"):
        raise InvalidInput("bad")
    assert stage_of(caught.value, "analysis") == "planning"


def test_innermost_block_wins() -> None:
    """Nested blocks keep the stage of the innermost one."""
    with pytest.raises(KeyError) as caught, failure_stage("planning"), failure_stage("analysis"):
        raise KeyError("x")
    assert stage_of(caught.value, "render") == "analysis"


def test_stage_set_where_raised_is_kept() -> None:
    """``raise tagged(error, stage)`` is not overridden by an enclosing block."""
    with pytest.raises(InvalidInput) as caught, failure_stage("planning"):
        raise tagged(InvalidInput("wrong event"), "request")
    assert stage_of(caught.value, "analysis") == "request"


def test_a_tag_outside_the_schema_falls_back() -> None:
    """A stray ``failure_stage`` attribute that is no schema stage is ignored."""
    error = InvalidInput("bad")
    error.failure_stage = "search"  # type: ignore[attr-defined]
    assert stage_of(error, "analysis") == "analysis"


def test_stages_are_the_task_failed_schema_values() -> None:
    """The runtime's stages are exactly those ``task.failed`` v1 accepts."""
    schema = TaskFailed.model_json_schema()["properties"]["stage"]
    assert set(schema["enum"]) == STAGES


class FailingSongs:
    """A song resolver that raises the given error."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def resolve(self, songs: Any, ref: Any) -> ResolvedSong:
        raise self.error or AssertionError("song resolution was not expected")


class FailingMoves:
    """A move index cache whose search step raises the given error."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def get(self) -> Any:
        raise self.error


def stage_of_failure(*, songs: Any = None, moves: Any = None, **request: Any) -> str:
    """Run the consumer on a request up to its failure; the stage the runtime would report.

    The task is queued in the fake database and the analysed catalog is empty."""
    db = FakeDatabase()
    db.add_task("t-1")
    consumer = BlueprintConsumer(
        songs=songs or FailingSongs(),
        moves=moves or FailingMoves(AssertionError("move search was not expected")),
        embedder=None,  # type: ignore[arg-type]
        settings=BlueprintConsumerSettings(),
    )
    payload = ChoreographyRequested(task_id="t-1", requested_at=datetime.now(UTC), **request)
    delivery = Delivery(new_event(payload, source=SOURCE_PRODUCER), transport="pubsub")
    with pytest.raises(Exception) as caught:
        consumer.handle(FakePlanningWork(db), delivery.event, delivery)
    assert not isinstance(caught.value, AssertionError), caught.value
    return stage_of(caught.value, "analysis")


def test_description_out_of_range_is_a_request_failure() -> None:
    """A description asking for an impossible length fails at stage request."""
    stage = stage_of_failure(path="describe", description="hip-hop for 20 minutes")
    assert stage == "request"
    with pytest.raises(DurationOutOfRange):
        parse_description("hip-hop for 20 minutes")


def test_no_song_fits_is_a_planning_failure() -> None:
    """An empty analysed catalog for a describe request without a song fails at planning."""
    with pytest.raises(NoSongFits):
        choose_song([], Constraints(), None)
    assert stage_of_failure(path="describe", description="chill pop") == "planning"


def test_undecodable_song_is_an_analysis_failure() -> None:
    """A song that cannot be resolved or analysed fails at analysis."""
    songs = FailingSongs(UndecodableAudio("audio songs/x.wav cannot be used"))
    stage = stage_of_failure(songs=songs, path="song", song={"song_id": "s"})
    assert stage == "analysis"


def test_move_search_failure_is_a_planning_failure() -> None:
    """An error in move search (after the song resolved) fails at planning."""
    resolved = ResolvedSong(row=None, analysis=None, cached=True)  # type: ignore[arg-type]

    class Songs:
        def resolve(self, songs: Any, ref: Any) -> ResolvedSong:
            return resolved

    moves = FailingMoves(NoMatchingMoves("no move in the library matches style 'jazz'"))
    stage = stage_of_failure(songs=Songs(), moves=moves, path="song", song={"song_id": "s"})
    assert stage == "planning"
